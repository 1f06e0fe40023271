"""Turn an LLM's streamed text into speakable chunks for a TTS engine.

`SentenceChunker.feed()` takes the deltas of one answer and returns the chunks each delta
completes; `flush()` ends the stream. Every chunk has been through `speakable()`: Markdown markers,
fenced code, URLs (reduced to their host name) and emoji are gone, and a chunk with nothing a TTS
engine can pronounce is never returned.

The chunks are a pure function of the whole text: however it is cut into deltas, the same chunks
come out, and feed() only decides *when* each one is returned, as soon as the text that decides it
has arrived. That sets the latency rules:

* A word of letters that is no title or abbreviation ends its sentence at its first ``.``,
  ``!`` or ``?``, and so do CJK marks: feed() returns the sentence with the very delta that
  brings the mark, without waiting for the next one (Pipecat waits one delta there). Whatever
  follows that mark (more marks, a closing quote or bracket) opens the next chunk and is not
  spoken. The price is that a dotted name after such a word is cut ("Node." / "js is fast."), and
  "Well... I think so." becomes "Well." / "I think so." (a pause, as the ellipsis asks anyway).
* After anything else (digits, initials, abbreviations, URLs) a sentence ends at ``. ! ? …``
  once the character after the mark run (and after any closing quotes, brackets or Markdown
  markers) has arrived: that character tells "3." from "3.14", "a." from "a.b@c.io".
* A Latin mark glued to the next character ("3.14", "x.com/a?b=c") then never ends a sentence,
  unless that character is CJK.
* After a word that may be an abbreviation or a number ("U.S.", "etc.", "$29.", "a.m.", "No."),
  the chunker waits for the next word and goes on when it starts with a lowercase letter or a
  digit. Titles and "e.g."/"i.e." ("Dr.", "vs.") never end a sentence, nor does a bare one- or
  two-digit number: that is a list marker ("1. Open it", at a line start or inline).
* An ellipsis after a number or an abbreviation never ends a sentence; a newline still does.
* A newline always ends a chunk; a line that opens a ``` or ~~~ fence starts a code block that is
  dropped, up to and including its closing fence line.
* The first chunk of a stream may end early at a clause boundary (``, ; : — `` or a spaced dash)
  once it holds ``first_clause_min_chars`` speakable characters, so the first audio starts sooner.
* A chunk whose raw text would exceed ``max_chars`` is cut at its last clause boundary, else at
  its last space, else hard at ``max_chars``. speakable() never lengthens text, so no returned
  chunk is longer than ``max_chars`` either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from voicechat.pipeline.speakable import sanitize, speakable

__all__ = ["SentenceChunker"]

_MARKS = ".!?…。！？．"
_CJK_MARKS = "。！？"
_CLOSERS = "\"'”’»›)]}」』）】〉》*_`~"
_LEFTOVERS = _MARKS + "\"'”’»›)]}」』）】〉》*_~ "
_OPENERS = "\"'“‘„«‹([{<*_`~¿¡「『（【〈《"
# Longest run of marks, closers or fence markers examined at once: it bounds the work that a
# pending decision repeats on every feed(), so feed() stays O(len(delta)).
_LOOKAHEAD = 16
_FENCE_LINE_MAX = 64

_SENTENCE_AT = re.compile(r"[.!?…。！？．\n]")
_BREAK_AT = re.compile(r"[.!?…。！？．\n,;:，；：、—–-]")
_CLAUSE_AT = re.compile(r"[,;:，；：、—–-]")
_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")

# Never end a sentence: they are followed by what they qualify.
_TITLES = frozenset(
    "mr mrs ms mx dr prof rev hon st mt gen col capt lt sgt gov sen fr vs e.g i.e cf viz".split()
)
# End a sentence only when the next word does not start with a lowercase letter or a digit.
_ABBREVIATIONS = frozenset(
    "etc inc ltd co corp llc jr sr esp approx dept est al no nr vol fig figs eq ed pp ch sec "
    "ca jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri "
    "sat sun bzw usw ggf evtl inkl".split()
)


@dataclass(frozen=True, slots=True)
class _Step:
    """The scanner's verdict at a candidate: cut the chunk at `pos`, or go on scanning from it."""

    cut: bool
    pos: int


