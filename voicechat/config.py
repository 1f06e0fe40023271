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
    llm: str = _opt(
        "auto", "LLM backend: openai, local, replay, or auto (key or URL: openai; model: local)"
    )
    llm_model: str = _opt("gpt-4o-mini", "model name for the openai backend")
    openai_api_key: str | None = _opt(None, "API key (also read from OPENAI_API_KEY)", secret=True)
    openai_base_url: str | None = _opt(None, "OpenAI-compatible base URL (Ollama, vLLM, ...)")
    llm_timeout: float = _opt(30.0, "seconds to wait for the LLM's response headers")
    llm_idle_timeout: float = _opt(30.0, "seconds without a streamed chunk before giving up")
    llm_retries: int = _opt(2, "LLM retries on 429/5xx/refused, only before the first token")
    local_model: str | None = _opt(None, "GGUF file or model name for --llm local")
    models_dir: Path | None = _opt(
        None, "pulled models (default: $XDG_CACHE_HOME/voicechat/models)"
    )
    local_max_tokens: int = _opt(200, "local LLM: longest answer in tokens (~150 words)")
    local_temperature: float = _opt(0.7, "local LLM: sampling temperature")
    local_repeat_penalty: float = _opt(1.1, "local LLM: penalty on repeated tokens (1: off)")
    local_dry_multiplier: float = _opt(0.8, "local LLM: DRY penalty on repeated phrases (0: off)")
    local_slots: int = _opt(4, "local LLM: answers generated at once (batched)")
    local_context: int = _opt(2048, "local LLM: context tokens per answer")
    cpu_cores: int = _opt(
        0, "cores the local LLM and synthesis share (0: all this process may use)"
    )
    llm_threads: int = _opt(0, "local LLM generation threads (0: from the CPU budget)")
    synthesis_workers: int = _opt(0, "local syntheses at once (0: from the CPU budget)")
    system_prompt: str = _opt(SPEECH_SYSTEM_PROMPT, "system prompt sent with every turn")
    history_turns: int = _opt(10, "earlier exchanges a session sends along (0: no memory)")
    replay_dir: Path = _opt(REPO_ROOT / "samples" / "llm", "recordings for the replay backend")
    replay_speed: float = _opt(1.0, "replay timing factor (2 = twice as fast, 0 = no delays)")
    tts: str = _opt("edge,piper", "TTS backend or fallback chain: edge, openai, piper, tone")
    voice: str | None = _opt(None, "default voice (the backend's first voice when unset)")
    openai_voices: str = _opt(
        "", "OpenAI voice names mapped to ours on /v1: alloy=en-US-AriaNeural,echo=tone-low"
    )
    piper_voices_dir: Path | None = _opt(None, "folder with extra Piper *.onnx voices")
    piper_length_scale: float | None = _opt(None, "Piper speaking pace (<1 faster, >1 slower)")
    edge_rate: str = _opt("+0%", "edge speaking rate, a signed percentage: -20%, +10%")
    edge_pitch: str = _opt("+0Hz", "edge pitch, signed hertz: -5Hz, +10Hz")
    edge_volume: str = _opt("+0%", "edge volume, a signed percentage")
    openai_tts_model: str = _opt("gpt-4o-mini-tts", "speech model of the openai TTS backend")
    openai_tts_base_url: str | None = _opt(None, "base URL for openai TTS (default: the LLM's)")
    openai_tts_speed: float = _opt(1.0, "openai TTS speed, 0.25 to 4")
    tts_connect_timeout: float = _opt(1.5, "seconds to connect to a TTS service")
    tts_idle_timeout: float = _opt(10.0, "seconds a TTS service may send nothing mid-answer")
    tts_connections: int = _opt(8, "parallel connections per TTS service (edge rate-limits floods)")
    tts_cooldown: float = _opt(60.0, "seconds a failed backend of a chain is skipped")
    lookahead: int = _opt(2, "sentences synthesized ahead of the one being sent")
    first_clause_chars: int = _opt(30, "cut the first chunk at a clause after N chars (0: off)")
    max_chunk_chars: int = _opt(240, "longest chunk sent to the TTS in one request")
    lead: float = _opt(2.0, "seconds of audio sent ahead of the listener's playback (0: off)")
    frame_ms: int = _opt(500, "longest audio frame in ms; longer audio is cut at MP3 frames")
    tts_timeout: float = _opt(15.0, "seconds a TTS may stay silent before the sentence fails")
    tts_failure: str = _opt("skip", "after a sentence fails twice: skip it, or end the turn")
    send_timeout: float = _opt(15.0, "seconds a client may not read before it is disconnected")
    resume_window: float = _opt(30.0, "seconds a dropped session may be resumed (0: never)")
    replay_bytes: int = _opt(1 << 20, "bytes of a turn's frames kept for a resume")
    max_prompt_chars: int = _opt(4000, "longest prompt accepted")
    max_message_bytes: int = _opt(256 * 1024, "largest WebSocket message accepted")
    heartbeat: float = _opt(20.0, "seconds between WebSocket pings")
    idle_timeout: float = _opt(300.0, "close a session idle this many seconds (0: never)")
    max_sessions: int = _opt(100, "most live sessions (WebSocket and /v1/speak) at once")
    max_sessions_per_ip: int = _opt(0, "most live sessions of one client address (0: no cap)")
    max_parked: int = _opt(100, "most dropped sessions kept for a resume (oldest go first)")
    max_parked_per_ip: int = _opt(10, "most dropped sessions kept of one client address")
    control_rate: float = _opt(10.0, "control messages per second per connection (0: no limit)")
    control_burst: int = _opt(30, "control messages a connection may send at once")
    allowed_origins: str = _opt("", "extra Origins allowed on /ws, comma-separated ('*': any)")
    allowed_hosts: str = _opt("", "extra Host names served, comma-separated (.x.org: subdomains)")
    token: str | None = _opt(None, "shared secret required on /ws and /metrics", secret=True)
    shutdown_timeout: float = _opt(2.0, "seconds connections get to close at shutdown")
    header_timeout: float = _opt(
        10.0, "seconds a connection gets to send a request's headers and body (and to sit idle)"
    )
    max_connections_per_ip: int = _opt(
        64, "most open connections of one client address (0: no cap; see docs/security.md)"
    )
    web_dir: Path = _opt(REPO_ROOT / "web", "static files served at /")
    log_level: str = _opt("INFO", "DEBUG, INFO, WARNING or ERROR")
    log_format: str = _opt("text", "text, or json (one object a line, with session and turn ids)")

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be 1-65535, got {self.port}")
        if self.lookahead < 0:
            raise ConfigError("lookahead must be >= 0")
        for name in ("history_turns", "llm_retries", "tts_cooldown"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0")
        for name in ("tts_connect_timeout", "tts_idle_timeout", "tts_connections"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        for name in ("max_prompt_chars", "max_message_bytes", "max_chunk_chars"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.tts_failure not in ("skip", "end"):
            raise ConfigError(f"tts_failure must be skip or end, got {self.tts_failure!r}")
        if self.frame_ms < 50 or self.lead < 0 or self.tts_timeout <= 0 or self.send_timeout <= 0:
            raise ConfigError("frame_ms must be >= 50; lead >= 0; tts and send timeouts > 0")
        if self.max_sessions <= 0:
            raise ConfigError("max_sessions must be positive")
        per_address = ("max_sessions_per_ip", "max_parked_per_ip", "max_connections_per_ip")
        for name in ("max_parked", *per_address):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0")
        if self.header_timeout <= 0:
            raise ConfigError("header_timeout must be positive")
        for name in ("idle_timeout", "control_rate", "control_burst", "shutdown_timeout"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0")
        if self.control_rate > 0 and self.control_burst < 1:
            raise ConfigError("control_burst must be >= 1 when control_rate is set")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log_format must be text or json, got {self.log_format!r}")
        if self.llm not in ("auto", "openai", "local", "replay"):
            raise ConfigError(f"llm must be auto, openai, local or replay, got {self.llm!r}")
        for name in ("cpu_cores", "llm_threads", "synthesis_workers"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0")
        if self.local_max_tokens <= 0 or self.local_slots <= 0 or self.local_context < 256:
            raise ConfigError("local_max_tokens and local_slots > 0; local_context >= 256")

    @property
    def model_cache(self) -> Path:
        """Where ``voicechat pull`` puts models and ``--llm local`` finds them."""
        from voicechat.llm.models import default_models_dir

        return self.models_dir if self.models_dir is not None else default_models_dir()

    @property
    def llm_backend(self) -> str:
        """The LLM backend in use. ``auto``: openai with a key or base URL; else local when a
        model was named or pulled; else replay."""
        if self.llm != "auto":
            return self.llm
        if self.openai_api_key or self.openai_base_url:
            return "openai"
        from voicechat.llm.models import pulled_models

        if self.local_model or pulled_models(self.model_cache):
            return "local"
        return "replay"


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
            help=f"{f.metadata['help']} [VOICECHAT_{f.name.upper()}]".replace("%", "%%"),
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
    if values.get("models_dir") is None:
        from voicechat.llm.models import default_models_dir

        values["models_dir"] = default_models_dir(dict(env))
    return Settings(**values)


def flag_names() -> Sequence[str]:
    return [f.name for f in dataclasses.fields(Settings)]
