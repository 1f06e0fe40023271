"""Wire protocol v1: JSON text frames ``{"action": ..., "data": ..., <metadata>}``.

Client messages are parsed once, here, into frozen dataclasses; server messages are
built by the ``*_event`` functions below and dumped once by :func:`dump`. Raw JSON is
touched nowhere else.
"""

from __future__ import annotations

import base64
import json
import unicodedata
from dataclasses import dataclass
from typing import Any, Final

from voicechat import PROTOCOL_VERSION
from voicechat.errors import BadJson, BadRequest, TooLarge, UnknownAction, VoicechatError

_NOT_IN_NAMES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
MAX_TURN_ID_CHARS: Final = 64
MAX_VOICE_CHARS: Final = 128


@dataclass(frozen=True, slots=True)
class Start:
    prompt: str
    voice: str | None = None
    turn_id: str | None = None
    audio: bool = True  # False: a text-only turn (`text`, `sentence`, `done`; no synthesis)


@dataclass(frozen=True, slots=True)
class Pause:
    pass


@dataclass(frozen=True, slots=True)
class Resume:
    pass


@dataclass(frozen=True, slots=True)
class Stop:
    pass


@dataclass(frozen=True, slots=True)
class Played:
    """The listener has played audio up to and including frame ``seq`` of ``turn``."""

    turn_id: str
    seq: int


ClientMessage = Start | Pause | Resume | Stop | Played

_CONTROL: Final[dict[str, ClientMessage]] = {"pause": Pause(), "resume": Resume(), "stop": Stop()}


def parse_client_message(raw: str, *, max_prompt_chars: int) -> ClientMessage:
    """Parse one text frame; raise a :class:`ProtocolError` subclass saying what is wrong."""
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BadJson(f"message is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise BadRequest(f"message must be a JSON object, got {type(obj).__name__}")
    action = obj.get("action")
    if not isinstance(action, str):
        raise BadRequest('message needs a string "action"')
    if action == "start":
        return _parse_start(obj.get("data"), max_prompt_chars=max_prompt_chars)
    if action == "played":
        return _parse_played(obj)
    control = _CONTROL.get(action)
    if control is None:
        raise UnknownAction(
            f"unknown action {action[:40]!r}; expected start, pause, resume, stop, played"
        )
    return control


def parse_start(data: Any, *, max_prompt_chars: int) -> Start:
    """Validate the ``data`` of a ``start`` (also the body of ``POST /v1/speak``)."""
    return _parse_start(data, max_prompt_chars=max_prompt_chars)


def _parse_start(data: Any, *, max_prompt_chars: int) -> Start:
    if not isinstance(data, dict):
        raise BadRequest('start needs "data": {"prompt": "..."}')
    prompt = data.get("prompt")
    if not isinstance(prompt, str):
        raise BadRequest('start needs a string "data.prompt"')
    if not prompt.strip():
        raise BadRequest("prompt is empty")
    if not _is_unicode(prompt):
        raise BadRequest("prompt holds a lone surrogate (not Unicode text)")
    if len(prompt) > max_prompt_chars:
        raise TooLarge(f"prompt has {len(prompt)} characters; the limit is {max_prompt_chars}")
    voice = _optional_str(data, "voice", MAX_VOICE_CHARS)
    turn_id = _optional_str(data, "id", MAX_TURN_ID_CHARS)
    audio = data.get("audio", True)
    if not isinstance(audio, bool):
        raise BadRequest('"data.audio" must be true or false')
    return Start(prompt=prompt, voice=voice, turn_id=turn_id, audio=audio)


def _parse_played(obj: dict[str, Any]) -> Played:
    turn_id, seq = obj.get("turn"), obj.get("seq")
    if not isinstance(turn_id, str) or not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise BadRequest('played needs "turn" (string) and "seq" (integer >= 0)')
    if not is_plain_name(turn_id, MAX_TURN_ID_CHARS):
        raise BadRequest('played "turn" must be a plain name (no control characters)')
    return Played(turn_id=turn_id, seq=seq)


def _optional_str(data: dict[str, Any], key: str, max_chars: int) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not is_plain_name(value, max_chars):
        raise BadRequest(
            f'"data.{key}" must be a non-empty string of at most {max_chars} chars, '
            "with no control characters"
        )
    return value


def _is_unicode(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (JSON lets ``"\\ud800"`` through: a lone
    surrogate, which no socket, log or backend can encode)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_plain_name(value: str, max_chars: int) -> bool:
    """An id or a voice name: 1 to ``max_chars`` characters of Unicode text with no control,
    line-separator or format character (a newline in an id would forge a log line)."""
    return (
        0 < len(value) <= max_chars
        and _is_unicode(value)
        and not any(unicodedata.category(c) in _NOT_IN_NAMES for c in value)
    )


# --- server → client ---------------------------------------------------------------


_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dump(message: dict[str, Any]) -> str:
    if message["action"] == "audio":
        # Base64 needs no escaping: spare the encoder a scan of the largest field (it is last).
        head = _ENCODER.encode({k: v for k, v in message.items() if k != "data"})
        return f'{head[:-1]},"data":"{message["data"]}"}}'
    return _ENCODER.encode(message)


def ready_event(
    *, session_id: str, sample_rate: int, llm: str, tts: str, voices: list[str]
) -> dict[str, Any]:
    return {
        "action": "ready",
        "data": {
            "session": session_id,
            "protocol": PROTOCOL_VERSION,
            "audio": {"format": "mp3", "sample_rate": sample_rate},
            "llm": llm,
            "tts": tts,
            "voices": voices,
        },
    }


def text_event(turn: str, delta: str) -> dict[str, Any]:
    return {"action": "text", "turn": turn, "data": delta}


def sentence_event(turn: str, index: int, text: str) -> dict[str, Any]:
    return {"action": "sentence", "turn": turn, "index": index, "data": text}


def audio_event(turn: str, sentence: int, seq: int, mp3: bytes) -> dict[str, Any]:
    return {
        "action": "audio",
        "turn": turn,
        "sentence": sentence,
        "seq": seq,
        "data": base64.b64encode(mp3).decode("ascii"),
    }


def control_ack(action: str, turn: str | None, **data: Any) -> dict[str, Any]:
    """``paused``, ``resumed``, ``stopped``: ``turn`` is None when nothing was playing."""
    return {"action": action, "turn": turn, "data": data}


def done_event(turn: str, *, text: str, sentences: int, audio_ms: int) -> dict[str, Any]:
    return {
        "action": "done",
        "turn": turn,
        "data": {"text": text, "sentences": sentences, "audio_ms": audio_ms},
    }


def error_event(error: VoicechatError, *, turn: str | None = None, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "action": "error",
        "data": {"code": error.code, "message": error.message, **extra},
    }
    if turn is not None:
        message["turn"] = turn
    return message


def backend_event(turn: str, *, tts: str, reason: str) -> dict[str, Any]:
    """The TTS backend speaking the chunks from here on changed (a fallback chain switched)."""
    return {"action": "backend", "turn": turn, "data": {"tts": tts, "reason": reason}}
