"""The one error tree of voicechat; each class maps to a protocol error code.

    VoicechatError                 (code: internal)
    ├── ProtocolError              bad input from a client, the session goes on
    │   ├── BadJson                (bad_json)
    │   ├── BadRequest             (bad_request)
    │   ├── UnknownAction          (unknown_action)
    │   ├── TooLarge               (too_large)
    │   └── RateLimited            (rate_limited)
    ├── ResumeIncomplete           (resume_incomplete) frames lost across a reconnect
    ├── BackendError               an upstream failed; carries the backend's name
    │   ├── LLMFailed              (llm_failed)
    │   └── TTSFailed              (tts_failed)
    │       └── NoAudio            the service answered without audio (tts_failed)
    └── ConfigError                bad settings at start-up (never sent on the wire)

Vendor exceptions are translated at the backend boundary with ``raise ... from exc``.
"""

from __future__ import annotations


class VoicechatError(Exception):
    """Root of every error voicechat raises on purpose."""

    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProtocolError(VoicechatError):
    """A client sent something the protocol does not allow."""

    code = "bad_request"


class BadJson(ProtocolError):
    code = "bad_json"


class BadRequest(ProtocolError):
    code = "bad_request"


class UnknownAction(ProtocolError):
    code = "unknown_action"


class TooLarge(ProtocolError):
    code = "too_large"


class ResumeIncomplete(VoicechatError):
    """A resumed session could not replay every frame the client missed."""

    code = "resume_incomplete"


class RateLimited(ProtocolError):
    """More control messages than the connection's token bucket allows; this one was ignored."""

    code = "rate_limited"


class BackendError(VoicechatError):
    """An LLM or TTS backend failed; ``backend`` names it."""

    def __init__(self, message: str, *, backend: str) -> None:
        super().__init__(message)
        self.backend = backend


class LLMFailed(BackendError):
    code = "llm_failed"


class TTSFailed(BackendError):
    code = "tts_failed"


class NoAudio(TTSFailed):
    """The TTS answered, but with no audio: for speakable text that is a failure too."""


class ConfigError(VoicechatError):
    """Settings that cannot work; reported at start-up, before serving."""

    code = "config"