class SentenceChunker:
    """Split one streamed answer into speakable chunks, identically for any cutting into deltas.

    Plain synchronous code without I/O: call `feed()` with each delta and `flush()` at the end of
    the stream; after `flush()` the chunker is ready for the next stream.
    """

    def __init__(self, *, first_clause_min_chars: int = 30, max_chars: int = 240) -> None:
        """`first_clause_min_chars=0` disables the early first-clause cut."""
        if first_clause_min_chars < 0:
            raise ValueError("first_clause_min_chars must be >= 0")
        if max_chars < 1:
            raise ValueError("max_chars must be >= 1")
        self._min_first = first_clause_min_chars
        self._max = max_chars
        self._reset()

    def feed(self, delta: str) -> list[str]:
        """Add one delta; return the speakable chunks it completes (usually none or one)."""
        self._buf += self._normalize(delta)
        return self._drain(final=False)

    def flush(self) -> list[str]:
        """End the stream: return whatever speakable text remains, and reset."""
        chunks = self._drain(final=True)
        self._reset()
        return chunks

    def _reset(self) -> None:
        self._buf = ""  # raw text not emitted yet; it starts where a chunk starts
        self._scan = 0  # _buf[:_scan] holds no boundary
        self._first = True  # no chunk returned yet in this stream
        self._line_start = True  # _buf starts at the beginning of a line
        self._fence_checked = False
        self._fence: str | None = None  # opening marker of the code block being dropped
        self._fence_line: str | None = ""  # its current line, None once it cannot close the block
        self._space_before = False

    def _normalize(self, delta: str) -> str:
        # Collapsing spaces across deltas keeps every lookahead a few characters long. A plain
        # delta (printable, no double space) is left as it is by both passes: skip them.
        if delta.isprintable() and "  " not in delta:
            text = delta
        else:
            text = re.sub(" {2,}", " ", sanitize(delta))
        if self._space_before and text.startswith(" "):
            text = text[1:]
        if text:
            self._space_before = text.endswith(" ")
        return text

    def _drain(self, *, final: bool) -> list[str]:
        chunks: list[str] = []
        while self._buf:
            if self._fence is not None:
                if not self._skip_fence():
                    break
                continue
            if self._line_start and not self._fence_checked:
                opened = self._open_fence(final=final)
                if opened is None:
                    break
                if opened:
                    continue
            end = self._next_cut(final=final)
            if end is None:
                break
            chunks.extend(self._emit(end))
        return chunks

    def _emit(self, end: int) -> list[str]:
        raw, self._buf, self._scan = self._buf[:end], self._buf[end:], 0
        self._line_start, self._fence_checked = raw.endswith("\n"), False
        # A sentence cut at once leaves what followed its mark ("..", a closing quote) to open
        # this chunk: it belongs to the previous sentence and is not spoken.
        text = speakable(raw.lstrip(_LEFTOVERS))
        if not text:
            return []
        self._first = False
        return [text]

    def _next_cut(self, *, final: bool) -> int | None:
        """Where the current chunk ends, or None until more text arrives."""
        early = self._first and self._min_first > 0
        pattern = _BREAK_AT if early else _SENTENCE_AT
        buf, limit = self._buf, self._max
        while True:
            found = pattern.search(buf, self._scan, min(len(buf), limit))
            if found is None:
                self._scan = min(len(buf), limit)
                if len(buf) > limit:
                    return _length_cut(buf, limit)
                return len(buf) if final else None
            step = self._decide(found.start(), final=final)
            if step is None:
                self._scan = found.start()
                return None
            if not step.cut:
                self._scan = step.pos
                continue
            return step.pos if step.pos <= limit else _length_cut(buf, limit)

    def _decide(self, at: int, *, final: bool) -> _Step | None:
        char = self._buf[at]
        if char == "\n":
            return _Step(True, at + 1)
        if char in _MARKS:
            return _decide_mark(self._buf, at, final=final)
        return self._decide_clause(at, final=final)

    def _decide_clause(self, at: int, *, final: bool) -> _Step | None:
        boundary = _is_clause_boundary(self._buf, at)
        if boundary is None:
            if not final:
                return None
            boundary = True
        end = at + 1
        if boundary and len(speakable(self._buf[:end])) >= self._min_first:
            return _Step(True, end)
        return _Step(False, end)

    def _open_fence(self, *, final: bool) -> bool | None:
        """At a line start: enter a code block if the line opens one; None while undecided."""
        head = self._buf.lstrip(" ")
        marker = head[:1]
        run = _run_end(head, 0, marker) if marker in ("`", "~") else 0
        if not final and run == len(head) and run < _LOOKAHEAD:
            return None  # "``" may still become a fence, "```" a longer one
        self._fence_checked = True
        if run < 3:
            return False
        self._fence, self._fence_line = marker * run, None  # the info string never closes it
        self._buf = head[run:]
        return True

    def _skip_fence(self) -> bool:
        """Drop code-block text; True once its closing fence line has ended."""
        buf, start = self._buf, 0
        while (newline := buf.find("\n", start)) >= 0:
            self._extend_fence_line(buf[start:newline])
            start = newline + 1
            if self._fence_closes():
                self._fence, self._fence_line = None, ""
                self._buf, self._scan = buf[start:], 0
                self._line_start, self._fence_checked = True, False
                return True
            self._fence_line = ""
        self._extend_fence_line(buf[start:])
        self._buf = ""
        return False

    def _extend_fence_line(self, text: str) -> None:
        if self._fence_line is not None:
            line = self._fence_line + text
            # Only a short line can be a closing fence: forget long ones, keep memory bounded.
            self._fence_line = line if len(line) <= _FENCE_LINE_MAX else None

    def _fence_closes(self) -> bool:
        line, fence = self._fence_line, self._fence
        if line is None or fence is None:
            return False
        marks = line.strip(" ")
        return len(marks) >= len(fence) and marks == fence[0] * len(marks)


