"""Every route behind the same gates (issue 13, "Access" and "Page"): POST /v1/speak has the
token, the Origin check, JSON only, the seat cap and the metrics; the Host header is checked on
every route; a bad Authorization byte is a 401; static files carry the security headers."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import ScriptedLLM, VoiceClient, free_port, start_serve
from tests.conftest import test_settings as make_settings
from voicechat.server.app import create_app
from voicechat.tts.tone import ToneTTS

SECRET = "s3cret-token-value"
SENTENCES = ["One is first. ", "Two comes next. ", "Three is here. ", "Four is last."]
JSON = {"Content-Type": "application/json"}
SSE = {"Accept": "text/event-stream", **JSON}
PROMPT = json.dumps({"prompt": "go"})


async def serve(aiohttp_client: Any, **settings: Any) -> Any:
    app = create_app(make_settings(**settings), llm=ScriptedLLM(SENTENCES), tts=ToneTTS())
    return await aiohttp_client(app)


async def raw_request(http: Any, head: bytes) -> bytes:
    """Send ``head`` as it is (bytes no HTTP client would send) and return the answer."""
    reader, writer = await asyncio.open_connection(http.host, http.port)
    writer.write(head)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    return answer


# -- POST /v1/speak behind the gates -------------------------------------------------------


async def test_speak_needs_the_token(aiohttp_client: Any) -> None:
    http = await serve(aiohttp_client, token=SECRET)
    refused = await http.post("/v1/speak", data=PROMPT, headers=JSON)
    assert refused.status == 401
    bearer = {"Authorization": f"Bearer {SECRET}", **JSON}
    assert (await http.post("/v1/speak", data=PROMPT, headers=bearer)).status == 200


async def test_speak_from_a_foreign_page_is_refused(aiohttp_client: Any) -> None:
    http = await serve(aiohttp_client)
    headers = {"Origin": "https://evil.example", **JSON}
    assert (await http.post("/v1/speak", data=PROMPT, headers=headers)).status == 403


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_speak_takes_only_a_json_body_as_a_form_cannot_send_one(
    aiohttp_client: Any, content_type: str
) -> None:
    http = await serve(aiohttp_client)
    response = await http.post("/v1/speak", data=PROMPT, headers={"Content-Type": content_type})
    assert response.status == 415
    metrics = await (await http.get("/metrics")).text()
    assert 'voicechat_connections_refused_total{reason="content_type"} 1.0' in metrics


async def test_speak_counts_against_the_session_cap(aiohttp_client: Any) -> None:
    http = await serve(aiohttp_client, max_sessions=1)
    ws = VoiceClient(await http.ws_connect("/ws"))
    assert (await ws.next_event())["action"] == "ready"
    refused = await http.post("/v1/speak", data=PROMPT, headers=JSON)
    assert refused.status == 503
    assert refused.headers["Retry-After"].isdigit()
    await ws.ws.close()
    health = await (await http.get("/healthz")).json()
    assert health["sessions"] == 0
    assert (await http.post("/v1/speak", data=PROMPT, headers=JSON)).status == 200


async def test_speak_turns_are_in_the_metrics(aiohttp_client: Any) -> None:
    http = await serve(aiohttp_client)
    async with http.post("/v1/speak", data=PROMPT, headers=JSON) as response:
        await response.read()
    metrics = await (await http.get("/metrics")).text()
    assert 'voicechat_turns_total{outcome="done"} 1.0' in metrics
    assert "voicechat_time_to_first_audio_seconds_count 1.0" in metrics


async def audio_events(http: Any) -> int:
    async with http.post("/v1/speak", data=PROMPT, headers=SSE) as response:
        body = await response.text()
    return body.count("event: audio\n")


async def test_speak_uses_the_servers_frame_length(aiohttp_client: Any) -> None:
    short = await audio_events(await serve(aiohttp_client, frame_ms=50))
    long = await audio_events(await serve(aiohttp_client, frame_ms=5000))
    assert short > long


async def test_sigterm_ends_a_speak_body_with_its_chunked_terminator() -> None:
    port = free_port()
    # Real-time replay: the answer takes seconds, so SIGTERM lands mid-body.
    server = await start_serve(port, "--llm", "replay", "--replay-speed", "1")
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"http://127.0.0.1:{port}/v1/speak", data=PROMPT, headers=SSE) as response,
        ):
            assert (await response.content.readuntil(b"\n\n")).startswith(b"event: ready")
            server.send_signal(signal.SIGTERM)
            body = await asyncio.wait_for(response.read(), 30)  # ClientPayloadError if cut
        assert b"event: ready" not in body
        assert await asyncio.wait_for(server.wait(), 30) == 0
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()


# -- Host (DNS rebinding) --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/ws", "/"])
async def test_a_foreign_host_name_is_refused_on_every_route(
    aiohttp_client: Any, path: str
) -> None:
    http = await serve(aiohttp_client)
    response = await http.get(path, headers={"Host": f"rebind.evil.example:{http.port}"})
    assert response.status == 403


async def test_a_rebinding_page_gets_no_speech(aiohttp_client: Any) -> None:
    http = await serve(aiohttp_client)
    host = f"rebind.evil.example:{http.port}"
    headers = {"Host": host, "Origin": f"http://{host}", **JSON}
    assert (await http.post("/v1/speak", data=PROMPT, headers=headers)).status == 403
    metrics = await (await http.get("/metrics")).text()
    assert 'voicechat_connections_refused_total{reason="host"} 1.0' in metrics


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost", ""),
        ("127.0.0.1", ""),
        ("[::1]", ""),
        ("10.1.2.3", ""),  # an address cannot be rebound
        ("voice.example", "voice.example"),
        ("a.voice.example", ".voice.example"),
    ],
)
async def test_allowed_host_names_are_served(aiohttp_client: Any, host: str, allowed: str) -> None:
    http = await serve(aiohttp_client, allowed_hosts=allowed)
    response = await http.get("/healthz", headers={"Host": f"{host}:{http.port}"})
    assert response.status == 200


# -- the token's edge cases ------------------------------------------------------------------


async def test_a_bearer_token_with_a_non_ascii_byte_is_a_401_and_counted(
    aiohttp_client: Any,
) -> None:
    http = await serve(aiohttp_client, token=SECRET)
    answer = await raw_request(
        http,
        b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \xff\xfe\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    metrics = await (await http.get("/metrics", params={"token": SECRET})).text()
    assert 'voicechat_connections_refused_total{reason="token"} 1.0' in metrics


async def test_no_spelling_of_the_token_reaches_the_log() -> None:
    port = free_port()
    server = await start_serve(port, "--token", SECRET, stderr=True)
    assert server.stderr is not None
    try:
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{port}"
            for path in (f"/?TOKEN={SECRET}", f"/healthz?a=1;token={SECRET}", f"/x?Token={SECRET}"):
                async with http.get(base + path, allow_redirects=False) as response:
                    await response.read()
        for head in (
            f"GET /?token={SECRET} HTTP/1.1 junk\r\n\r\n",
            f"GET /\x01?token={SECRET} HTTP/1.1\r\nHost: x\r\n\r\n",
            f"GET /?token={SECRET} HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head.encode())
            await reader.read(65536)
            writer.close()
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.wait(), 30)
    log = (await server.stderr.read()).decode()
    assert '"GET /?TOKEN=***' in log, log  # the requests were logged, their tokens masked
    assert SECRET not in log


# -- page hygiene ----------------------------------------------------------------------------


async def test_the_page_carries_the_security_headers(aiohttp_client: Any) -> None:
    http = await serve(aiohttp_client)
    for path in ("/", "/app.js"):
        response = await http.get(path)
        assert response.status == 200
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "no-cache" in (await http.get("/")).headers["Cache-Control"]


@pytest.mark.parametrize(
    "path", ["/.env", "/%2eenv", "/sub/.git/config", "/node_modules/react/package.json"]
)
async def test_dotfiles_and_node_modules_are_never_served(
    aiohttp_client: Any, tmp_path: Path, path: str
) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>x</title>")
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-secret")
    (tmp_path / "sub" / ".git").mkdir(parents=True)
    (tmp_path / "sub" / ".git" / "config").write_text("[core]")
    (tmp_path / "node_modules" / "react").mkdir(parents=True)
    (tmp_path / "node_modules" / "react" / "package.json").write_text('{"name":"react"}')
    http = await serve(aiohttp_client, web_dir=tmp_path)
    assert (await http.get("/")).status == 200
    response = await http.get(path)
    assert response.status == 404
    assert "sk-secret" not in await response.text()
