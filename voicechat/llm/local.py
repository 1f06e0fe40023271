"""``local``: a GGUF model run by llama.cpp inside this process (the ``xllamacpp`` binding).

No daemon and no key. llama.cpp's own server loop runs on a thread of its own; each turn's
request blocks one thread of this backend's small pool while its deltas cross to the event loop.
Closing the stream (the turn's ``aclosing()`` on stop) makes the next token's callback answer
"stop", which ends llama.cpp's generation for that request, and waits for that to happen: when
the caller's ``stopped`` goes out, the model generates nothing more for that turn (at most the
token already in flight). The chat template is the GGUF's own (llama.cpp's Jinja engine).

llama.cpp also binds an HTTP listener on 127.0.0.1 (a random port) that the binding cannot turn
off; it gets a random API key that nothing ever sees, so no other local program can use it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import threading
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicechat.errors import ConfigError, LLMFailed
from voicechat.llm.base import ChatMessage, chunk_text

if TYPE_CHECKING:
    from voicechat.config import Settings

log = logging.getLogger("voicechat.llm.local")

STOP_WAIT = 5.0  # seconds a closed stream waits for llama.cpp to hand its request back
_END = object()


@dataclass(frozen=True, slots=True)
class Sampling:
    """Defaults for small instruct models read aloud: some randomness, a penalty on repeats
    (and DRY against the long loops small models fall into), a cap on the answer's length."""

    max_tokens: int = 200  # ~150 words, about a minute of speech
    temperature: float = 0.7
    top_p: float = 0.9
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64
    dry_multiplier: float = 0.8  # 0: DRY off
    seed: int | None = None

    def request_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "min_p": self.min_p,
            "repeat_penalty": self.repeat_penalty,
            "repeat_last_n": self.repeat_last_n,
            "dry_multiplier": self.dry_multiplier,
        }
        if self.seed is not None:
            fields["seed"] = self.seed
        return fields


@dataclass(frozen=True, slots=True)
class Timings:
    """llama.cpp's account of one answer: the prompt's tokens (those taken from the prompt
    cache apart), the tokens generated and their rate."""

    prompt_tokens: int
    cached_tokens: int
    generated_tokens: int
    tokens_per_second: float

    @classmethod
    def from_chunk(cls, timings: dict[str, Any]) -> Timings:
        return cls(
            prompt_tokens=int(timings.get("prompt_n", 0)),
            cached_tokens=int(timings.get("cache_n", 0)),
            generated_tokens=int(timings.get("predicted_n", 0)),
            tokens_per_second=float(timings.get("predicted_per_second", 0.0)),
        )


def _error_text(chunk: dict[str, Any]) -> str | None:
    """The message of an error llama.cpp answered with, or None for an ordinary chunk."""
    error = chunk.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error)
    if error is not None:
        return str(error)
    if "choices" not in chunk and "message" in chunk:
        return str(chunk["message"])
    return None


