"""SentenceChunker and speakable(): the spec as a table (tests/chunker_cases.py), then the
timing of provisional and confirmed chunks, cuts and determinism. run_stream() checks on every
stream that each provisional chunk is confirmed with the same text or retracted."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.chunker_cases import TABLE
from voicechat.pipeline.chunker import (
    ChunkEvent,
    Confirmed,
    Provisional,
    Retracted,
    SentenceChunker,
)
from voicechat.pipeline.speakable import has_speech, speakable

pytestmark = pytest.mark.timeout(30)


def run_stream(deltas: Iterable[str], **options: int) -> list[str]:
    """Push every delta, then finish; check the events keep their promises and return the
    confirmed chunks in order."""
    chunker = SentenceChunker(**options)
    events = [event for delta in deltas for event in chunker.push(delta)]
    return confirmed_chunks([*events, *chunker.finish()])


def confirmed_chunks(events: Sequence[ChunkEvent]) -> list[str]:
    """The confirmed chunks of a whole stream's events, after checking that every provisional
    chunk is settled by the next event, confirmed with the same text or retracted."""
    confirmed: list[str] = []
    pending: str | None = None
    for event in events:
        if pending is not None:
            assert event in (Confirmed(pending, provisional=True), Retracted(pending)), event
            pending = None
            if isinstance(event, Confirmed):
                confirmed.append(event.text)
            continue
        assert isinstance(event, Provisional | Confirmed) and not (
            isinstance(event, Confirmed) and event.provisional
        ), event
        if isinstance(event, Provisional):
            pending = event.text
        else:
            confirmed.append(event.text)
    assert pending is None, "finish() left a provisional chunk open"
    return confirmed


def fed_stream(deltas: Iterable[str], **options: int) -> list[str]:
    """The same stream through feed() and flush()."""
    chunker = SentenceChunker(**options)
    chunks = [chunk for delta in deltas for chunk in chunker.feed(delta)]
    return chunks + chunker.flush()


def split_at(text: str, cuts: Iterable[int]) -> list[str]:
    """Cut `text` into pieces at the given offsets (taken modulo its length + 1)."""
    points = sorted({cut % (len(text) + 1) for cut in cuts})
    bounds = [0, *points, len(text)]
    return [text[start:end] for start, end in pairwise(bounds)]


def random_pieces(text: str, rng: random.Random) -> list[str]:
    return split_at(text, (rng.randrange(len(text) + 1) for _ in range(rng.randint(0, 8))))


TABLE_PARAMS = [pytest.param(text, expected, id=case_id) for case_id, text, expected in TABLE]


@pytest.mark.parametrize(("text", "expected"), TABLE_PARAMS)
def test_table_whole_text(text: str, expected: list[str]) -> None:
    assert run_stream([text], first_clause_min_chars=0) == expected


@pytest.mark.parametrize(("text", "expected"), TABLE_PARAMS)
def test_table_same_chunks_for_any_delta_cutting(text: str, expected: list[str]) -> None:
    rng = random.Random(text)
    assert run_stream(text, first_clause_min_chars=0) == expected
    for _ in range(5):
        assert run_stream(random_pieces(text, rng), first_clause_min_chars=0) == expected
    # The default options (early cut on) must be just as independent of the cutting.
    whole = run_stream([text])
    assert run_stream(text) == whole
    assert run_stream(random_pieces(text, rng)) == whole


def test_table_has_at_least_two_hundred_cases() -> None:
    assert len(TABLE) >= 200
    assert len({case_id for case_id, _, _ in TABLE}) == len(TABLE)


# --- when feed() returns a chunk ---------------------------------------------------------------


def feeds(chunker: SentenceChunker, deltas: Sequence[str]) -> list[list[str]]:
    """What feed() returned right after each delta."""
    return [chunker.feed(delta) for delta in deltas]


def pushes(chunker: SentenceChunker, deltas: Sequence[str]) -> list[list[ChunkEvent]]:
    """What push() returned right after each delta."""
    return [chunker.push(delta) for delta in deltas]


def test_a_plain_word_and_its_mark_give_a_provisional_chunk_at_once() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert pushes(chunker, ["Hello world.", " How", " are you?"]) == [
        [Provisional("Hello world.")],
        [Confirmed("Hello world.", provisional=True)],
        [Provisional("How are you?")],
    ]
    assert chunker.finish() == [Confirmed("How are you?", provisional=True)]


@pytest.mark.parametrize("follower", [" ", "\n", "\n\n"])
def test_space_or_newline_after_the_mark_confirms_at_once(follower: str) -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert chunker.push("Hello world." + follower) == [Confirmed("Hello world.")]


def test_a_letter_glued_to_the_period_retracts_the_chunk() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert pushes(chunker, ["Edit config.", "yaml first."]) == [
        [Provisional("Edit config.")],
        [Retracted("Edit config."), Provisional("Edit config.yaml first.")],
    ]
    assert chunker.finish() == [Confirmed("Edit config.yaml first.", provisional=True)]


def test_a_second_mark_joins_the_provisional_chunk() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert pushes(chunker, ["Really?", "!", " No"]) == [
        [Provisional("Really?")],
        [Retracted("Really?"), Provisional("Really?!")],
        [Confirmed("Really?!", provisional=True)],
    ]


def test_a_lowercase_word_after_a_closing_quote_retracts_the_chunk() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert pushes(chunker, ['"Why?"', " she", " asked."]) == [
        [Provisional('"Why?"')],
        [Retracted('"Why?"')],
        [Provisional('"Why?" she asked.')],
    ]


def test_the_stream_end_confirms_the_provisional_chunk() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert chunker.push("Done!") == [Provisional("Done!")]
    assert chunker.finish() == [Confirmed("Done!", provisional=True)]
    assert chunker.push("Next.") == [Provisional("Next.")]  # and the chunker starts afresh


def test_cut_short_confirms_the_provisional_chunk_and_drops_the_rest() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert pushes(chunker, ["It works.", " And then"]) == [
        [Provisional("It works.")],
        [Confirmed("It works.", provisional=True)],
    ]
    assert chunker.cut_short() == []
    assert chunker.push("Half done.") == [Provisional("Half done.")]
    assert chunker.cut_short() == [Confirmed("Half done.", provisional=True)]
    assert chunker.finish() == []


@pytest.mark.parametrize("text", ["Use HTTPS.", "It is fast!", "Wait...", "Node.js is fast."])
def test_a_plain_word_or_acronym_before_the_mark_is_provisional(text: str) -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert chunker.push(text) == [Provisional(text)]


def test_feed_returns_only_confirmed_chunks() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert feeds(chunker, ["Hello world.", " How", " are you?"]) == [[], ["Hello world."], []]
    assert chunker.flush() == ["How are you?"]


def test_last_sentence_without_a_mark_is_emitted_by_flush() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert chunker.feed("Hello world") == []
    assert chunker.flush() == ["Hello world"]


@pytest.mark.parametrize(
    "text",
    ["It costs $29.", "Apples, etc.", "Made in the U.S.", "The answer is 42.", "Dr.", "a.b@c."],
)
def test_numbers_abbreviations_and_addresses_are_not_provisional(text: str) -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert chunker.push(text) == []


def test_price_waits_for_the_next_non_space_character() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert feeds(chunker, ["It costs $29.", " ", "Next"]) == [[], [], ["It costs $29."]]


def test_price_continues_as_decimal() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert feeds(chunker, ["It costs $29.", "99 today. "]) == [[], ["It costs $29.99 today."]]


def test_a_mid_line_number_ends_the_sentence_before_a_capital() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert feeds(chunker, ["See chapter 7.", " Then"]) == [[], ["See chapter 7."]]


def test_a_list_number_at_a_line_start_never_ends_a_sentence() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert feeds(chunker, ["Steps:\n", "7.", " Then", " stop.\n"]) == [
        ["Steps:"],
        [],
        [],
        ["Then stop."],
    ]


def test_abbreviation_waits_then_continues_before_lowercase() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    deltas = ["Made in the U.S.", " and", " sold. "]
    assert feeds(chunker, deltas) == [[], [], ["Made in the U.S. and sold."]]


def test_abbreviation_waits_then_ends_before_uppercase() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert feeds(chunker, ["Made in the U.S.", " Then"]) == [[], ["Made in the U.S."]]


def test_title_never_ends_a_sentence() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert feeds(chunker, ["Dr.", " Smith", " came. "]) == [[], [], ["Dr. Smith came."]]


def test_cjk_full_stop_ends_the_sentence_at_once() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert pushes(chunker, ["你好。", "今", "天"]) == [[Confirmed("你好。")], [], []]


def test_cjk_question_mark_is_provisional_and_joins_its_run() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert pushes(chunker, ["真的吗？", "！", "太"]) == [
        [Provisional("真的吗？")],
        [Retracted("真的吗？"), Provisional("真的吗？！")],
        [Confirmed("真的吗？！", provisional=True)],
    ]


def test_a_paragraph_break_confirms_at_once() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert pushes(chunker, ["Done", "\n\n", "Next"]) == [[], [Confirmed("Done")], []]


def test_url_is_never_split_while_it_streams() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    deltas = ["See https://x", ".com/a", "?", "b=c", ".", " Next"]
    assert pushes(chunker, deltas) == [[], [], [], [], [], [Confirmed("See x.com.")]]


def test_markup_split_across_deltas_is_removed() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert feeds(chunker, ["**bo", "ld** text.", " Next"]) == [[], [], ["bold text."]]


def test_code_fence_split_across_deltas_is_skipped() -> None:
    deltas = ["Intro:\n`", "`", "`py", "thon\nx = 1. Y", "\n`", "``\nAfter", "."]
    assert run_stream(deltas, first_clause_min_chars=0) == ["Intro:", "After."]


def test_code_fence_text_is_dropped_as_it_streams() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    deltas = ["```\n", "Hello. World. " * 50, "\n```\n", "Done.\n"]
    assert feeds(chunker, deltas) == [[], [], [], ["Done."]]


def test_flush_resets_for_the_next_stream() -> None:
    chunker = SentenceChunker()
    chunker.feed("Unfinished **bold and ```")
    assert chunker.flush() == ["Unfinished bold and"]
    assert chunker.feed("Hello world. ") == ["Hello world."]
    assert chunker.flush() == []


def test_flush_forgets_an_open_code_fence() -> None:
    chunker = SentenceChunker()
    chunker.feed("```\ncode")
    assert chunker.flush() == []
    assert chunker.feed("Spoken again") == []
    assert chunker.flush() == ["Spoken again"]


# --- the early first-clause cut ----------------------------------------------------------------

LONG_FIRST = "On a calm night far from the coast, the sea turns black, and it holds the stars."


def test_first_chunk_is_cut_at_a_clause_once_long_enough() -> None:
    assert run_stream([LONG_FIRST]) == [
        "On a calm night far from the coast,",
        "the sea turns black, and it holds the stars.",
    ]


def test_early_cut_skips_clauses_shorter_than_the_minimum() -> None:
    text = "Yes, well, of course, I can help you with that today, my friend."
    assert run_stream([text]) == [
        "Yes, well, of course, I can help you with that today,",
        "my friend.",
    ]


def test_early_cut_applies_only_to_the_first_chunk() -> None:
    text = "Hi. " + LONG_FIRST
    assert run_stream([text], first_clause_min_chars=2) == ["Hi.", LONG_FIRST]


def test_zero_disables_the_early_cut() -> None:
    assert run_stream([LONG_FIRST], first_clause_min_chars=0) == [LONG_FIRST]


def test_comma_inside_a_number_is_no_clause_boundary() -> None:
    text = "We counted 1,000 birds and 22,1 percent more, all in one day."
    assert run_stream([text], first_clause_min_chars=5) == [
        "We counted 1,000 birds and 22,1 percent more,",
        "all in one day.",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Well; then. ", ["Well;", "then."], id="semicolon"),
        pytest.param("Note: this. ", ["Note:", "this."], id="colon"),
        pytest.param("Wait — what. ", ["Wait —", "what."], id="em_dash"),
        pytest.param("Wait - what. ", ["Wait -", "what."], id="spaced_hyphen"),
        pytest.param("A well-known fact. ", ["A well-known fact."], id="hyphen_in_word"),
        pytest.param("你好，今天很好。", ["你好，", "今天很好。"], id="cjk_comma"),
        pytest.param("１，０００円です。", ["１，０００円です。"], id="cjk_number"),
    ],
)
def test_early_cut_clause_boundaries(text: str, expected: list[str]) -> None:
    assert run_stream([text], first_clause_min_chars=2) == expected


def test_early_cut_counts_speakable_characters() -> None:
    text = "**Hi** [x](https://example.com/long/path), there you go."
    assert run_stream([text], first_clause_min_chars=5) == ["Hi x,", "there you go."]
    assert run_stream([text], first_clause_min_chars=6) == ["Hi x, there you go."]


# --- the max_chars cut -------------------------------------------------------------------------


def test_long_unpunctuated_text_is_cut_at_word_boundaries() -> None:
    rng = random.Random(7)
    words = ["".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 9))) for _ in range(400)]
    text = " ".join(words)[:2000].rstrip()
    assert len(text) >= 1990
    chunks = run_stream([text])
    assert all(len(chunk) <= 240 for chunk in chunks)
    assert " ".join(chunks) == text  # no word was cut in two
    assert all(len(chunk) > 200 for chunk in chunks[:-1])  # and no chunk is cut needlessly short


def test_long_sentence_is_cut_at_its_last_clause_boundary() -> None:
    text = "word " * 30 + "then a comma, " + "more " * 30 + "end."
    chunks = run_stream([text], first_clause_min_chars=0, max_chars=200)
    assert chunks[0].endswith("then a comma,")
    assert all(len(chunk) <= 200 for chunk in chunks)


def test_long_cjk_text_is_cut_after_a_cjk_comma() -> None:
    text = "天" * 30 + "，" + "地" * 30 + "。"
    chunks = run_stream([text], first_clause_min_chars=0, max_chars=40)
    assert chunks == ["天" * 30 + "，", "地" * 30 + "。"]


def test_long_cjk_text_without_comma_is_cut_hard() -> None:
    text = "天" * 100
    chunks = run_stream([text], first_clause_min_chars=0, max_chars=40)
    assert chunks == ["天" * 40, "天" * 40, "天" * 20]


def test_long_word_is_cut_hard() -> None:
    assert run_stream(["x" * 25], max_chars=10) == ["x" * 10, "x" * 10, "x" * 5]


@pytest.mark.parametrize(
    "options", [{"first_clause_min_chars": -1}, {"max_chars": 0}], ids=["negative_min", "zero_max"]
)
def test_invalid_options_are_rejected(options: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        SentenceChunker(**options)


# --- determinism, for any text and any cutting into deltas -------------------------------------

_ALPHABET = "aZé文字 \n.!?,;:*_#`~-—…。！？，、１09$@/\"')(]「」😀\u200d\x00\t\r"
_TOKENS = [
    *_ALPHABET,
    " word",
    "Well",
    "Dr.",
    "U.S.",
    "e.g.",
    "$29.",
    "3.14",
    "No. 5",
    "...",
    "**",
    "1. ",
    "https://x.com/a?b=c",
    "a.b@c.io",
    "[l](http://x)",
    "```",
    "```py\n",
    "\n```\n",
    "| a | b |\n",
    "|a|b|c|d|",
    "|---|:-:|\n",
    "你好",
    "😀🎉",
    "Node.",
    "js",
    "?!",
    " she",
    " The",
    "«",
    " »",
    "am 3.",
    "z. B.",
    "etc.",
    "Well...",
    "\n1.",
    "package.json",
]
texts = st.one_of(
    st.text(alphabet=_ALPHABET, max_size=150),
    st.lists(st.sampled_from(_TOKENS), max_size=50).map("".join),
)
options = st.sampled_from(
    [{}, {"first_clause_min_chars": 0}, {"first_clause_min_chars": 4, "max_chars": 12}]
)
cuts = st.lists(st.integers(min_value=0, max_value=10_000), max_size=12)


@settings(max_examples=300, deadline=None, database=None)
@given(text=texts, cut_at=cuts, chunker_options=options)
def test_chunks_do_not_depend_on_delta_cutting(
    text: str, cut_at: list[int], chunker_options: dict[str, int]
) -> None:
    whole = run_stream([text], **chunker_options)
    assert run_stream(text, **chunker_options) == whole
    assert run_stream(split_at(text, cut_at), **chunker_options) == whole
    assert fed_stream(split_at(text, cut_at), **chunker_options) == whole


@settings(max_examples=300, deadline=None, database=None)
@given(text=texts, chunker_options=options)
def test_every_chunk_is_speakable_and_short_enough(
    text: str, chunker_options: dict[str, int]
) -> None:
    max_chars = chunker_options.get("max_chars", 240)
    for chunk in run_stream([text], **chunker_options):
        assert has_speech(chunk)
        assert chunk == chunk.strip() and "\n" not in chunk
        assert len(chunk) <= max_chars


@settings(max_examples=300, deadline=None, database=None)
@given(case=st.sampled_from(TABLE), cut_at=cuts)
def test_table_texts_cut_anywhere_give_the_table_chunks(
    case: tuple[str, str, list[str]], cut_at: list[int]
) -> None:
    _, text, expected = case
    assert run_stream(split_at(text, cut_at), first_clause_min_chars=0) == expected


# --- bounded work ------------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_long_paragraph_fed_one_character_at_a_time_is_linear() -> None:
    rng = random.Random(3)
    words = ("".join(rng.choice("abcdefg") for _ in range(rng.randint(1, 9))) for _ in range(5000))
    text = " ".join(words)[:20_000]
    chunks = run_stream(text)
    assert " ".join(chunks) == text.rstrip()


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "text",
    [
        "!" * 20_000,
        "." * 20_000,
        "`" * 20_000,
        ", " * 10_000,
        "a." + ")" * 20_000,
        "$29." + " " * 20_000 + "X",
        "https://x.com/" + "a.b?" * 5_000,
        "```\n" + "code. line\n" * 2_000,
        "\n``" * 7_000,
    ],
    ids=["bangs", "dots", "ticks", "commas", "closers", "spaces", "url", "fence", "fence_starts"],
)
def test_pathological_streams_finish(text: str) -> None:
    assert run_stream(text) == run_stream([text])


# --- speakable() and has_speech() --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("**bold** and __bold__", "bold and bold", id="strong"),
        pytest.param("*em* and _em_", "em and em", id="em"),
        pytest.param("snake_case_name and __init__", "snake_case_name and init", id="underscores"),
        pytest.param("2*3 is six", "2*3 is six", id="times"),
        pytest.param("# Heading", "Heading", id="heading"),
        pytest.param("> quoted", "quoted", id="quote"),
        pytest.param("- a\n* b\n+ c\n12. d", "a b c d", id="list_markers"),
        pytest.param("use `x.y()` here", "use x.y() here", id="inline_code"),
        pytest.param("[label](http://x) and ![alt](a.png)", "label and alt", id="links"),
        pytest.param("go to https://www.ex.com/a?b=c.", "go to ex.com.", id="url_host"),
        pytest.param("<https://ex.com/a>", "ex.com", id="autolink"),
        pytest.param("a.b@c.io", "a.b@c.io", id="email_kept"),
        pytest.param("before\n```py\nx = 1\n```\nafter", "before after", id="fenced_block"),
        pytest.param("| a | b |", "a, b", id="table_row"),
        pytest.param("|a||b|c|", "a,b,c", id="tight_table_row"),
        pytest.param("hi 😀🎉!", "hi!", id="emoji"),
        pytest.param("a\x00b\u2028c\x0bd", "a b c d", id="control_chars"),
        pytest.param("  many   spaces  ", "many spaces", id="whitespace"),
        pytest.param("word , and ! then", "word, and! then", id="space_before_mark"),
        pytest.param("in .gitconfig or .env", "in .gitconfig or .env", id="leading_dot_names"),
        pytest.param("***", "", id="nothing_left"),
        pytest.param("", "", id="empty"),
    ],
)
def test_speakable(text: str, expected: str) -> None:
    assert speakable(text) == expected


@pytest.mark.parametrize("text", ["......", "?!", "—", "***", "😀🎉", "", " \n", "- ", "|---|"])
def test_has_speech_is_false_without_letters_or_digits(text: str) -> None:
    assert not has_speech(text)


@pytest.mark.parametrize("text", ["a", "7", "文", "é", "٣", "Ж", "?a!"])
def test_has_speech_is_true_for_any_letter_or_digit(text: str) -> None:
    assert has_speech(text)
