"""Which model ``--llm local`` uses, what ``--llm auto`` picks, the CPU budget, and the
``pull``/``models`` commands (against a loopback server standing in for Hugging Face)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from voicechat.cli import build_parser, main
from voicechat.config import load_settings
from voicechat.cpu_budget import CpuBudget, split_cores
from voicechat.errors import ConfigError
from voicechat.llm import models
from voicechat.llm.models import CURATED, CuratedModel, default_models_dir, resolve_model
from voicechat.model_commands import models_dir_of, run_models, run_pull

GGUF = b"GGUF" + bytes(1000)


def pulled(directory: Path, name: str = "qwen2.5-0.5b") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.gguf"
    path.write_bytes(GGUF)
    return path


def test_models_live_in_the_xdg_cache_directory() -> None:
    assert default_models_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/voicechat/models")
    assert default_models_dir({}) == Path.home() / ".cache" / "voicechat" / "models"
    settings = load_settings(environ={"XDG_CACHE_HOME": "/c"})
    assert settings.model_cache == Path("/c/voicechat/models")


def test_auto_is_openai_with_a_key_else_local_with_a_pulled_model_else_replay(
    tmp_path: Path,
) -> None:
    env = {"VOICECHAT_MODELS_DIR": str(tmp_path)}
    assert load_settings(environ=env).llm_backend == "replay"
    pulled(tmp_path)
    assert load_settings(environ=env).llm_backend == "local"
    assert load_settings(environ={**env, "OPENAI_API_KEY": "sk-x"}).llm_backend == "openai"
    assert load_settings(environ={**env, "VOICECHAT_LLM": "replay"}).llm_backend == "replay"


def test_a_partial_download_is_not_a_pulled_model(tmp_path: Path) -> None:
    (tmp_path / "qwen2.5-0.5b.gguf.part").write_bytes(GGUF)
    assert load_settings(environ={"VOICECHAT_MODELS_DIR": str(tmp_path)}).llm_backend == "replay"


def test_local_model_is_a_pulled_name_a_path_or_by_default_the_first_pulled(
    tmp_path: Path,
) -> None:
    path = pulled(tmp_path)
    other = pulled(tmp_path / "elsewhere", "mine")
    assert resolve_model("qwen2.5-0.5b", models_dir=tmp_path) == path
    assert resolve_model(str(other), models_dir=tmp_path / "none") == other
    assert resolve_model(None, models_dir=tmp_path) == path


def test_unset_the_first_curated_model_pulled_is_used(tmp_path: Path) -> None:
    pulled(tmp_path, "aaa-my-own")
    smollm = pulled(tmp_path, "smollm2-1.7b")
    assert resolve_model(None, models_dir=tmp_path) == smollm
    pulled(tmp_path, "qwen2.5-1.5b")
    assert resolve_model(None, models_dir=tmp_path).name == "qwen2.5-1.5b.gguf"


def test_a_curated_model_not_pulled_yet_says_how_to_pull_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="voicechat pull qwen2.5-1.5b"):
        resolve_model("qwen2.5-1.5b", models_dir=tmp_path)
    with pytest.raises(ConfigError, match="neither a file nor a model name"):
        resolve_model("no-such-model", models_dir=tmp_path)
    with pytest.raises(ConfigError, match="voicechat pull NAME"):
        resolve_model(None, models_dir=tmp_path)


def test_the_cpu_budget_gives_the_llm_one_thread_on_small_machines() -> None:
    assert split_cores(2) == CpuBudget(cores=2, llm_threads=1, synthesis_workers=2)
    assert (split_cores(8).llm_threads, split_cores(8).synthesis_workers) == (4, 8)
    assert split_cores(2, llm_threads=2).llm_threads == 2
    assert split_cores(2, local_llm=False) == CpuBudget(cores=2, llm_threads=0, synthesis_workers=0)
    assert split_cores(2, local_llm=False, synthesis_workers=3).synthesis_workers == 3


def test_every_curated_model_is_a_pinned_hugging_face_file() -> None:
    for model in CURATED.values():
        assert model.url.startswith("https://huggingface.co/") and model.url.endswith(".gguf")
        assert model.sha256 is None or len(model.sha256) == 64
        assert bool(model.sha256) == bool(model.checksum_source)


def test_pull_without_a_pinned_checksum_asks_for_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert CURATED["qwen2.5-0.5b"].sha256 is None
    assert main(["pull", "qwen2.5-0.5b", "--models-dir", str(tmp_path)]) == 2
    assert "pass --sha256" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


async def test_pull_then_models_lists_the_model_as_pulled(
    aiohttp_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=GGUF)

    app = web.Application()
    app.router.add_get("/m.gguf", serve)
    server = await aiohttp_server(app)
    stand_in = CuratedModel(
        name="qwen2.5-0.5b",
        url=str(server.make_url("/m.gguf")),
        sha256=hashlib.sha256(GGUF).hexdigest(),
        licence="Apache-2.0",
        about="stand-in",
        checksum_source="the test",
    )
    monkeypatch.setitem(models.CURATED, "qwen2.5-0.5b", stand_in)
    args = build_parser().parse_args(["pull", "qwen2.5-0.5b", "--models-dir", str(tmp_path)])
    assert models_dir_of(args) == tmp_path
    assert await run_pull(args) == 0
    assert (tmp_path / "qwen2.5-0.5b.gguf").read_bytes() == GGUF
    listing = build_parser().parse_args(["models", "--models-dir", str(tmp_path)])
    assert run_models(listing) == 0