class LocalLLM:
    """Implements :class:`~voicechat.llm.base.LLMBackend` on a GGUF file. Loading takes a few
    seconds for a small model: construct it off the event loop."""

    name = "local"

    def __init__(
        self,
        model_path: Path,
        *,
        threads: int = 1,
        slots: int = 4,
        context_per_slot: int = 2048,
        sampling: Sampling | None = None,
    ) -> None:
        try:
            import xllamacpp
        except ImportError as exc:
            message = "--llm local needs xllamacpp: pip install 'voicechat[local]'"
            raise ConfigError(message) from exc

        if not model_path.is_file():
            raise ConfigError(f"no model file at {model_path}")
        with model_path.open("rb") as head:
            if head.read(4) != b"GGUF":
                raise ConfigError(f"{model_path} is not a GGUF file")
        if threads < 1 or slots < 1 or context_per_slot < 256:
            raise ConfigError("local LLM: threads and slots >= 1, context per slot >= 256")
        self.model_path = model_path
        self.threads = threads
        self.sampling = sampling or Sampling()
        params = xllamacpp.CommonParams()
        params.model.path = str(model_path)
        params.n_parallel = slots
        params.n_ctx = slots * context_per_slot
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.endpoint_metrics = True
        params.api_keys = [secrets.token_urlsafe(24)]  # for the listener nobody uses
        params.verbosity = -1
        try:
            self._server: Any = xllamacpp.Server(params)
        except Exception as exc:  # the binding raises RuntimeError for any load failure
            raise ConfigError(f"llama.cpp could not load {model_path}: {exc}") from exc
        # One waiting thread per request in flight; the arithmetic runs on llama.cpp's threads.
        self._requests = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="local-llm")
        self._closed = False
        self.timings: deque[Timings] = deque(maxlen=256)  # of the answers that ran to their end

    @property
    def listener_url(self) -> str:
        """llama.cpp's own HTTP listener (loopback, behind a key nobody knows)."""
        return str(self._server.listening_address)

    def decode_calls(self) -> int:
        """llama.cpp's count of ``llama_decode`` calls so far: it grows with every token
        generated (and every prompt batch), so it shows whether generation goes on."""
        found = re.search(r"^llamacpp:n_decode_total (\d+)", self._server.handle_metrics(), re.M)
        return int(found.group(1)) if found else 0

    def busy_requests(self) -> int:
        found = re.search(
            r"^llamacpp:requests_processing (\d+)", self._server.handle_metrics(), re.M
        )
        return int(found.group(1)) if found else 0

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
        if self._closed:
            raise LLMFailed("the local model was closed", backend=self.name)
        loop = asyncio.get_running_loop()
        deltas: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()
        failure: list[str] = []
        request = {"messages": list(messages), "stream": True, **self.sampling.request_fields()}

        def on_chunk(chunk: dict[str, Any]) -> bool:  # on the request thread
            if stop.is_set():
                return True  # llama.cpp ends this request's generation
            error = _error_text(chunk)
            if error is not None:
                failure.append(error)
                return True
            if isinstance(chunk.get("timings"), dict):
                self.timings.append(Timings.from_chunk(chunk["timings"]))
            text = chunk_text(chunk)
            if text:
                loop.call_soon_threadsafe(deltas.put_nowait, text)
            return False

        def generate() -> None:
            try:
                self._server.handle_chat_completions(request, on_chunk)
            finally:
                loop.call_soon_threadsafe(deltas.put_nowait, _END)

        done = loop.run_in_executor(self._requests, generate)
        try:
            while (item := await deltas.get()) is not _END:
                assert isinstance(item, str)
                yield item
            await done  # re-raises what the binding raised
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise LLMFailed(f"llama.cpp failed: {exc}", backend=self.name) from exc
        finally:
            stop.set()
            if not done.done():
                # Wait (bounded) until llama.cpp has given the request up, so that nothing
                # is generated for this turn once its caller moves on.
                try:
                    async with asyncio.timeout(STOP_WAIT):
                        await asyncio.shield(done)
                except TimeoutError:
                    log.warning("llama.cpp did not end a stopped request within %s s", STOP_WAIT)
        if failure:
            raise LLMFailed(f"llama.cpp: {failure[0]}", backend=self.name)

    def close(self) -> None:
        """Unload the model (waits for requests in flight)."""
        if self._closed:
            return
        self._closed = True
        self._requests.shutdown(wait=True)
        self._server = None

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)


def create(settings: Settings) -> LocalLLM:
    from voicechat.cpu_budget import cpu_budget
    from voicechat.llm.models import resolve_model

    path = resolve_model(settings.local_model, models_dir=settings.model_cache)
    budget = cpu_budget(settings)
    log.info("local LLM: %s on %d thread(s)", path.name, budget.llm_threads)
    return LocalLLM(
        path,
        threads=budget.llm_threads,
        slots=settings.local_slots,
        context_per_slot=settings.local_context,
        sampling=Sampling(
            max_tokens=settings.local_max_tokens,
            temperature=settings.local_temperature,
            repeat_penalty=settings.local_repeat_penalty,
            dry_multiplier=settings.local_dry_multiplier,
        ),
    )
