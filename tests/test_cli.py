"""The commands users run: `voicechat demo` and `voicechat serve`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import aiohttp
import miniaudio
import pytest

from tests.conftest import CLEAN_ENV, free_port, start_serve

pytestmark = pytest.mark.timeout(120)


def test_demo_speaks_offline_into_an_mp3_file(tmp_path: Path) -> None:
    out = tmp_path / "answer.mp3"
    result = subprocess.run(
        [sys.executable, "-m", "voicechat", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=100,
        env=CLEAN_ENV,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "llm=replay tts=piper" in result.stdout
    assert f"to {out}" in result.stdout
    decoded = miniaudio.decode(out.read_bytes(), nchannels=1, sample_rate=22050)
    assert decoded.duration > 10  # the sample answer is about 20 s of speech


async def test_serve_answers_health_and_a_turn_then_stops_on_sigint() -> None:
    port = free_port()
    server = await start_serve(port, "--replay-speed", "0")
    try:
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