def _decide_mark(buf: str, at: int, *, final: bool) -> _Step | None:
    """Decide a sentence mark at `at`: the whole run of marks and closers after it counts."""
    if _ends_at_once(buf, at):
        return _Step(True, at + 1)
    run_end = _run_end(buf, at, _MARKS)
    end = _run_end(buf, run_end, _CLOSERS)
    if end >= len(buf) and not final:
        return None
    run = buf[at:run_end]
    follower = buf[end : end + 1]
    if any(mark in _CJK_MARKS for mark in run):
        return _Step(True, end)
    if follower and not follower.isspace() and not _CJK.match(follower):
        return _Step(False, run_end)  # glued: "3.14", "Node.js", "a.b@c.io", "x.com/a?b=c"
    if "!" in run or "?" in run:
        return _Step(True, end)
    if len(run) > 1 or "…" in run:
        return _Step(False, run_end)  # an ellipsis goes on with the sentence
    return _decide_period(buf, at, end, final=final)


def _ends_at_once(buf: str, at: int) -> bool:
    """Whether the text before the mark alone ends the sentence: a word of letters that is no
    title or abbreviation, before a single ``.``, ``!`` or ``?``. Such a sentence is returned by
    the very feed() that brings its mark; whatever follows the mark (more marks, a closing quote)
    only opens the next chunk, where speakable() drops it."""
    if buf[at] in _CJK_MARKS:
        return True  # CJK marks are never glued to anything that continues the sentence
    if buf[at] not in ".!?":
        return False
    start = max(buf.rfind(" ", 0, at), buf.rfind("\n", 0, at)) + 1
    word = buf[start:at].lstrip(_OPENERS)
    plain = word.replace("'", "").replace("’", "").replace("-", "")
    if len(plain) < 2 or not plain.isalpha() or word.lower() == "www":
        return False
    return buf[at] != "." or word.lower() not in _TITLES | _ABBREVIATIONS


def _decide_period(buf: str, at: int, end: int, *, final: bool) -> _Step | None:
    """A single spaced period: does the word before it end the sentence?"""
    start = max(buf.rfind(" ", 0, at), buf.rfind("\n", 0, at)) + 1
    verdict = _classify_word(buf[start:at])
    if verdict != "wait":
        return _Step(verdict == "end", end)
    following = _next_word_start(buf, end, final=final)
    if following is None:
        return None
    continues = following.islower() or following.isdigit()
    return _Step(not continues, end)


def _classify_word(token: str) -> Literal["end", "skip", "wait"]:
    """Whether "token." ends a sentence, never does, or must wait for the next word."""
    bare = token.lstrip(_OPENERS)
    core = bare.rstrip(_CLOSERS)
    lowered = bare.lower()
    if not core or "://" in lowered or "@" in lowered or lowered.startswith("www."):
        return "end"
    if core[-1].isdigit():
        return "skip" if core.isdigit() and len(core) <= 2 else "wait"
    word = core.lower()
    if word in _TITLES or (len(core) == 1 and core.isupper() and core != "I"):
        return "skip"  # a title, or an initial as in "J. Smith"
    plain = core.replace("'", "").replace("’", "").replace("-", "")
    if word in _ABBREVIATIONS or len(core) == 1 or not plain.isalpha():
        return "wait"
    return "end"


def _next_word_start(buf: str, start: int, *, final: bool) -> str | None:
    """First non-space character from `start` ("" at a newline or the end), None if unknown."""
    for char in buf[start : start + _LOOKAHEAD]:
        if char == "\n":
            return ""
        if not char.isspace():
            return char
    return "" if final else None


def _run_end(text: str, start: int, chars: str) -> int:
    end, stop = start, min(len(text), start + _LOOKAHEAD)
    while end < stop and text[end] in chars:
        end += 1
    return end


def _is_clause_boundary(text: str, at: int) -> bool | None:
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


def _length_cut(buf: str, limit: int) -> int:
    """Where to cut a chunk that would exceed `limit` characters (`buf` is longer than that)."""
    for found in reversed(list(_CLAUSE_AT.finditer(buf, 0, limit))):
        if _is_clause_boundary(buf, found.start()):
            return found.start() + 1
    space = max(buf.rfind(" ", 0, limit + 1), buf.rfind("\n", 0, limit + 1))
    if space > 0 and buf[:space].strip():
        return space
    return limit
