"""At start-up a TTS chain finds out which backends cannot be reached at all, so that the
first turn offline starts speaking without waiting on them."""

from __future__ import annotations

from typing import Any

import edge_tts.communicate
import pytest

from tests.conftest import VoiceClient, free_port
from tests.conftest import test_settings as make_settings
from tests.edge_upstream import EdgeUpstream
from voicechat.server.app import create_app
from voicechat.server.keys import TTS, TTS_PROBE
from voicechat.tts.fallback import FallbackTTS


async def test_an_unreachable_edge_is_skipped_from_the_first_turn(
    aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"wss://127.0.0.1:{free_port()}/edge/v1?TrustedClientToken=x"
    monkeypatch.setattr(edge_tts.communicate, "WSS_URL", url)
    app = create_app(make_settings(tts="edge,tone"))
    http = await aiohttp_client(app)
    await app[TTS_PROBE]
    chain = app[TTS]
    assert isinstance(chain, FallbackTTS)
    assert "edge" in chain.cooling()
    client = VoiceClient(await http.ws_connect("/ws"))
    assert (await client.next_event())["data"]["tts"] == "tone"
    events = await client.turn("Count to five.")
    assert not [e for e in events if e["action"] in ("backend", "error")]
    assert events[-1]["data"]["sentences"] == 5


async def test_a_reachable_edge_stays_first(
    aiohttp_client: Any, edge_upstream: EdgeUpstream
) -> None:
    app = create_app(make_settings(tts="edge,tone"))
    http = await aiohttp_client(app)
    await app[TTS_PROBE]
    assert app[TTS].cooling() == {}  # type: ignore[attr-defined]
    client = VoiceClient(await http.ws_connect("/ws"))
    assert (await client.next_event())["data"]["tts"] == "edge"
