"""Who may connect: Origin allow-list, shared-secret token, session cap; no secrets in logs."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType

from tests.conftest import ClientFactory, VoiceClient, eventually
from tests.conftest import test_settings as make_settings
from voicechat.client.connection import ConnectionFailed, VoiceConnection
from voicechat.server.access import OriginPolicy
from voicechat.server.app import create_app
from voicechat.server.keys import SESSIONS
from voicechat.tts.tone import ToneTTS

SECRET = "s3cret-Tøken"  # non-ASCII on purpose: compare_digest refuses non-ASCII str


async def serve(aiohttp_client: Any, **settings: Any) -> Any:
    return await aiohttp_client(create_app(make_settings(**settings), tts=ToneTTS()))


async def handshake_status(http: Any, path: str = "/ws", **kwargs: Any) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(path, **kwargs)
    return refused.value.status


# -- Origin ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "ok"),
    [
        ("http://127.0.0.1:8765", "127.0.0.1:8765", "", True),
        ("http://LOCALHOST:8765", "localhost:8765", "", True),
        ("https://example.com", "example.com", "", True),
        ("https://example.com:443", "example.com", "", True),
        ("http://[::1]:8765", "[::1]:8765", "", True),
        ("http://127.0.0.1:9999", "127.0.0.1:8765", "", False),
        ("https://evil.example", "example.com", "", False),
        ("null", "example.com", "", False),
        ("http://example.com:notaport", "example.com", "", False),
        ("https://app.example", "api.example", "https://app.example", True),
        ("http://app.example", "api.example", "https://app.example", False),
        ("http://localhost:3000", "api.example", "https://app.example,http://localhost:3000", True),
        ("https://anything.example", "api.example", "*", True),
        (None, "example.com", "", True),
    ],
)
def test_origin_policy(origin: str | None, host: str, allowed: str, ok: bool) -> None:
    assert OriginPolicy(allowed).allows(origin, host) is ok


async def test_a_cross_origin_websocket_is_refused_with_403_before_upgrading(
    aiohttp_client: Any,
) -> None:
    http = await serve(aiohttp_client)
    status = await handshake_status(http, headers={"Origin": "https://evil.example"})
    assert status == 403
    assert not http.app[SESSIONS]


async def test_a_same_origin_page_and_a_client_without_origin_connect(aiohttp_client: Any) -> None:
    http = await serve(aiohttp_client)
    own = f"http://{http.host}:{http.port}"
    for headers in ({"Origin": own}, {}):
        client = VoiceClient(await http.ws_connect("/ws", headers=headers))
        assert (await client.next_event())["action"] == "ready"
        await client.ws.close()


async def test_an_allow_listed_origin_connects(aiohttp_client: Any) -> None:
    http = await serve(aiohttp_client, allowed_origins="https://app.example")
    ws = await http.ws_connect("/ws", headers={"Origin": "https://app.example"})
    assert (await ws.receive_json())["action"] == "ready"
    await ws.close()


# -- token -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ws", "/metrics"])
@pytest.mark.parametrize(
    "credentials",
    [{}, {"params": {"token": "wrong"}}, {"headers": {"Authorization": "Bearer wrong"}}],
    ids=["none", "wrong-query", "wrong-bearer"],
)
async def test_without_the_token_a_client_is_refused_with_401(
    aiohttp_client: Any, path: str, credentials: dict[str, Any]
) -> None:
    http = await serve(aiohttp_client, token=SECRET)
    if path == "/ws":
        assert await handshake_status(http, path, **credentials) == 401
        assert not http.app[SESSIONS]
    else:
        response = await http.get(path, **credentials)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "credentials",
    [{"params": {"token": SECRET}}, {"headers": {"Authorization": f"Bearer {SECRET}"}}],
    ids=["query", "bearer"],
)
async def test_the_token_opens_the_websocket_and_metrics(
    aiohttp_client: Any, credentials: dict[str, Any]
) -> None:
    http = await serve(aiohttp_client, token=SECRET)
    ws = await http.ws_connect("/ws", **credentials)
    assert (await ws.receive_json())["action"] == "ready"
    await ws.close()
    assert (await http.get("/metrics", **credentials)).status == 200


async def test_health_and_the_page_need_no_token(aiohttp_client: Any) -> None:
    http = await serve(aiohttp_client, token=SECRET)
    assert (await http.get("/healthz")).status == 200
    assert (await http.get("/")).status == 200


async def test_the_token_is_checked_before_the_origin(aiohttp_client: Any) -> None:
    http = await serve(aiohttp_client, token=SECRET)
    assert await handshake_status(http, headers={"Origin": "https://evil.example"}) == 401


async def test_no_secret_and_no_prompt_text_in_logs(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    prompt = "my private question about zebras"
    http = await serve(aiohttp_client, token=SECRET)
    client = VoiceClient(await http.ws_connect("/ws", params={"token": SECRET}))
    await client.next_event()
    events = await client.turn(prompt)
    assert events[-1]["action"] == "done"
    await client.ws.close()
    await http.get("/metrics", params={"token": SECRET})
    await handshake_status(http, params={"token": "wrong-guess"})
    await http.close()  # the WebSocket's access line is written when its handler ends
    lines = [record.getMessage() for record in caplog.records]
    assert any("turn t1 started (32 chars)" in line for line in lines)
    assert any('"GET /ws?token=***' in line for line in lines), lines
    assert not [line for line in lines if SECRET in line or "wrong-guess" in line]
    assert not [line for line in lines if "zebras" in line]


# -- session cap -----------------------------------------------------------------------------


async def test_a_client_over_the_session_cap_is_refused_with_1013(
    voice_client: ClientFactory,
) -> None:
    first, http = await voice_client(max_sessions=2)
    second = VoiceClient(await http.ws_connect("/ws"))
    assert (await second.next_event())["action"] == "ready"
    third = await http.ws_connect("/ws")
    refusal = await third.receive()
    assert refusal.type is WSMsgType.CLOSE
    assert refusal.data == 1013
    assert "full" in refusal.extra and "2 sessions" in refusal.extra
    assert len(http.app[SESSIONS]) == 2
    # the sessions already open are unaffected
    assert (await first.turn("Count to five."))[-1]["action"] == "done"
    assert (await second.turn("Count to five."))[-1]["action"] == "done"
    # and a place that frees up is taken again
    await second.ws.close()
    await eventually(lambda: len(http.app[SESSIONS]) == 1)
    fourth = VoiceClient(await http.ws_connect("/ws"))
    assert (await fourth.next_event())["action"] == "ready"
    metrics = await (await http.get("/metrics")).text()
    assert 'voicechat_connections_refused_total{reason="full"} 1.0' in metrics


async def test_the_cli_client_sends_the_token(aiohttp_client: Any) -> None:
    http = await serve(aiohttp_client, token=SECRET)
    url = str(http.make_url("/ws"))
    async with VoiceConnection.open(url, token=SECRET) as voice:
        assert voice.info.llm == "replay"
    with pytest.raises(ConnectionFailed):
        async with VoiceConnection.open(url):
            pass
