"""The garbage collector: `voicechat serve` freezes what is alive once the app has started, later
garbage is collected, and a turn that is over is freed at once, without a collection."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import ClientFactory, ScriptedLLM, VoiceClient
from tests.conftest import test_settings as make_settings
from voicechat import cli
from voicechat.heap import freeze_after_startup
from voicechat.server import SESSIONS, create_app
from voicechat.tts.tone import ToneTTS


class Cycle:
    def __init__(self) -> None:
        self.me = self


async def test_after_startup_the_live_objects_are_frozen_and_later_cycles_collected(
    aiohttp_client: Any,
) -> None:
    app = create_app(make_settings(), tts=ToneTTS())
    app.on_startup.append(freeze_after_startup)
    try:
        http = await aiohttp_client(app)
        assert gc.get_freeze_count() > 10_000  # modules, classes, the app, its backends
        client = VoiceClient(await http.ws_connect("/ws"))
        assert (await client.next_event())["action"] == "ready"
        events = await client.turn("Say something.")
        assert events[-1]["action"] == "done"
        later = Cycle()
        gone = weakref.ref(later)
        del later
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()


def test_serve_freezes_after_the_apps_own_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[web.Application] = []
    monkeypatch.setattr(cli.web, "run_app", lambda app, **_: served.append(app))
    assert cli.main(["serve", "--tts", "tone", "--llm", "replay"]) == 0
    (app,) = served
    assert list(app.on_startup)[-1] is freeze_after_startup


async def test_a_finished_or_stopped_turn_is_freed_without_the_collector(
    voice_client: ClientFactory,
) -> None:
    client, http = await voice_client(llm=ScriptedLLM(["One. ", "Two. ", "Three."]))
    (session,) = http.server.app[SESSIONS]
    gc.collect()
    gc.disable()
    try:
        assert (await client.turn("first"))[-1]["action"] == "done"
        finished = weakref.ref(session._turn)  # noqa: SLF001
        await client.start("second")
        await client.until("audio")
        stopped = weakref.ref(session._turn)  # noqa: SLF001
        await client.send("stop")
        await client.until("stopped")
        assert (await client.turn("third"))[-1]["action"] == "done"
        assert finished() is None and stopped() is None
    finally:
        gc.enable()
