"""One frozen :class:`Settings` from command-line flags and ``VOICECHAT_*`` variables.

Every field is both a flag (``--max-prompt-chars``) and an environment variable
(``VOICECHAT_MAX_PROMPT_CHARS``); a flag wins over the environment, which wins over the default.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicechat.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent

SPEECH_SYSTEM_PROMPT = (
    "You are a helpful voice assistant. Your answers are read aloud: use short, plain "
    "sentences, no markdown, no lists, no code, and keep answers brief unless asked."
)


def _opt(default: Any, help: str, *, secret: bool = False) -> Any:
    return field(default=default, repr=not secret, metadata={"help": help})


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = _opt("127.0.0.1", "address to listen on")
    port: int = _opt(8765, "port to listen on")
    llm: str = _opt("auto", "LLM backend: openai, replay, or auto (openai when a key is set)")
    llm_model: str = _opt("gpt-4o-mini", "model name for the openai backend")
    openai_api_key: str | None = _opt(None, "API key (also read from OPENAI_API_KEY)", secret=True)
    openai_base_url: str | None = _opt(None, "OpenAI-compatible base URL (Ollama, vLLM, ...)")
    llm_timeout: float = _opt(30.0, "seconds to wait for the LLM's response headers")
    llm_idle_timeout: float = _opt(30.0, "seconds without a streamed chunk before giving up")
    system_prompt: str = _opt(SPEECH_SYSTEM_PROMPT, "system prompt sent with every turn")
    replay_dir: Path = _opt(REPO_ROOT / "samples" / "llm", "recordings for the replay backend")
    replay_speed: float = _opt(1.0, "replay timing factor (2 = twice as fast, 0 = no delays)")
    tts: str = _opt("piper", "TTS backend: piper or tone")
    voice: str | None = _opt(None, "default voice (the backend's first voice when unset)")
    piper_voices_dir: Path | None = _opt(None, "folder with extra Piper *.onnx voices")
    piper_length_scale: float | None = _opt(None, "Piper speaking pace (<1 faster, >1 slower)")
    lookahead: int = _opt(2, "sentences synthesized ahead of the one being sent")
    first_clause_chars: int = _opt(30, "cut the first chunk at a clause after N chars (0: off)")
    max_chunk_chars: int = _opt(240, "longest chunk sent to the TTS in one request")
    max_prompt_chars: int = _opt(4000, "longest prompt accepted")
    max_message_bytes: int = _opt(256 * 1024, "largest WebSocket message accepted")
    heartbeat: float = _opt(20.0, "seconds between WebSocket pings")
    idle_timeout: float = _opt(300.0, "close a session idle this many seconds (0: never)")
    max_sessions: int = _opt(100, "most WebSocket sessions at once; more are refused (1013)")
    control_rate: float = _opt(10.0, "control messages per second per connection (0: no limit)")
    control_burst: int = _opt(30, "control messages a connection may send at once")
    allowed_origins: str = _opt("", "extra Origins allowed on /ws, comma-separated ('*': any)")
    token: str | None = _opt(None, "shared secret required on /ws and /metrics", secret=True)
    shutdown_timeout: float = _opt(2.0, "seconds connections get to close at shutdown")
    web_dir: Path = _opt(REPO_ROOT / "web", "static files served at /")
    log_level: str = _opt("INFO", "DEBUG, INFO, WARNING or ERROR")
    log_format: str = _opt("text", "text, or json (one object a line, with session and turn ids)")

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be 1-65535, got {self.port}")
        if self.lookahead < 0:
            raise ConfigError("lookahead must be >= 0")
        for name in ("max_prompt_chars", "max_message_bytes", "max_chunk_chars", "max_sessions"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        for name in ("idle_timeout", "control_rate", "control_burst", "shutdown_timeout"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0")
        if self.control_rate > 0 and self.control_burst < 1:
            raise ConfigError("control_burst must be >= 1 when control_rate is set")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log_format must be text or json, got {self.log_format!r}")
        if self.llm not in ("auto", "openai", "replay"):
            raise ConfigError(f"llm must be auto, openai or replay, got {self.llm!r}")

    @property
    def llm_backend(self) -> str:
        """The LLM backend in use: ``auto`` means openai with a key or base URL, else replay."""
        if self.llm != "auto":
            return self.llm
        return "openai" if (self.openai_api_key or self.openai_base_url) else "replay"


def _convert(name: str, kind: str, raw: str) -> Any:
    try:
        if "int" in kind and "float" not in kind:
            return int(raw)
        if "float" in kind:
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: {raw!r} is not a number") from exc
    if "Path" in kind:
        return Path(raw)
    return raw


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one ``--flag`` per settings field (default: unset, so the environment can apply)."""
    for f in dataclasses.fields(Settings):
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            default=None,
            help=f"{f.metadata['help']} [VOICECHAT_{f.name.upper()}]",
        )


def load_settings(
    args: argparse.Namespace | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from flags over environment over defaults, validated once."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        raw = getattr(args, f.name, None) if args is not None else None
        if raw is None:
            raw = env.get(f"VOICECHAT_{f.name.upper()}")
        if raw is None and f.name == "openai_api_key":
            raw = env.get("OPENAI_API_KEY")
        if raw is not None and raw != "":
            values[f.name] = _convert(f.name, str(f.type), raw)
    values.update(overrides or {})
    return Settings(**values)


def flag_names() -> Sequence[str]:
    return [f.name for f in dataclasses.fields(Settings)]
