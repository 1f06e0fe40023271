"""A session's conversation memory: what the user asked and what they heard in reply.

The assistant's side of each exchange is the text that was actually sent as audio (the
``spoken`` text of ``stopped`` and of ``done``), so the model is never told it said something
the listener never heard. Only the last ``max_turns`` exchanges are kept.
"""

from __future__ import annotations

from collections import deque

from voicechat.llm.base import ChatMessage


class History:
    """The system prompt plus the last ``max_turns`` exchanges (0: no memory)."""

    def __init__(self, system_prompt: str, *, max_turns: int) -> None:
        self._system: ChatMessage = {"role": "system", "content": system_prompt}
        self._exchanges: deque[tuple[str, str]] = deque(maxlen=max(max_turns, 0))

    def __len__(self) -> int:
        return len(self._exchanges)

    def messages_for(self, prompt: str) -> list[ChatMessage]:
        """The messages that ask ``prompt`` with the remembered exchanges before it."""
        messages: list[ChatMessage] = [self._system]
        for asked, heard in self._exchanges:
            messages.append({"role": "user", "content": asked})
            messages.append({"role": "assistant", "content": heard})
        messages.append({"role": "user", "content": prompt})
        return messages

    def record(self, prompt: str, spoken: str) -> None:
        """Remember one exchange. An answer of which nothing was heard is not kept at all:
        an empty assistant message, or two user messages in a row, trip up some chat
        templates, and the next prompt usually says what the user wants instead."""
        if spoken.strip():
            self._exchanges.append((prompt, spoken.strip()))
