"""bench/chunking.py counts extra deltas as documented (no timing is asserted here)."""

from __future__ import annotations

from bench.chunking import earliest, flusher, provisional_timing, token_deltas
from voicechat.pipeline.chunker import SentenceChunker

OPTIONS = {"first_clause_min_chars": 0, "max_chars": 240}


def test_token_deltas_keep_every_character() -> None:
    text = "Edit `config.yaml` now!\n\n| a | b |\n你好。snake_case  ok"
    assert "".join(token_deltas(text)) == text
    assert token_deltas("Hello world.") == ["Hello", " world", "."]
    assert token_deltas("Edit config.yaml... now?!") == [
        "Edit",
        " config",
        ".yaml",
        "...",
        " now",
        "?!",
    ]


def test_a_provisional_chunk_starts_with_its_mark_and_is_confirmed_one_delta_later() -> None:
    deltas = ["Hello", " world", ".", " How", " are", " you", "?"]
    chunks, starts, confirms, retractions = provisional_timing(deltas, OPTIONS)
    bound = earliest(deltas, chunks, flusher(SentenceChunker, OPTIONS))
    assert chunks == ["Hello world.", "How are you?"]
    assert bound == [3, 7]
    assert starts == [3, 7]
    assert confirms == [4, 8]  # the second by the end of the stream, one more delta
    assert retractions == 0


def test_a_retracted_chunk_starts_its_synthesis_again_with_the_longer_text() -> None:
    deltas = ["Use", " Node", ".", "js", " now", "."]
    chunks, starts, confirms, retractions = provisional_timing(deltas, OPTIONS)
    assert chunks == ["Use Node.js now."]
    assert (starts, confirms, retractions) == ([6], [7], 1)
    assert earliest(deltas, chunks, flusher(SentenceChunker, OPTIONS)) == [6]
