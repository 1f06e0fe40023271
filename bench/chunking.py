"""The chunker alone, on the texts of its table (tests/chunker_cases.py) fed as token-sized deltas.

* *extra deltas*: for each chunk, how many deltas after the one that brings its last character
  (the first prefix of the stream whose flush already gives this chunk, and the ones before it)
  its synthesis can start (its provisional or confirmed emission) and it is confirmed. The end
  of the stream counts as one more delta, as the LLM's end-of-stream message is.
* *µs per delta*: push() over all the texts, best of a few rounds, beside the same chunker
  without the plain-delta fast path in ``_normalize`` and, when git can show it, the chunker of
  commit ``BEFORE`` (no provisional ends), all in this run.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable, Sequence
from typing import Any

from bench.harness import ROOT
from tests.chunker_cases import TABLE
from voicechat.config import Settings
from voicechat.pipeline import speakable as speakable_module
from voicechat.pipeline.chunker import Confirmed, Provisional, Retracted, SentenceChunker

BEFORE = "6200067"  # main before provisional ends
_TOKEN = re.compile(r"\s*[^\W\d_]{1,6}|\s*\d{1,3}|\.[^\W\d_]{1,6}|\s*[^\w\s]{1,3}|\s*_+|\s+", re.S)
ROUNDS = 9
REPEATS = 4  # passes over the texts in one timed round

Flushing = Callable[[Sequence[str]], list[str]]


def token_deltas(text: str) -> list[str]:
    """GPT-like deltas: up to six letters or three digits with their leading space, a dot with
    the letters after it (".js", ".yaml", as GPT's tokenizers cut them), or up to three marks
    ("...", "?!"); CJK characters count as letters."""
    tokens = _TOKEN.findall(text)
    assert "".join(tokens) == text, text
    return tokens


class SlowPathChunker(SentenceChunker):
    """The chunker as before the fast path: every delta through sanitize() and the collapse."""

    def _normalize(self, delta: str) -> str:
        text = re.sub(" {2,}", " ", speakable_module.sanitize(delta))
        if self._space_before and text.startswith(" "):
            text = text[1:]
        if text:
            self._space_before = text.endswith(" ")
        return text


def earlier_chunker() -> type[Any] | None:
    """The SentenceChunker class of commit BEFORE, or None if git cannot show it."""
    done = subprocess.run(
        ["git", "show", f"{BEFORE}:voicechat/pipeline/chunker.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    module = types.ModuleType("chunker_before")
    sys.modules[module.__name__] = module  # its dataclasses look their module up
    exec(compile(done.stdout, "chunker_before.py", "exec"), module.__dict__)  # noqa: S102
    chunker: type[Any] = module.SentenceChunker
    return chunker


def earliest(deltas: Sequence[str], final: list[str], flushing: Flushing) -> list[int]:
    """Per chunk, the number of deltas after which a flush would already give it."""
    found: list[int] = []
    for count in range(1, len(deltas) + 1):
        prefix = flushing(deltas[:count])
        while len(found) < len(final) and prefix[: len(found) + 1] == final[: len(found) + 1]:
            found.append(count)
    return found


def provisional_timing(
    deltas: Sequence[str], options: dict[str, int]
) -> tuple[list[str], list[int], list[int], int]:
    """Chunks, when each one's synthesis starts and when it is confirmed (in deltas), and the
    number of retractions."""
    chunker = SentenceChunker(**options)
    chunks: list[str] = []
    starts: list[int] = []
    confirms: list[int] = []
    retractions, provisional_at = 0, 0
    for count, delta in enumerate([*deltas, None], start=1):
        events = chunker.push(delta) if delta is not None else chunker.finish()
        for event in events:
            if isinstance(event, Provisional):
                provisional_at = count
            elif isinstance(event, Retracted):
                retractions += 1
            elif isinstance(event, Confirmed):
                chunks.append(event.text)
                starts.append(provisional_at if event.provisional else count)
                confirms.append(count)
    return chunks, starts, confirms, retractions


def feed_timing(
    chunker_class: type[Any], deltas: Sequence[str], options: dict[str, int]
) -> tuple[list[str], list[int]]:
    chunker = chunker_class(**options)
    chunks: list[str] = []
    emitted: list[int] = []
    for count, delta in enumerate(deltas, start=1):
        for chunk in chunker.feed(delta):
            chunks.append(chunk)
            emitted.append(count)
    for chunk in chunker.flush():
        chunks.append(chunk)
        emitted.append(len(deltas) + 1)
    return chunks, emitted


def flusher(chunker_class: type[Any], options: dict[str, int]) -> Flushing:
    def flushing(deltas: Sequence[str]) -> list[str]:
        chunker = chunker_class(**options)
        chunks: list[str] = [c for delta in deltas for c in chunker.feed(delta)]
        return chunks + list(chunker.flush())

    return flushing


def us_per_delta(
    classes: dict[str, type[Any]], streams: list[list[str]], options: dict[str, int]
) -> dict[str, float]:
    """Per chunker: the best of ROUNDS rounds of push() (or feed()) over every stream, per
    delta; the chunkers take turns in each round, so that other load hits them alike."""
    streams = streams * REPEATS
    deltas = sum(len(stream) for stream in streams)
    best = dict.fromkeys(classes, float("inf"))
    for _ in range(ROUNDS):
        for name, chunker_class in classes.items():
            started = time.perf_counter()
            for stream in streams:
                chunker = chunker_class(**options)
                new = hasattr(chunker, "push")
                step, end = (chunker.push, chunker.finish) if new else (chunker.feed, chunker.flush)
                for delta in stream:
                    step(delta)
                end()
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: round(seconds / deltas * 1e6, 2) for name, seconds in best.items()}


def chunking_figures() -> dict[str, Any]:
    settings = Settings()
    options = {
        "first_clause_min_chars": settings.first_clause_chars,
        "max_chars": settings.max_chunk_chars,
    }
    streams = [token_deltas(text) for _, text, _ in TABLE if text]
    start_extra: list[int] = []
    confirm_extra: list[int] = []
    retractions = 0
    for deltas in streams:
        chunks, starts, confirms, retracted = provisional_timing(deltas, options)
        retractions += retracted
        bound = earliest(deltas, chunks, flusher(SentenceChunker, options))
        start_extra.extend(s - b for s, b in zip(starts, bound, strict=True))
        confirm_extra.extend(c - b for c, b in zip(confirms, bound, strict=True))
    results: dict[str, Any] = {
        "texts": len(streams),
        "deltas": sum(len(s) for s in streams),
        "mean_delta_chars": round(statistics.mean(len(d) for s in streams for d in s), 2),
        "chunks": len(start_extra),
        "extra_deltas_to_synthesis_start": round(statistics.mean(start_extra), 3),
        "extra_deltas_to_confirmation": round(statistics.mean(confirm_extra), 3),
        "synthesis_starts_with_the_mark": round(start_extra.count(0) / len(start_extra), 3),
        "confirmed_with_the_mark": round(confirm_extra.count(0) / len(confirm_extra), 3),
        "retractions_per_chunk": round(retractions / len(start_extra), 3),
    }
    before = earlier_chunker()
    classes = {"now": SentenceChunker, "without_fast_path": SlowPathChunker}
    if before is not None:
        classes["before"] = before
    timing = us_per_delta(classes, streams, options)
    results["us_per_delta"] = timing["now"]
    results["us_per_delta_without_fast_path"] = timing["without_fast_path"]
    if before is not None:
        extra: list[int] = []
        for deltas in streams:
            chunks, emitted = feed_timing(before, deltas, options)
            bound = earliest(deltas, chunks, flusher(before, options))
            extra.extend(e - b for e, b in zip(emitted, bound, strict=True))
        results["before"] = {
            "commit": BEFORE,
            "chunks": len(extra),
            "extra_deltas_to_chunk": round(statistics.mean(extra), 3),
            "chunk_with_the_mark": round(extra.count(0) / len(extra), 3),
            "us_per_delta": timing["before"],
        }
    return results
