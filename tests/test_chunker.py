"""SentenceChunker and speakable(): the spec as a table, then timing, cuts and determinism."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicechat.pipeline.chunker import SentenceChunker
from voicechat.pipeline.speakable import has_speech, speakable

pytestmark = pytest.mark.timeout(30)


def run_stream(deltas: Iterable[str], **options: int) -> list[str]:
    """Feed every delta, then flush; return all chunks in order."""
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


# (id, text, expected chunks) with the early first-clause cut disabled, so that each row shows
# sentence splitting and cleanup alone; the early cut has tests of its own below.
TABLE: list[tuple[str, str, list[str]]] = [
    # sentence marks
    ("two_sentences", "Hello world. How are you?", ["Hello world.", "How are you?"]),
    ("exclamation", "Great! Let's go.", ["Great!", "Let's go."]),
    ("question", "Ready? Yes.", ["Ready?", "Yes."]),
    # A word of letters ends its sentence at its first mark (emitted at once); what follows
    # the mark (more marks, a closing quote or bracket) is not spoken.
    ("double_bang", "Hey!! Wow", ["Hey!", "Wow"]),
    ("interrobang", "Really?! No way.", ["Really?", "No way."]),
    ("closing_quote", 'He said "Hi." Then he left.', ['He said "Hi.', "Then he left."]),
    ("curly_quote", "She said “Go.” And she went.", ["She said “Go.", "And she went."]),
    ("closing_paren", "It works (mostly.) Try it.", ["It works (mostly.", "Try it."]),
    ("single_quotes", "'Yes.' Fine.", ["Yes.", "Fine."]),
    ("digit_before_bangs_waits", "Count to 10!! Now.", ["Count to 10!!", "Now."]),
    ("quote_after_number_kept", 'It said "v2." Then.', ['It said "v2."', "Then."]),
    ("bold_closer_kept", "**Note.** Read this.", ["Note.", "Read this."]),
    ("no_final_mark", "Hello world", ["Hello world"]),
    ("trailing_spaces", "Hello world.   ", ["Hello world."]),
    ("lowercase_after_word", "It is done. and more", ["It is done.", "and more"]),
    ("glued_after_a_word_splits", "First.Second sentence", ["First.", "Second sentence"]),
    ("glued_after_a_digit_stays", "Take 2.5mg daily.", ["Take 2.5mg daily."]),
    ("apostrophes", "It's John's. Don't.", ["It's John's.", "Don't."]),
    ("hyphenated_word", "A well-known fact. Yes.", ["A well-known fact.", "Yes."]),
    ("em_dash_no_cut", "Wait — what? Yes.", ["Wait — what?", "Yes."]),
    # line breaks
    ("newline_ends_chunk", "First line\nSecond line", ["First line", "Second line"]),
    ("paragraphs", "One.\n\nTwo.", ["One.", "Two."]),
    ("newline_mid_sentence", "This line\ngoes on here.", ["This line", "goes on here."]),
    ("crlf", "One\r\nTwo", ["One", "Two"]),
    # abbreviations
    (
        "titles_trap",
        "Dr. Smith met Mr. Jones at 9 a.m. in the U.S., e.g. today.",
        ["Dr. Smith met Mr. Jones at 9 a.m. in the U.S., e.g. today."],
    ),
    ("mrs_ms_prof", "Mrs. Lee and Ms. Ito met Prof. Kim.", ["Mrs. Lee and Ms. Ito met Prof. Kim."]),
    ("saint", "We visited St. Louis. It was hot.", ["We visited St. Louis.", "It was hot."]),
    ("versus", "Cats vs. dogs is old. Next.", ["Cats vs. dogs is old.", "Next."]),
    ("etc_mid_sentence", "Apples, pears, etc. are fruit.", ["Apples, pears, etc. are fruit."]),
    ("etc_at_end", "Apples, pears, etc. Then we ate.", ["Apples, pears, etc.", "Then we ate."]),
    ("ie", "One thing, i.e. this one. Done.", ["One thing, i.e. this one.", "Done."]),
    ("pm_mid_sentence", "Meet at 5 p.m. tomorrow.", ["Meet at 5 p.m. tomorrow."]),
    ("pm_at_end", "Meet at 5 p.m. Then eat.", ["Meet at 5 p.m.", "Then eat."]),
    ("us_at_end", "He lives in the U.S. He likes it.", ["He lives in the U.S.", "He likes it."]),
    ("uk_mid_sentence", "The U.K. team won.", ["The U.K. team won."]),
    ("inc", "Acme Inc. makes tools.", ["Acme Inc. makes tools."]),
    ("jr", "Martin Luther King Jr. was a leader.", ["Martin Luther King Jr. was a leader."]),
    ("no_before_digit", "See No. 5 for details.", ["See No. 5 for details."]),
    ("no_as_word", "No. That is wrong.", ["No.", "That is wrong."]),
    ("month", "It opens Jan. 5 this year.", ["It opens Jan. 5 this year."]),
    ("initials", "J. R. R. Tolkien wrote it. Read it.", ["J. R. R. Tolkien wrote it.", "Read it."]),
    ("pronoun_i", "So do I. Then we left.", ["So do I.", "Then we left."]),
    # numbers
    ("decimal", "Pi is 3.14 roughly.", ["Pi is 3.14 roughly."]),
    (
        "numbers_trap",
        "It costs $3.50. Version 0.12.1 ships at 10:30. Es hat 22,1 Grad.",
        ["It costs $3.50.", "Version 0.12.1 ships at 10:30.", "Es hat 22,1 Grad."],
    ),
    ("price_at_end", "It costs $29. Next week more.", ["It costs $29.", "Next week more."]),
    ("version", "Install v1.2.3 now.", ["Install v1.2.3 now."]),
    ("year_at_end", "It was 2024. Then came spring.", ["It was 2024.", "Then came spring."]),
    ("thousands", "We sold 1,000 units.", ["We sold 1,000 units."]),
    ("clock", "At 10:30 we meet.", ["At 10:30 we meet."]),
    ("steps_list", "Steps:\n1. Open it\n2. Close it", ["Steps:", "Open it", "Close it"]),
    ("inline_list", "Do this: 1. Open it 2. Close it.", ["Do this: 1. Open it 2. Close it."]),
    ("paren_list", "1) First\n2) Second", ["First", "Second"]),
    ("bare_list_number_line", "Items:\n1.\nApples", ["Items:", "Apples"]),
    # URLs and e-mail
    (
        "url_email_trap",
        "See https://ex.com/a.b?c=d. Mail a.b@c.io now.",
        ["See ex.com.", "Mail a.b@c.io now."],
    ),
    ("url_question", "Is it https://x.com/a?b=c really? Yes.", ["Is it x.com really?", "Yes."]),
    ("www_url", "Visit www.example.org/path today.", ["Visit example.org today."]),
    ("email_initial", "Write to j.doe@mail.ex.com now.", ["Write to j.doe@mail.ex.com now."]),
    ("email_plain", "Write to jdoe@mail.ex.com now.", ["Write to jdoe@mail.ex.com now."]),
    # The price of emitting "word." at once: a dotted name after a word of letters is cut.
    ("dotted_name", "Node.js is fast. Really.", ["Node.", "js is fast.", "Really."]),
    ("file_name", "Edit config.yaml first.", ["Edit config.", "yaml first."]),
    # ellipsis
    ("ellipsis_after_a_word", "Well... I think so.", ["Well.", "I think so."]),
    ("ellipsis_after_a_number", "Wait 5... then go.", ["Wait 5... then go."]),
    ("ellipsis_char", "Hmm… maybe later. Bye.", ["Hmm… maybe later.", "Bye."]),
    ("ellipsis_then_question", "Wait... really? Yes.", ["Wait.", "really?", "Yes."]),
    # CJK and other scripts
    ("chinese", "你好。今天很好！走吧？", ["你好。", "今天很好！", "走吧？"]),
    ("fullwidth_number", "１，０００円", ["１，０００円"]),
    ("japanese", "こんにちは。元気ですか？はい！", ["こんにちは。", "元気ですか？", "はい！"]),
    ("japanese_quote", "「はい。」と彼は言った。", ["「はい。", "と彼は言った。"]),
    ("japanese_fullwidth_period", "ペンです．次に．", ["ペンです．", "次に．"]),
    ("chinese_english", "我喜欢Python。It is. 你呢？", ["我喜欢Python。", "It is.", "你呢？"]),
    ("chinese_ascii_marks", "好的!我们走吧?", ["好的!", "我们走吧?"]),
    ("korean", "안녕하세요. 반갑습니다.", ["안녕하세요.", "반갑습니다."]),
    ("russian", "Привет, мир. Как дела?", ["Привет, мир.", "Как дела?"]),
    # markdown
    ("emphasis", "**Bold** and *em* and __strong__ and _it_.", ["Bold and em and strong and it."]),
    ("snake_case_kept", "snake_case_name", ["snake_case_name"]),
    ("markdown_mix", "# H\n**bold** `code` [link](http://x)", ["H", "bold code link"]),
    ("heading", "## Title\nText here.", ["Title", "Text here."]),
    ("blockquote", "> Quoted words.\nAfter.", ["Quoted words.", "After."]),
    ("bullets", "- one\n* two\n+ three", ["one", "two", "three"]),
    ("inline_code", "Run `make test` now.", ["Run make test now."]),
    ("link", "Read [the docs](https://x.com/d.html) first.", ["Read the docs first."]),
    ("image", "![a cat](cat.png) sits.", ["a cat sits."]),
    ("fence", "Code:\n```python\nprint('Hi. There')\n```\nDone.", ["Code:", "Done."]),
    ("tilde_fence", "~~~\nx = 1. y\n~~~\nAfter.", ["After."]),
    ("unclosed_fence", "Look:\n```\nfoo. bar", ["Look:"]),
    ("table", "| Name | Age |\n|---|---|\n| Bob | 42 |", ["Name, Age", "Bob, 42"]),
    ("strikethrough", "~~old~~ new price.", ["old new price."]),
    ("horizontal_rule", "Above.\n---\nBelow.", ["Above.", "Below."]),
    # nothing speakable
    ("dots_only", "......", []),
    ("marks_only", "?!", []),
    ("dash_only", "—", []),
    ("stars_only", "***", []),
    ("fence_only", "```", []),
    ("bullet_only", "- ", []),
    ("emoji_only", "😀🎉", []),
    ("empty", "", []),
    ("blank_lines", "   \n\n  ", []),
    ("emoji_in_sentences", "Great job 🎉! Next 👍.", ["Great job!", "Next."]),
    ("zwj_emoji", "👨\u200d👩\u200d👧 Family.", ["Family."]),
    # control characters and escaping
    ("control_chars", "Hello\x00world\x07. Next\u2028line.", ["Hello world.", "Next line."]),
    ("tabs_and_feeds", "a\tb\x0bc\x0cd\x1fe.", ["a b c d e."]),
    ("ampersand_kept", "Tom & Jerry <b>x</b> 'a' \"b\"", ["Tom & Jerry <b>x</b> 'a' \"b\""]),
]

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


def test_table_has_at_least_seventy_cases() -> None:
    assert len(TABLE) >= 70
    assert len({case_id for case_id, _, _ in TABLE}) == len(TABLE)


# --- when feed() returns a chunk ---------------------------------------------------------------


def feeds(chunker: SentenceChunker, deltas: Sequence[str]) -> list[list[str]]:
    """What feed() returned right after each delta."""
    return [chunker.feed(delta) for delta in deltas]


def test_a_word_of_letters_ends_the_sentence_with_the_delta_that_brings_its_mark() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert feeds(chunker, ["Hello world.", " How", " are you?"]) == [
        ["Hello world."],
        [],
        ["How are you?"],
    ]
    assert chunker.flush() == []


@pytest.mark.parametrize("follower", [" ", "\n", "\n\n"])
def test_space_or_newline_after_the_mark_is_enough(follower: str) -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert chunker.feed("Hello world." + follower) == ["Hello world."]


def test_last_sentence_without_a_mark_is_emitted_by_flush() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert chunker.feed("Hello world") == []
    assert chunker.flush() == ["Hello world"]


def test_price_waits_for_the_next_non_space_character() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert feeds(chunker, ["It costs $29.", " ", "Next"]) == [[], [], ["It costs $29."]]


def test_price_continues_as_decimal() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert feeds(chunker, ["It costs $29.", "99 today. "]) == [[], ["It costs $29.99 today."]]


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


def test_repeated_marks_after_a_word_are_not_spoken_again() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert feeds(chunker, ["Hey!", "!", " Wow"]) == [["Hey!"], [], []]
    assert chunker.flush() == ["Wow"]


def test_a_closing_quote_after_the_mark_does_not_delay_the_sentence() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert feeds(chunker, ['He said "Hi.', '"', " Then"]) == [['He said "Hi.'], [], []]
    assert chunker.flush() == ["Then"]


def test_cjk_mark_ends_the_sentence_at_once() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert feeds(chunker, ["你好。", "今", "天"]) == [["你好。"], [], []]


def test_url_is_never_split_while_it_streams() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    deltas = ["See https://x", ".com/a", "?", "b=c", ".", " Next"]
    assert feeds(chunker, deltas) == [[], [], [], [], [], ["See x.com."]]


def test_markup_split_across_deltas_is_removed() -> None:
    chunker = SentenceChunker(first_clause_min_chars=0)
    assert feeds(chunker, ["**bo", "ld** text.", " Next"]) == [[], ["bold text."], []]


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
