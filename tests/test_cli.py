"""The commands users run: `voicechat demo` and `voicechat serve`."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import miniaudio
import pytest

pytestmark = pytest.mark.timeout(120)
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("VOICECHAT_", "OPENAI_"))}


def test_demo_speaks_offline_into_an_mp3_file(tmp_path: Path) -> None:
    out = tmp_path / "answer.mp3"
    result = subprocess.run(
        [sys.executable, "-m", "voicechat", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=100,
        env=ENV,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "llm=replay tts=piper" in result.stdout
    assert f"to {out}" in result.stdout
    decoded = miniaudio.decode(out.read_bytes(), nchannels=1, sample_rate=22050)
    assert decoded.duration > 10  # the sample answer is about 20 s of speech


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_serve_answers_health_and_a_turn_then_stops_on_sigint() -> None:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voicechat",
        "serve",
        "--port",
        str(port),
        "--tts",
        "tone",
        "--replay-speed",
        "0",
        env=ENV,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        line = await asyncio.wait_for(server.stdout.readline(), 60)
        assert f"listening on http://127.0.0.1:{port}/" in line.decode()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as health:
                assert (await health.json())["llm"] == "replay"
            async with http.get(f"http://127.0.0.1:{port}/") as page:
                assert page.status == 200 and "voicechat" in await page.text()
            async with http.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
                assert (await ws.receive_json())["action"] == "ready"
                await ws.send_json({"action": "start", "data": {"prompt": "Count to five."}})
                actions = []
                while not actions or actions[-1] != "done":
                    actions.append((await ws.receive_json(timeout=10))["action"])
                assert actions.count("sentence") == 5
    finally:
        server.send_signal(2)
        assert await asyncio.wait_for(server.wait(), 10) == 0
