"""Where a sentence or clause ends, decided from the text around one mark. No state, no I/O.

:class:`~voicechat.pipeline.chunker.SentenceChunker` finds candidate marks and asks
:func:`decide_mark` (sentence marks) or :func:`is_clause_boundary` (clause marks) about each;
``None`` means the text that decides has not arrived yet. :func:`probable_end` says when such an
undecided mark is most likely an end, so that the chunker can emit the chunk provisionally.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from voicechat.pipeline.abbreviations import ABBREVIATIONS, ORDINAL_LEADS, TITLES

MARKS = ".!?…。！？．"
CJK_MARKS = "。！？"
FINAL_MARKS = "。"  # nothing after it goes on with its sentence, or joins it
CLOSERS = "\"'”’»›)]}」』）】〉》*_`~"
OPENERS = "\"'“‘„«‹([{<*_`~¿¡「『（【〈《"
# Longest run of marks, closers or fence markers examined at once: it bounds the work that a
# pending decision repeats on every feed(), so feed() stays O(len(delta)).
LOOKAHEAD = 16

CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
_CLAUSE_AT = re.compile(r"[,;:，；：、—–-]")
_VOWELS = frozenset("aeiouy")
_ASKS = frozenset("!?！？")
_QUOTES = frozenset("\"'”’»›」』")


@dataclass(frozen=True, slots=True)
class Step:
    """The verdict at a candidate: cut the chunk at `pos`, or go on scanning from it."""

    cut: bool
    pos: int


def decide_mark(buf: str, at: int, *, final: bool, prev: str) -> Step | None:
    """Decide a sentence mark at `at`: the whole run of marks and closers after it counts.

    `prev` is the character before `buf` ("\\n" at the start of the stream)."""
    if buf[at] in FINAL_MARKS:
        return Step(True, at + 1)
    marks_end = run_end(buf, at, MARKS)
    end = _closers_end(buf, at, marks_end, final=final)
    if end is None or (end >= len(buf) and not final):
        return None
    run = buf[at:marks_end]
    follower = buf[end : end + 1]
    if any(mark in CJK_MARKS for mark in run):
        return Step(True, end)
    if follower and not follower.isspace() and not CJK.match(follower):
        return Step(False, marks_end)  # glued: "3.14", "Node.js", "a.b@c.io", "x.com/a?b=c"
    if _ASKS.intersection(run):
        verdict = "end"
    else:
        token, number_place = _word_before(buf, at, prev=prev)
        verdict = _classify_word(token, number_place=number_place)
        if len(run) > 1 or "…" in run:
            verdict = "skip" if verdict == "skip" else "wait"  # an ellipsis: the next word decides
    if verdict == "end" and _QUOTES.intersection(buf[marks_end:end]):
        verdict = "wait"  # a dialogue tag goes on: '"Why?" she asked.', "« Viens ! » dit-elle."
    if verdict != "wait":
        return Step(verdict == "end", end)
    following = _next_word_start(buf, end, final=final)
    if following is None:
        return None
    continues = following.islower() or following.isdigit()
    return Step(not continues, end)


def _closers_end(buf: str, at: int, marks_end: int, *, final: bool) -> int | None:
    """The end of the closers after a mark run; French closes with a spaced guillemet."""
    end = run_end(buf, marks_end, CLOSERS)
    if "«" not in buf[:at] and "‹" not in buf[:at]:
        return end
    if buf[end : end + 1] == " " and end + 1 == len(buf) and not final:
        return None  # "« Viens ! »": the guillemet may follow the space
    if buf[end : end + 2] in (" »", " ›"):
        return run_end(buf, end + 1, CLOSERS)
    return end


def probable_end(buf: str, at: int, *, prev: str) -> bool:
    """Whether the undecided mark at `at`, with only marks, closers and spaces after it up to
    the end of `buf`, most likely ends the sentence: ``!`` or ``?`` after anything but a URL or
    an address, a period or an ellipsis after a plain word (no number, title or abbreviation)."""
    if buf[at] not in ".!?…！？":
        return False
    marks_end = run_end(buf, at, MARKS)
    if buf[run_end(buf, marks_end, CLOSERS) :].strip(" "):
        return False
    spaced = at > 1 and buf[at - 1] == " " and buf[at] in "!?"  # French: "Comment ça va ?"
    token, number_place = _word_before(buf, at - 1 if spaced else at, prev=prev)
    bare = token.lstrip(OPENERS).lower()
    if not bare or "/" in bare or "@" in bare or bare.startswith("www."):
        return False
    run = buf[at:marks_end]
    if _ASKS.intersection(run):
        return True
    return _classify_word(token, number_place=number_place) == "end" and "." not in bare


def _word_before(buf: str, at: int, *, prev: str) -> tuple[str, bool]:
    """The token before `at`, and whether a number of one or two digits there is a list marker
    or an ordinal: first on its line (after spaces or quote marks), right after a colon, or
    after a German article or preposition ("am 3. Mai"). `prev` is the character before
    `buf` ("\\n" at the start of the stream)."""
    start = max(buf.rfind(" ", 0, at), buf.rfind("\n", 0, at)) + 1
    line = buf.rfind("\n", 0, start) + 1
    before = buf[line:start].strip(" >")
    token = buf[start:at]
    if not before:
        return token, line > 0 or prev in ("\n", ":")
    lead = before.rsplit(" ", 1)[-1]
    return token, lead.endswith(":") or lead.lower() in ORDINAL_LEADS


def _classify_word(token: str, *, number_place: bool) -> Literal["end", "skip", "wait"]:
    """Whether "token." ends a sentence, never does, or must wait for the next word."""
    bare = token.lstrip(OPENERS)
    core = bare.rstrip(CLOSERS)
    lowered = bare.lower()
    if not core or "://" in lowered or "@" in lowered or lowered.startswith("www."):
        return "end"
    if core[-1].isdigit():
        # "1. Open it" first on its line is a list marker, "am 3. Mai" an ordinal.
        return "skip" if number_place and core.isdigit() and len(core) <= 2 else "wait"
    word = core.lower()
    if word in TITLES or (len(core) == 1 and core.isupper() and core != "I"):
        return "skip"  # a title, or an initial as in "J. Smith"
    plain = core.replace("'", "").replace("’", "").replace("-", "")
    if word in ABBREVIATIONS or len(core) == 1 or not plain.isalpha():
        return "wait"
    if plain.isascii() and not plain.isupper() and _VOWELS.isdisjoint(plain.lower()):
        return "wait"  # no vowel: an abbreviation no list knows ("std.", "pkg."), no "HTTPS."
    return "end"


def _next_word_start(buf: str, start: int, *, final: bool) -> str | None:
    """First non-space character from `start` ("" at a newline or the end), None if unknown."""
    for char in buf[start : start + LOOKAHEAD]:
        if char == "\n":
            return ""
        if not char.isspace():
            return char
    return "" if final else None


def run_end(text: str, start: int, chars: str) -> int:
    """The end of the run of `chars` from `start`, looked at up to ``LOOKAHEAD`` characters."""
    end, stop = start, min(len(text), start + LOOKAHEAD)
    while end < stop and text[end] in chars:
        end += 1
    return end


def is_clause_boundary(text: str, at: int) -> bool | None:
    """Whether the clause mark at `at` ends a clause; None when the next character decides."""
    char = text[at]
    following = text[at + 1] if at + 1 < len(text) else None
    if char == "—":
        return True
    if char in "-–":
        if at < 2 or text[at - 1] != " " or text[at - 2].isspace():
            return False  # a hyphen in a word, a negative number or a bullet
        return None if following is None else following == " "
    if char in ",;" and at > 0 and text[at - 1].isalpha():
        return True  # after a letter, decided at once; only numbers ("1,000") hold commas
    if char in ",;:":
        return None if following is None else following.isspace()  # not "1,000", "10:30"
    if at == 0 or not text[at - 1].isdigit():
        return True
    return None if following is None else not following.isdigit()  # not "１，０００"


def length_cut(buf: str, limit: int) -> int:
    """Where to cut a chunk that would exceed `limit` characters (`buf` is longer than that)."""
    for found in reversed(list(_CLAUSE_AT.finditer(buf, 0, limit))):
        if is_clause_boundary(buf, found.start()):
            return found.start() + 1
    space = max(buf.rfind(" ", 0, limit + 1), buf.rfind("\n", 0, limit + 1))
    if space > 0 and buf[:space].strip():
        return space
    return limit
