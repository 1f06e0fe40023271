"""The terminal: standard input (prompt lines, and single keys while speaking) and the two views
of a turn, a live one for a terminal and plain lines for pipes and CI."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import os
import shutil
import sys
import termios
import tty
import unicodedata
from collections.abc import Iterator
from typing import Protocol, TextIO

KEYS_HELP = "space pause/resume · s stop · q quit"


class Terminal:
    """Standard input, read through the event loop so that a read never outlives its task.

    Lines come in the terminal's own (cooked) mode, with its line editing; between
    :meth:`keys` and its exit the terminal is in cbreak mode (no echo, one key at a time,
    Ctrl-C still interrupts) and is restored on the way out, whatever happens."""

    def __init__(self, fd: int = 0) -> None:
        self.fd = fd
        self.is_tty = os.isatty(fd)
        self._buffer = bytearray()
        self._eof = False

    async def _read(self) -> bytes:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        try:
            loop.add_reader(self.fd, wake)
        except OSError:  # a regular file: epoll refuses it, and reading it never blocks
            return os.read(self.fd, 4096)
        try:
            await ready
        finally:
            loop.remove_reader(self.fd)
        try:
            return os.read(self.fd, 4096)
        except OSError as exc:  # a pseudo-terminal whose other side closed
            if exc.errno == errno.EIO:
                return b""
            raise

    async def read_line(self) -> str | None:
        """The next line without its newline, or None at the end of input."""
        while b"\n" not in self._buffer and not self._eof:
            chunk = await self._read()
            if chunk:
                self._buffer += chunk
            else:
                self._eof = True
        if not self._buffer:
            return None
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer = bytearray(rest)
        return line.decode(errors="replace").rstrip("\r")

    async def read_keys(self) -> str | None:
        """Keys typed since the last call (in :meth:`keys` mode), or None at the end of input."""
        if self._buffer:
            keys, self._buffer = bytes(self._buffer), bytearray()
            return keys.decode(errors="replace")
        chunk = await self._read()
        return chunk.decode(errors="replace") if chunk else None

    @contextlib.contextmanager
    def keys(self) -> Iterator[None]:
        saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd, termios.TCSANOW)
        try:
            yield
        finally:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)


def display_width(text: str) -> int:
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


class TurnView(Protocol):
    """What the listener sees of a conversation."""

    def note(self, line: str) -> None: ...
    def asked(self, prompt: str | None) -> None: ...
    def sentence(self, index: int, text: str) -> None: ...
    def current(self, index: int) -> None: ...
    def first_audio(self, seconds: float) -> None: ...
    def state(self, state: str) -> None: ...
    def error(self, message: str) -> None: ...
    def finished(self, summary: str) -> None: ...


class PlainView:
    """One line per event: for pipes, files and CI logs."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._texts: dict[int, str] = {}
        self._shown = 0

    def _line(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    def note(self, line: str) -> None:
        self._line(line)

    def asked(self, prompt: str | None) -> None:
        self._texts, self._shown = {}, 0
        if prompt is not None:
            self._line(f"> {prompt}")

    def sentence(self, index: int, text: str) -> None:
        self._texts[index] = text

    def current(self, index: int) -> None:
        while self._shown <= index:
            self._line(f"  [{self._shown}] {self._texts.get(self._shown, '')}")
            self._shown += 1

    def first_audio(self, seconds: float) -> None:
        self._line(f"time to first audio: {seconds * 1000:.0f} ms")

    def state(self, state: str) -> None:
        self._line(f"({state})")

    def error(self, message: str) -> None:
        print(f"error: {message}", file=sys.stderr, flush=True)

    def finished(self, summary: str) -> None:
        self._line(summary)


class LiveView:
    """The transcript with the sentence being heard marked, under it one status line.

    Everything above the current sentence is final; the current sentence and the status line
    are redrawn in place (cursor up, clear to the end of the screen)."""

    BOLD, REVERSE, DIM, RESET = "\x1b[1m", "\x1b[7m", "\x1b[2m", "\x1b[0m"

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._texts: dict[int, str] = {}
        self._shown = 0  # sentences before this index are printed for good
        self._current: int | None = None
        self._live_rows = 0  # rows of the current sentence above the status line
        self._state = "waiting"
        self._ttfa = ""
        self._active = False  # whether a status line is on screen

    def _columns(self) -> int:
        return max(20, shutil.get_terminal_size().columns)

    def _rows(self, text: str) -> int:
        return max(1, math.ceil(display_width(text) / self._columns()))

    def _erase(self) -> str:
        if not self._active:
            return ""
        up = f"\x1b[{self._live_rows}A" if self._live_rows else ""
        return f"\r{up}\x1b[J"

    def _render(self, *, final: str | None = None) -> None:
        out = [self._erase()]
        last = self._current if self._current is not None else self._shown - 1
        upto = last if final is None else last + 1
        for index in range(self._shown, upto):
            out.append(f"  {self._texts.get(index, '')}\n")
        self._shown = max(self._shown, upto)
        self._live_rows = 0
        if final is None:
            if self._current is not None and self._current >= self._shown:
                line = f"▶ {self._texts.get(self._current, '')}"
                out.append(f"{self.BOLD}{line}{self.RESET}\n")
                self._live_rows = self._rows(line)
            status = f"[{self._state}]{self._ttfa}  {KEYS_HELP}"
            out.append(f"{self.REVERSE}{status[: self._columns() - 1]}{self.RESET}")
            self._active = True
        else:
            out.append(f"{final}\n")
            self._active = False
        self._out.write("".join(out))
        self._out.flush()

    def note(self, line: str) -> None:
        self._out.write(f"{self._erase()}{line}\n")
        self._active = False
        self._out.flush()

    def asked(self, prompt: str | None) -> None:
        self._texts, self._shown, self._current = {}, 0, None
        self._state, self._ttfa = "thinking", ""
        if prompt is not None:
            self.note(f"{self.DIM}> {prompt}{self.RESET}")
        self._render()

    def sentence(self, index: int, text: str) -> None:
        self._texts[index] = text

    def current(self, index: int) -> None:
        self._current = index
        if self._state == "thinking":
            self._state = "speaking"
        self._render()

    def first_audio(self, seconds: float) -> None:
        self._ttfa = f" first audio {seconds * 1000:.0f} ms"
        self._render()

    def state(self, state: str) -> None:
        self._state = state
        self._render()

    def error(self, message: str) -> None:
        self.note(f"error: {message}")
        self._render()

    def finished(self, summary: str) -> None:
        self._render(final=summary)
