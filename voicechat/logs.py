"""Logging with the session and turn ids on every record, and an optional JSON format.

The ids live in context variables: the WebSocket handler binds its session id in its own
task, and a turn's task is started in a context that also holds the turn id. Every record
logged from inside them (session, turn, backends, aiohttp) carries both, with no logger
passed around. Records from elsewhere carry ``-``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import quote

SESSION_ID: contextvars.ContextVar[str] = contextvars.ContextVar("session_id", default="-")
TURN_ID: contextvars.ContextVar[str] = contextvars.ContextVar("turn_id", default="-")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(ids)s: %(message)s"


def bind_session(session_id: str) -> None:
    """Tag every record logged from the current task (and tasks it starts) with the id."""
    SESSION_ID.set(session_id)


def turn_context(turn_id: str) -> contextvars.Context:
    """A copy of the current context with the turn id set, for ``create_task(context=...)``."""
    context = contextvars.copy_context()
    context.run(TURN_ID.set, turn_id)
    return context


class ContextIds(logging.Filter):
    """Sets ``session_id``, ``turn_id`` and ``ids`` (`` [session/turn]`` or empty) on records."""

    def filter(self, record: logging.LogRecord) -> bool:
        session: str = getattr(record, "session_id", SESSION_ID.get())
        turn: str = getattr(record, "turn_id", TURN_ID.get())
        if session == "-":
            ids = ""
        elif turn == "-":
            ids = f" [{session}]"
        else:
            ids = f" [{session}/{turn}]"
        record.__dict__.update(session_id=session, turn_id=turn, ids=ids)
        return True


_SECRET_QUERY: Final = re.compile(r"(?i)\b(token|resume)(=|%3D)[^\s&;\"'#\\]*")


class RedactSecrets(logging.Filter):
    """Masks every spelling of a secret in a record, its arguments and its traceback (aiohttp
    quotes a malformed request line, query and all): ``token=`` and ``resume=`` values in any
    case, and the literal ``secrets`` (with their URL-encoded forms) wherever they appear."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        literal = {v for s in secrets if s for v in (s, quote(s, safe=""), quote(s))}
        self._literal = sorted(literal, key=len, reverse=True)

    def redact(self, text: str) -> str:
        text = _SECRET_QUERY.sub(r"\1\2***", text)
        for secret in self._literal:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, session, turn (and exc)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "session": getattr(record, "session_id", "-"),
            "turn": getattr(record, "turn_id", "-"),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(*, level: int, fmt: str = "text", secrets: Iterable[str] = ()) -> None:
    """Root handler on stderr: ``text`` (ids in brackets) or ``json``; ``secrets`` never
    appear in it (nor does any ``token=`` or ``resume=`` value)."""
    handler = logging.StreamHandler()
    handler.addFilter(ContextIds())
    handler.addFilter(RedactSecrets(secrets))
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
