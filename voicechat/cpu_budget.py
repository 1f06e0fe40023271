"""One budget for the cores that the local LLM and local speech synthesis share.

llama.cpp's generation threads spin on their cores; Piper (onnxruntime) wants cores in bursts,
one sentence at a time. On 2 cores a second generation thread halves the first's speed as
soon as anything else runs (docs/local-llm.md has the measurement), so the default gives the
LLM one thread on machines of up to 4 cores and half the cores above that; synthesis gets the
rest, at least one worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voicechat.config import Settings


@dataclass(frozen=True, slots=True)
class CpuBudget:
    cores: int
    llm_threads: int  # 0: no local LLM
    synthesis_workers: int  # 0: not bounded


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def split_cores(
    cores: int, *, local_llm: bool = True, llm_threads: int = 0, synthesis_workers: int = 0
) -> CpuBudget:
    """The budget for ``cores``; a count given (> 0) wins over the default. Without a local
    LLM nothing is shared: synthesis is not bounded here (``synthesis_workers`` 0) unless a
    count is given."""
    cores = max(cores, 1)
    if not local_llm:
        return CpuBudget(cores=cores, llm_threads=0, synthesis_workers=max(synthesis_workers, 0))
    elif llm_threads > 0:
        threads = llm_threads
    else:
        threads = 1 if cores <= 4 else cores // 2
    workers = synthesis_workers if synthesis_workers > 0 else max(1, cores - threads)
    return CpuBudget(cores=cores, llm_threads=threads, synthesis_workers=workers)


def cpu_budget(settings: Settings) -> CpuBudget:
    return split_cores(
        settings.cpu_cores or available_cores(),
        local_llm=settings.llm_backend == "local",
        llm_threads=settings.llm_threads,
        synthesis_workers=settings.synthesis_workers,
    )
