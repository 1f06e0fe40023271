"""A text source for a turn that has no LLM: the text to speak is given, as one delta.

``POST /v1/audio/speech`` speaks its ``input`` through the same chunker, look-ahead synthesis
and pacing as an answer; :class:`GivenText` stands where the LLM stands in a
:class:`~voicechat.pipeline.turn.Turn` and streams the last user message back as it is.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

from voicechat.llm.base import ChatMessage


class GivenText:
    """Implements :class:`~voicechat.llm.base.LLMBackend`: the "answer" to ``messages`` is
    the content of their last message, in one delta."""

    name = "input"

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
        if messages and messages[-1]["content"]:
            yield messages[-1]["content"]

    async def aclose(self) -> None:
        return None
