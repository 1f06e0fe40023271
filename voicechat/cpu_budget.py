"""One budget for the cores that the local LLM and local speech synthesis share.

llama.cpp's generation threads spin on their cores; Piper (onnxruntime) wants cores in bursts,
one sentence at a time. Measured on 2 cores with Piper speaking to 4 listeners
(docs/local-llm.md): one generation thread and two Piper workers gave the lowest first audio and
the most tokens/s; a second generation thread made both worse. So the default gives the LLM one
thread on machines of up to 4 cores (half the cores above that, not measured), and lets Piper
render as many sentences at once as there are cores.
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
    workers = synthesis_workers if synthesis_workers > 0 else cores
    return CpuBudget(cores=cores, llm_threads=threads, synthesis_workers=workers)


def cpu_budget(settings: Settings) -> CpuBudget:
    return split_cores(
        settings.cpu_cores or available_cores(),
        local_llm=settings.llm_backend == "local",
        llm_threads=settings.llm_threads,
        synthesis_workers=settings.synthesis_workers,
    )
