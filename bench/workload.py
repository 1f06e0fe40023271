"""The workload every system under test gets: one scripted answer, streamed by a fake LLM with a set
time to first token and token rate, spoken by a fake TTS with a set latency and real-time factor.

Standard library only: the Pipecat bench imports this from its own virtual environment.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench import timers

# The first sentence ends at "answer." for both chunkers: its comma comes before the 30 characters
# that voicechat's early first-clause cut needs, and the period follows a plain word.
ANSWER = (
    "Sure, here is the short answer. The capital of France is Paris, a city on the Seine. "
    "It has been the capital for most of the last thousand years. About two million people "
    "live in the city itself, and about twelve million in the wider region."
)


def tokenize(text: str) -> tuple[str, ...]:
    """GPT-like deltas: a word with its leading space, or one punctuation mark."""
    return tuple(re.findall(r" ?[A-Za-z']+| ?[0-9]+|[^\sA-Za-z0-9]", text))


@dataclass(frozen=True, slots=True)
class Workload:
    ttft: float = 0.200  # seconds from the request to the first token
    token_interval: float = 0.020  # seconds between tokens (50 tokens/s)
    tts_latency: float = 0.100  # seconds from a chunk's request to its first audio
    rtf: float = 0.2  # seconds of synthesis per second of audio, after the first piece
    ms_per_char: int = 60  # audio length per character of text (about 16 characters/s)
    piece_ms: int = 250  # audio per piece the TTS yields
    sample_rate: int = 22050
    tokens: tuple[str, ...] = field(default=tokenize(ANSWER))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tokens"] = len(self.tokens)
        data["answer"] = "".join(self.tokens)
        return data

    def token_time(self, index: int) -> float:
        """Seconds after the request at which token ``index`` is yielded."""
        return self.ttft + index * self.token_interval

    def piece_times(self, piece_offsets_s: Sequence[float]) -> list[float]:
        """Seconds after the synthesis request at which each piece is ready: the first after
        ``tts_latency``, each later one when the audio before it has been synthesized."""
        return [self.tts_latency + self.rtf * offset for offset in piece_offsets_s]


async def sleep_until(deadline: float, lateness: list[float] | None = None) -> None:
    """Sleep to an absolute ``time.perf_counter()`` deadline, so that delays never accumulate:
    a late wake-up (a busy event loop) shows as lateness, not as a slower workload. The wait
    is a ``timerfd`` (bench.timers), not asyncio's millisecond-rounded timer, so an idle loop
    wakes on time; ``lateness`` collects how late each wake-up was."""
    if deadline > time.perf_counter():
        await timers.sleep_until(deadline)
        if lateness is not None:  # only real waits: a consumer holding back is no lateness
            lateness.append(time.perf_counter() - deadline)


async def stream_tokens(
    workload: Workload, lateness: list[float] | None = None
) -> AsyncIterator[str]:
    """The fake LLM: yields the tokens on their schedule, measured from the call."""
    started = time.perf_counter()
    for index, token in enumerate(workload.tokens):
        await sleep_until(started + workload.token_time(index), lateness)
        yield token


def first_sentence_token(tokens: Sequence[str]) -> int:
    """Index of the token that completes the first sentence (its period)."""
    return next(i for i, token in enumerate(tokens) if token.strip() in (".", "!", "?"))
