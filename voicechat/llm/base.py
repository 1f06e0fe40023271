"""The LLM backend contract and its registry."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TypedDict, runtime_checkable

from voicechat.registry import load_factory

if TYPE_CHECKING:
    from voicechat.config import Settings


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@runtime_checkable
class LLMBackend(Protocol):
    """Streams an answer. ``stream`` is an async generator of text deltas; the caller closes it
    (``contextlib.aclosing``) on stop, which must close the upstream connection at once.
    Failures raise :class:`~voicechat.errors.LLMFailed`."""

    name: str

    def stream(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]: ...

    async def aclose(self) -> None: ...


def chunk_text(chunk: dict[str, Any]) -> str:
    """The content delta of one chat-completion chunk in its JSON form, or "".

    Chunks with no choices (Azure's prompt-filter chunk), a null delta, a role-only delta or
    only usage carry no text and give ""."""
    choices = chunk.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return ""
    delta = choices[0].get("delta") or {}
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else ""


# name → "module:factory", imported lazily.
LLM_BACKENDS: Final[dict[str, str]] = {
    "local": "voicechat.llm.local:create",
    "openai": "voicechat.llm.openai:create",
    "replay": "voicechat.llm.replay:create",
}


def create_llm(name: str, settings: Settings) -> LLMBackend:
    backend: LLMBackend = load_factory(LLM_BACKENDS, name, kind="LLM")(settings)
    return backend
