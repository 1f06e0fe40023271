"""``voicechat pull``'s download against a loopback HTTP server that serves byte ranges, can
break a connection part-way and can ignore ranges: the real aiohttp client, the real files."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from voicechat.llm.models import pulled_models
from voicechat.llm.pull import PullFailed, PullTarget, pull

MODEL = bytes(range(256)) * 4096  # 1 MiB that is not all zeros
SHA = hashlib.sha256(MODEL).hexdigest()


@dataclass
class ModelHost:
    """Serves MODEL at /model.gguf. ``break_after``: the first N responses stop after that many
    bytes and drop the connection; ``ignore_ranges``: always answer 200 with everything."""

    break_after: int | None = None
    breaks: int = 1
    ignore_ranges: bool = False
    ranges: list[str | None] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Range")
        self.ranges.append(header)
        start = 0
        if header and not self.ignore_ranges:
            start = int(header.removeprefix("bytes=").removesuffix("-"))
            if start >= len(MODEL):
                return web.Response(status=416)
        body = MODEL[start:]
        response = web.StreamResponse(status=206 if start else 200)
        response.content_length = len(body)
        if start:
            response.headers["Content-Range"] = f"bytes {start}-{len(MODEL) - 1}/{len(MODEL)}"
        await response.prepare(request)
        if self.break_after is not None and self.breaks > 0:
            self.breaks -= 1
            await response.write(body[: self.break_after])
            assert request.transport is not None
            request.transport.close()  # the connection breaks mid-body
            return response
        await response.write(body)
        await response.write_eof()
        return response


@pytest.fixture
async def host(aiohttp_server: Any) -> ModelHost:
    model_host = ModelHost()
    app = web.Application()
    app.router.add_get("/model.gguf", model_host.handle)
    server = await aiohttp_server(app)
    model_host.url = str(server.make_url("/model.gguf"))
    return model_host


def target(host: ModelHost, sha256: str = SHA) -> PullTarget:
    return PullTarget(name="tiny", url=host.url, sha256=sha256)


async def test_pull_downloads_checks_and_names_the_file(host: ModelHost, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    path = await pull(target(host), models_dir=tmp_path, progress=lambda d, t: seen.append((d, t)))
    assert path == tmp_path / "tiny.gguf" and path.read_bytes() == MODEL
    assert seen[-1] == (len(MODEL), len(MODEL))
    assert pulled_models(tmp_path) == {"tiny": path}


async def test_a_broken_connection_is_resumed_with_a_range_request(
    host: ModelHost, tmp_path: Path
) -> None:
    host.break_after = 300_000
    path = await pull(target(host), models_dir=tmp_path, retry_delay=0)
    assert path.read_bytes() == MODEL
    assert host.ranges[0] is None
    resumed_from = int(host.ranges[1].removeprefix("bytes=").removesuffix("-"))  # type: ignore[union-attr]
    assert 0 < resumed_from <= 300_000


async def test_a_partial_file_left_by_an_earlier_pull_is_resumed(
    host: ModelHost, tmp_path: Path
) -> None:
    (tmp_path / "tiny.gguf.part").write_bytes(MODEL[:123_456])
    path = await pull(target(host), models_dir=tmp_path)
    assert path.read_bytes() == MODEL
    assert host.ranges == ["bytes=123456-"]


async def test_a_server_that_ignores_the_range_is_read_from_the_start(
    host: ModelHost, tmp_path: Path
) -> None:
    host.ignore_ranges = True
    (tmp_path / "tiny.gguf.part").write_bytes(b"x" * 1000)  # not even the right bytes
    path = await pull(target(host), models_dir=tmp_path)
    assert path.read_bytes() == MODEL


async def test_a_wrong_checksum_fails_and_keeps_nothing(host: ModelHost, tmp_path: Path) -> None:
    wrong = hashlib.sha256(b"another file").hexdigest()
    with pytest.raises(PullFailed, match="is not the pinned"):
        await pull(target(host, wrong), models_dir=tmp_path)
    assert os.listdir(tmp_path) == []
    assert pulled_models(tmp_path) == {}


async def test_a_download_that_keeps_breaking_fails_and_keeps_the_part_to_resume(
    host: ModelHost, tmp_path: Path
) -> None:
    host.break_after, host.breaks = 1000, 100
    with pytest.raises(PullFailed, match="run the pull again to resume"):
        await pull(target(host), models_dir=tmp_path, retries=2, retry_delay=0)
    assert len((tmp_path / "tiny.gguf.part").read_bytes()) == 3000
    assert pulled_models(tmp_path) == {}
    host.breaks = 0
    assert (await pull(target(host), models_dir=tmp_path)).read_bytes() == MODEL
    assert host.ranges[-1] == "bytes=3000-"


async def test_an_http_error_fails_the_pull(host: ModelHost, tmp_path: Path) -> None:
    missing = PullTarget(name="tiny", url=host.url.replace("model", "nothing"), sha256=SHA)
    with pytest.raises(PullFailed, match="HTTP 404"):
        await pull(missing, models_dir=tmp_path)


def test_a_checksum_must_be_64_hex_digits() -> None:
    with pytest.raises(PullFailed, match="64 hex digits"):
        PullTarget(name="tiny", url="http://127.0.0.1:9/x", sha256="abc")
