"""``replay``: answers from recorded chat-completion streams in ``samples/llm/``, with their
recorded timing, so the whole server runs offline with no API key.

A recording is JSON Lines: a header ``{"prompt": ..., "model": ...}``, then one line per
streamed event ``{"delay_ms": 12, "data": <chat.completion.chunk>}`` as the endpoint sent it
(``"data": "[DONE]"`` ends it). The recording whose prompt matches the last user message
(case and spacing ignored) answers; any other prompt gets ``default.jsonl``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicechat.errors import ConfigError, LLMFailed
from voicechat.llm.base import ChatMessage, chunk_text

if TYPE_CHECKING:
    from voicechat.config import Settings

DEFAULT_RECORDING = "default"


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    delay_ms: float
    data: dict[str, Any] | str


@dataclass(frozen=True, slots=True)
class Recording:
    name: str
    prompt: str
    events: tuple[RecordedEvent, ...]

    @classmethod
    def load(cls, path: Path) -> Recording:
        lines = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
        if not lines or "prompt" not in lines[0]:
            raise ConfigError(f"{path}: the first line must be a header with a prompt")
        events = tuple(RecordedEvent(float(e["delay_ms"]), e["data"]) for e in lines[1:])
        return cls(name=path.stem, prompt=lines[0]["prompt"], events=events)

    def text(self) -> str:
        return "".join(chunk_text(e.data) for e in self.events if isinstance(e.data, dict))


def _normalize(prompt: str) -> str:
    return " ".join(prompt.lower().split())


def load_recordings(directory: Path) -> dict[str, Recording]:
    recordings = {p.stem: Recording.load(p) for p in sorted(directory.glob("*.jsonl"))}
    if DEFAULT_RECORDING not in recordings:
        raise ConfigError(f"{directory} has no {DEFAULT_RECORDING}.jsonl recording")
    return recordings


class ReplayLLM:
    name = "replay"

    def __init__(self, recordings: dict[str, Recording], *, speed: float = 1.0) -> None:
        """``speed`` scales the recorded timing: 2.0 plays twice as fast, 0 drops the delays."""
        self._by_prompt = {_normalize(r.prompt): r for r in recordings.values()}
        self._default = recordings[DEFAULT_RECORDING]
        self._speed = speed

    def pick(self, messages: Sequence[ChatMessage]) -> Recording:
        user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        return self._by_prompt.get(_normalize(user), self._default)

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
        recording = self.pick(messages)
        for event in recording.events:
            if self._speed > 0 and event.delay_ms > 0:
                await asyncio.sleep(event.delay_ms / 1000 / self._speed)
            if event.data == "[DONE]":
                return
            if isinstance(event.data, dict) and "error" in event.data:
                raise LLMFailed(f"recorded stream broke: {event.data['error']}", backend=self.name)
            text = chunk_text(event.data) if isinstance(event.data, dict) else ""
            if text:
                yield text

    async def aclose(self) -> None:
        return None


def create(settings: Settings) -> ReplayLLM:
    return ReplayLLM(load_recordings(settings.replay_dir), speed=settings.replay_speed)
