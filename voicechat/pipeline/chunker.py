"""Turn an LLM's streamed text into speakable chunks for a TTS engine, as soon as they are
probably complete.

`SentenceChunker.push()` takes the deltas of one answer and returns chunk events; `finish()` ends
the stream. A chunk is *provisional* when the text so far says "probably an end" but the next
character could still undo it ("Node." may become "Node.js"); it is then *confirmed* or
*retracted* by a later push(). A retracted chunk's text opens the next chunk. Most chunks are
confirmed by the very next token (a space, a capital, a new line), and those that nothing can
undo (after a new line, a CJK ``。``) come out confirmed at once. `feed()`/`flush()` are the same
stream with the confirmed chunks only, as plain strings.

Every chunk has been through `speakable()`: Markdown markers, fenced code, URLs (reduced to their
host name) and emoji are gone, and a chunk with nothing a TTS engine can pronounce is never
returned. The confirmed chunks are a pure function of the whole text: however it is cut into
deltas, the same ones come out (a provisional chunk is always confirmed with the same text, or
retracted). The rules, decided by :mod:`voicechat.pipeline.sentence_ends`:

* ``. ! ? …`` end a sentence, together with the marks and closing quotes, brackets and Markdown
  markers after them ("?!", "!!!", '?"', "!)" stay with their chunk), once the character after
  them has arrived. Glued to a letter or digit ("3.14", "Node.js", "package.json", "a.b@c.io",
  "x.com/a?b=c") they never end one, unless that character is CJK.
* After a plain word ("done.", "Really?") the chunk is provisional at once, and a space or a new
  line confirms it. After a number, an abbreviation or initials ("$29.", "etc.", "U.S.", "No.",
  "approx.", "usw.", "env.", "aprox."), and after an ellipsis, the next word decides: a
  lower-case letter or a digit goes on with the sentence, anything else ends it. Titles and
  prefixes ("Dr.", "vs.", "e.g.", "z.B.", "p.ej.") never end one, nor does a number of one or two
  digits first on its line or after a colon: that is a list marker ("1. Open it").
* ``。`` ends a sentence at once (nothing after it can undo that); whatever follows it opens the
  next chunk and a closing quote there is not spoken. ``！？`` are provisional like ``!?``, and
  with the marks and closers after them ("？！", "？」") end before the next character.
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

from voicechat.pipeline.sentence_ends import (
    FINAL_MARKS,
    LOOKAHEAD,
    MARKS,
    Step,
    decide_mark,
    is_clause_boundary,
    length_cut,
    probable_end,
    run_end,
)
from voicechat.pipeline.speakable import sanitize, speakable

__all__ = ["ChunkEvent", "Confirmed", "Provisional", "Retracted", "SentenceChunker"]

_LEFTOVERS = MARKS + "\"'”’»›)]}」』）】〉》*_~ "
_FENCE_LINE_MAX = 64

_SENTENCE_AT = re.compile(r"[.!?…。！？．\n]")
_BREAK_AT = re.compile(r"[.!?…。！？．\n,;:，；：、—–-]")


@dataclass(frozen=True, slots=True)
class Provisional:
    """A chunk that probably ends here; the next push() or finish() confirms or retracts it.
    At most one is open at a time, and it is always the latest chunk."""

    text: str


@dataclass(frozen=True, slots=True)
class Confirmed:
    """A final chunk. `provisional` says it confirms the open provisional chunk (same text)."""

    text: str
    provisional: bool = False


@dataclass(frozen=True, slots=True)
class Retracted:
    """The open provisional chunk was no end after all; its text opens the next chunk."""

    text: str


ChunkEvent = Provisional | Confirmed | Retracted


class SentenceChunker:
    """Split one streamed answer into speakable chunks, identically for any cutting into deltas.

    Plain synchronous code without I/O: call `push()` with each delta and `finish()` at the end
    of the stream (or `feed()` and `flush()` for the confirmed chunks alone); after `finish()`
    the chunker is ready for the next stream.
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

    def push(self, delta: str) -> list[ChunkEvent]:
        """Add one delta; return the chunk events it causes (usually none or one)."""
        self._buf += self._normalize(delta)
        confirmed = self._drain(final=False)
        return self._reconcile(confirmed, self._provisional_text())

    def finish(self) -> list[ChunkEvent]:
        """End the stream: settle the provisional chunk, confirm what remains, and reset."""
        events = self._reconcile(self._drain(final=True), None)
        self._reset()
        return events

    def cut_short(self) -> list[ChunkEvent]:
        """The stream broke off (an LLM failure): confirm the provisional chunk, which ends with
        a sentence mark, drop the unfinished rest, and reset."""
        pending = self._pending
        self._reset()
        return [] if pending is None else [Confirmed(pending, provisional=True)]

    def feed(self, delta: str) -> list[str]:
        """Add one delta; return the speakable chunks it confirms (usually none or one)."""
        return [event.text for event in self.push(delta) if isinstance(event, Confirmed)]

    def flush(self) -> list[str]:
        """End the stream: return whatever speakable text remains, and reset."""
        return [event.text for event in self.finish() if isinstance(event, Confirmed)]

    def _reset(self) -> None:
        self._buf = ""  # raw text not emitted yet; it starts where a chunk starts
        self._scan = 0  # _buf[:_scan] holds no boundary
        self._undecided: int | None = None  # the mark the scan waits at, if any
        self._pending: str | None = None  # the open provisional chunk
        self._spoken = ("", "")  # the last raw chunk given to speakable(), and its result
        self._first = True  # no chunk returned yet in this stream
        self._prev = "\n"  # the raw character before _buf
        self._fence_checked = False
        self._fence: str | None = None  # opening marker of the code block being dropped
        self._fence_line: str | None = ""  # its current line, None once it cannot close the block
        self._space_before = False

    @property
    def _line_start(self) -> bool:
        return self._prev == "\n"

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

    def _reconcile(self, confirmed: list[str], candidate: str | None) -> list[ChunkEvent]:
        """The events that take the open provisional chunk to `confirmed` and `candidate`."""
        events: list[ChunkEvent] = []
        pending, self._pending = self._pending, None
        for text in confirmed:
            if pending is not None:
                if text == pending:
                    events.append(Confirmed(text, provisional=True))
                    pending = None
                    continue
                events.append(Retracted(pending))
                pending = None
            events.append(Confirmed(text))
        if pending is not None and pending != candidate:
            events.append(Retracted(pending))
            pending = None
        if candidate and pending is None:
            events.append(Provisional(candidate))
        self._pending = candidate or None
        return events

    def _provisional_text(self) -> str | None:
        """The chunk the scan holds back, if its undecided mark is probably an end."""
        at, buf = self._undecided, self._buf
        if at is None or self._fence is not None or len(buf) > self._max:
            return None
        if not probable_end(buf, at, prev=self._prev):
            return None
        return self._speakable(buf) or None

    def _speakable(self, raw: str) -> str:
        """speakable() of the chunk `raw`, remembered: a provisional chunk is confirmed with the
        same raw text, and speakable() is most of the cost of a push()."""
        if self._spoken[0] == raw:
            return self._spoken[1]
        # After a "。", what followed it (a closing quote) opens this chunk: it belongs to the
        # previous sentence and is not spoken.
        text = speakable(raw.lstrip(_LEFTOVERS) if self._prev in FINAL_MARKS else raw)
        self._spoken = (raw, text)
        return text

    def _drain(self, *, final: bool) -> list[str]:
        chunks: list[str] = []
        self._undecided = None
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
        text = self._speakable(raw)
        self._prev, self._fence_checked = raw[-1], False
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
                    return length_cut(buf, limit)
                return len(buf) if final else None
            step = self._decide(found.start(), final=final)
            if step is None:
                self._scan = self._undecided = found.start()
                return None
            if not step.cut:
                self._scan = step.pos
                continue
            return step.pos if step.pos <= limit else length_cut(buf, limit)

    def _decide(self, at: int, *, final: bool) -> Step | None:
        char = self._buf[at]
        if char == "\n":
            return Step(True, at + 1)
        if char in MARKS:
            return decide_mark(self._buf, at, final=final, prev=self._prev)
        return self._decide_clause(at, final=final)

    def _decide_clause(self, at: int, *, final: bool) -> Step | None:
        boundary = is_clause_boundary(self._buf, at)
        if boundary is None:
            if not final:
                return None
            boundary = True
        end = at + 1
        if boundary and len(speakable(self._buf[:end])) >= self._min_first:
            return Step(True, end)
        return Step(False, end)

    def _open_fence(self, *, final: bool) -> bool | None:
        """At a line start: enter a code block if the line opens one; None while undecided."""
        head = self._buf.lstrip(" ")
        marker = head[:1]
        run = run_end(head, 0, marker) if marker in ("`", "~") else 0
        if not final and run == len(head) and run < LOOKAHEAD:
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
                self._prev, self._fence_checked = "\n", False
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
