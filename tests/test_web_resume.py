"""The voice page with the server's access token and after a dropped connection, in a real
browser (see test_web_page.py): it passes `?token=` on, says clearly when it is refused,
resumes a turn cut mid-answer so that it plays on as one stream, and tells the server on
reconnecting of a Pause (in the reconnect's address) or a Stop pressed while the connection was
down."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncGenerator, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page

from tests.browser import (
    AUDIO_JS,
    EndlessReplayLLM,
    OpenPage,
    ServerThread,
    WireLog,
    ask,
    frames_seconds,
    hold,
    played_reports,
    state,
    until,
)
from tests.conftest import free_port
from voicechat.llm.base import ChatMessage
from voicechat.pipeline.audio import duration_s

SAME = 1e-3  # seconds: the media clock and the frame headers agree to the microsecond
SECRET = "s3cr3t-Token"
COUNT = "Count to five."  # five one-word sentences, 1.0 s of tone
LONG = "Tell me about the voicechat demo."  # ~11 s; its LLM stream never ends

# What the held LLM says, in three parts: it waits before each of the last two.
PARTS = [
    ["Paris is the capital ", "of France. "],
    ["It sits on the Seine. "],
    ["It has been the capital ", "for most of its history, ", "with a short break."],
]
HOLD_FROM = 2  # the valve keeps audio frames from this seq on from the page


class HeldLLM:
    """Says PARTS[0]; says each next part only once its ``go`` event is set (on the server's
    loop): the turn is mid-answer, with audio sent, for as long as a test needs."""

    name = "held"

    def __init__(self) -> None:
        self.go = [asyncio.Event() for _ in PARTS[1:]]

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
        for index, part in enumerate(PARTS):
            if index > 0:
                await self.go[index - 1].wait()
            for delta in part:
                yield delta

    async def aclose(self) -> None:
        return None


class Valve:
    """Routes the page's sockets through Playwright. On the first one, the server's audio
    frames from ``HOLD_FROM`` on (and whatever comes after them but text and sentences) never
    reach the page, as when a network dies with frames in flight; later sockets pass all.

    With ``hold_reconnect``, the page's second socket opens on the page's side but reaches the
    server only when the test calls :meth:`let_through`: until then the page is disconnected
    (it has no `ready`), for as long as the test needs, and the server keeps the session."""

    def __init__(self, *, hold_reconnect: bool = False) -> None:
        self.held: list[dict[str, Any]] = []
        self.sockets = 0
        self.urls: list[str] = []  # of every socket the page opened, also those held
        self.waiting: Any = None  # the page's side of the held reconnect
        self._hold_reconnect = hold_reconnect

    def __call__(self, page_side: Any) -> None:
        self.sockets += 1
        self.urls.append(page_side.url)
        if self.sockets == 2 and self._hold_reconnect:
            self.waiting = page_side
            return
        server_side = page_side.connect_to_server()
        if self.sockets == 1:
            server_side.on_message(lambda raw: self._pass(page_side, raw))

    def let_through(self) -> None:
        """Connect the held reconnect to the server (it then relays everything as is)."""
        assert self.waiting is not None, "the page has not tried to reconnect"
        self.waiting.connect_to_server()

    def turn_away(self) -> None:
        """Close the held reconnect before it reached the server, as a dead network would: the
        page tries again (with the address it makes then), and that socket passes."""
        assert self.waiting is not None, "the page has not tried to reconnect"
        self.waiting.close()

    def _pass(self, page_side: Any, raw: str | bytes) -> None:
        message = json.loads(raw)
        cut = self.held or (message["action"] == "audio" and message["seq"] >= HOLD_FROM)
        if cut and message["action"] not in ("text", "sentence"):
            self.held.append(message)
        else:
            page_side.send(raw)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[ServerThread]:
    """The test server; ``indirect`` parametrization passes settings (and ``held=True``)."""
    options = dict(getattr(request, "param", {}))
    llm = HeldLLM() if options.pop("held", False) else EndlessReplayLLM(endless=[LONG])
    server = ServerThread(free_port(), llm=llm, **options).start()
    yield server
    server.stop()


def visible_text(page: object) -> str:
    return str(page.evaluate("document.body.innerText"))  # type: ignore[attr-defined]


@pytest.mark.parametrize("server", [{"token": SECRET}], indirect=True)
def test_with_the_token_in_its_address_the_page_connects_and_never_shows_it(
    open_page: OpenPage,
) -> None:
    page, wire = open_page(f"?token={SECRET}")
    assert parse_qs(urlsplit(wire.urls[0]).query)["token"] == [SECRET]
    assert SECRET not in page.url  # taken out of the address bar (and so out of Referer)
    turn = ask(page, COUNT)
    until(page, "s.turn.state === 'done'")
    played = page.evaluate(AUDIO_JS)["played"]
    assert played == [[0, pytest.approx(frames_seconds(wire, turn), abs=SAME)]]
    assert SECRET not in visible_text(page)
    page.reload()  # the tab keeps the token for itself
    page.wait_for_selector('#status[data-state="connected"]')
    assert SECRET not in page.url and SECRET not in visible_text(page)


@pytest.mark.parametrize("server", [{"token": SECRET}], indirect=True)
def test_without_the_token_the_page_says_it_is_refused_and_backs_off(
    open_page: OpenPage,
) -> None:
    page, wire = open_page(connected=False)
    page.wait_for_selector('#status[data-reason="refused"]')
    status = page.text_content("#status") or ""
    assert status.startswith("cannot connect: refused") and "retrying in" in status
    until(page, "s.attempt >= 3 && s.reason === 'refused'")
    # Every attempt failed at the handshake (401): the attempt count was never reset, so each
    # wait is drawn from a doubling ceiling; no socket was opened but by a scheduled attempt.
    now = state(page)
    assert now["session"] is None and wire.received == []
    assert now["attempt"] <= wire.sockets + 1 and wire.sockets <= now["attempt"] + 1
    assert page.is_disabled("#start")


def assert_played_as_one_stream(
    page: Page, wire: WireLog, turn: str, heard: list[dict[str, Any]], player: str
) -> None:
    """``heard``, the turn's audio frames as the page got them, is the audio `done` reports,
    buffered and played through as one stream, without a gap or a repeat."""
    seconds = duration_s(b"".join(base64.b64decode(m["data"]) for m in heard))
    assert wire.of_turn(turn, "done")[0]["data"]["audio_ms"] == round(seconds * 1000)
    if player == "mse":
        audio = page.evaluate(AUDIO_JS)
        assert audio["buffered"] == [[0, pytest.approx(seconds, abs=SAME)]]
        assert audio["played"] == [[0, pytest.approx(seconds, abs=SAME)]]
    else:  # every frame scheduled once, back to back on one clock, and played through
        now = state(page)
        assert now["player"]["kind"] == "webaudio" and now["player"]["decodeErrors"] == 0
        assert now["buffered"] == pytest.approx(seconds, abs=SAME)
        assert now["position"] == pytest.approx(seconds, abs=SAME)


@pytest.mark.parametrize("player", ["mse", "webaudio"])
@pytest.mark.parametrize("server", [{"held": True}], indirect=True)
def test_a_turn_cut_mid_answer_resumes_and_plays_on_as_one_stream(
    open_page: OpenPage, server: ServerThread, player: str
) -> None:
    llm = server.llm
    assert isinstance(llm, HeldLLM)
    valve = Valve()
    page, wire = open_page(f"?player={player}", relay=valve)
    turn = ask(page, "Tell me about Paris.")
    until(page, f"s.turn.frames === {HOLD_FROM} && s.position > 0")
    server.call(llm.go[0].set)  # a sentence more: its text reaches the page, its audio not
    wire.wait_for("a frame the page did not get", lambda: valve.held)
    assert server.cut_connections() == 1  # no close frame: the server keeps the session
    until(page, "s.resumes === 1")
    server.call(llm.go[1].set)  # the turn goes on, on the new connection
    until(page, "s.turn.state === 'done'")

    readies = [m for m in wire.received if m["action"] == "ready"]
    assert [r["data"]["resumed"] for r in readies] == [False, True]
    assert readies[1]["data"]["session"] == readies[0]["data"]["session"]
    assert readies[1]["data"]["turn"] == {"id": turn, "paused": False}
    query = parse_qs(urlsplit(wire.urls[1]).query)
    assert query["resume"] == [readies[0]["data"]["resume"]]
    assert (query["turn"], query["seq"]) == ([turn], [str(HOLD_FROM - 1)])
    # The wire log is the server's side of the valve. The frames kept from the page came
    # again after the resume, as they were, then the rest: the page got each frame once.
    again = next(i for i, m in enumerate(wire.received) if m["action"] == "ready" and i > 0)
    frames = [(i, m) for i, m in enumerate(wire.received) if m.get("action") == "audio"]
    first = [m for i, m in frames if i < again]
    resent = [m for i, m in frames if i > again]
    held = [m for m in valve.held if m["action"] == "audio"]
    assert [m["seq"] for m in first] == list(range(HOLD_FROM)) + [m["seq"] for m in held]
    assert [m["seq"] for m in resent] == list(range(HOLD_FROM, HOLD_FROM + len(resent)))
    assert resent[: len(held)] == held
    heard = first[:HOLD_FROM] + resent
    now = state(page)
    assert (now["turn"]["frames"], now["turn"]["lastSeq"]) == (len(heard), heard[-1]["seq"])
    assert now["dropped"] == 0

    assert_played_as_one_stream(page, wire, turn, heard, player)
    reports = played_reports(wire, turn)
    assert reports == sorted(set(reports)) and reports[-1] == heard[-1]["seq"]
    # The text and sentence that came after the last frame before the cut are not doubled.
    assert state(page)["turn"]["caption"] == "".join(sum(PARTS, []))
    classes = page.eval_on_selector_all(".turn .sentence", "els => els.map(e => e.className)")
    assert classes == ["sentence heard"] * 3


@pytest.mark.parametrize("server", [{"resume_window": 0.0}], indirect=True)
def test_a_turn_the_server_could_not_keep_is_cut_off_and_silenced(
    open_page: OpenPage, server: ServerThread
) -> None:
    page, wire = open_page()
    turn = ask(page, LONG)
    until(page, "s.position > 0.3 && s.buffered > s.position + 1")
    assert server.cut_connections() == 1
    until(page, "s.resumes === 0 && s.session !== null && s.turn.state === 'lost'")

    readies = [m for m in wire.received if m["action"] == "ready"]
    assert "resume" in parse_qs(urlsplit(wire.urls[1]).query)
    assert readies[1]["data"]["resumed"] is False
    assert readies[1]["data"]["session"] != readies[0]["data"]["session"]
    audio = page.evaluate(AUDIO_JS)
    assert audio["paused"] and audio["src"] is None and audio["buffered"] == []
    meta = page.text_content(f'[data-turn="{turn}"] .meta') or ""
    assert "cut off" in meta and "resuming" not in meta
    assert not page.is_disabled("#start") and page.is_disabled("#stop")


# -- Pause and Stop pressed while the connection is down -----------------------------------


def cut_with_the_reconnect_held(
    open_page: OpenPage, server: ServerThread, query: str = ""
) -> tuple[Page, WireLog, Valve, str]:
    """A turn mid-answer: its first sentence is at the page, the audio of its second one was
    sent but kept from the page; then the connection is cut (the server keeps the session) and
    the page's reconnect is held in the valve. The turn is still live on the server, and its
    LLM waits for ``go[1]``."""
    llm = server.llm
    assert isinstance(llm, HeldLLM)
    valve = Valve(hold_reconnect=True)
    page, wire = open_page(query, relay=valve)
    turn = ask(page, "Tell me about Paris.")
    until(page, f"s.turn.frames === {HOLD_FROM} && s.position > 0")
    server.call(llm.go[0].set)
    wire.wait_for("a frame the page did not get", lambda: valve.held)
    assert server.cut_connections() == 1  # no close frame: the server keeps the session
    wire.wait_for("the page's reconnect", lambda: valve.waiting is not None)
    until(page, "s.connection === 'connecting' && s.turn.interrupted")
    assert page.is_disabled("#start")  # no `ready` on the new socket: not connected
    return page, wire, valve, turn


def where(wire: WireLog, direction: str, action: str, turn: str | None = None) -> list[int]:
    """The places in ``wire.both`` of the frames of ``direction`` with ``action`` (and of
    ``turn``, when given)."""
    return [
        i
        for i, (d, m) in enumerate(wire.both)
        if d == direction and m["action"] == action and (turn is None or m.get("turn") == turn)
    ]


def audio_between(wire: WireLog, start: int, end: int) -> list[dict[str, Any]]:
    return [m for d, m in wire.both[start:end] if d == "received" and m["action"] == "audio"]


def pause_while_disconnected(page: Page, wire: WireLog) -> None:
    """Press Pause with no connection: the page goes silent at once, and sends nothing."""
    page.click("#pause")
    now = state(page)
    assert now["turn"]["paused"] and now["paused"]  # silent at once, before any server knows
    assert page.text_content("#pause") == "Resume"
    assert {"action": "pause"} not in wire.sent  # there was nowhere to send it


def say_the_rest_while_paused(page: Page, wire: WireLog, server: ServerThread, turn: str) -> int:
    """Let the paused turn say the rest of its answer: its text reaches the page, and the page
    stays silent and gets no new audio. Returns the place of the last words in ``wire.both``."""
    llm = server.llm
    assert isinstance(llm, HeldLLM)
    server.call(llm.go[1].set)
    last_words = {"action": "text", "turn": turn, "data": PARTS[2][-1]}
    wire.wait_for("the turn's last words", lambda: last_words in wire.received)
    before = state(page)
    hold(page, 500)
    after = state(page)
    assert after["paused"] and after["turn"]["paused"]
    assert (after["position"], after["turn"]["frames"]) == (
        before["position"],
        before["turn"]["frames"],
    )
    return wire.both.index(("received", last_words))


def resume_and_play_on_as_one_stream(
    page: Page, wire: WireLog, turn: str, *, again: int, silent_since: int, player: str
) -> None:
    """Press Resume: `resume`, `resumed`, with no audio from ``silent_since`` to `resumed`;
    then the turn plays on to its end as one stream: the frames before the cut, and all that
    came after the resumed `ready` (at ``again`` in ``wire.both``), each once, in order."""
    page.click("#pause")  # Resume
    until(page, "s.turn.state === 'done'")
    [resume] = where(wire, "sent", "resume")
    [resumed] = where(wire, "received", "resumed", turn)
    assert silent_since < resume < resumed
    assert audio_between(wire, silent_since, resumed) == []

    heard = audio_between(wire, 0, again)[:HOLD_FROM] + audio_between(wire, again, len(wire.both))
    assert [m["seq"] for m in heard] == list(range(len(heard)))
    now = state(page)
    assert (now["turn"]["frames"], now["dropped"]) == (len(heard), 0)
    assert_played_as_one_stream(page, wire, turn, heard, player)
    assert now["turn"]["caption"] == "".join(sum(PARTS, []))


def address(valve: Valve, attempt: int) -> dict[str, list[str]]:
    """The query of the page's socket number ``attempt`` (0: the first)."""
    return parse_qs(urlsplit(valve.urls[attempt]).query)


@pytest.mark.parametrize("player", ["mse", "webaudio"])
@pytest.mark.parametrize("server", [{"held": True}], indirect=True)
def test_pausing_while_disconnected_pauses_the_turn_on_reconnect_and_resume_plays_it_on(
    open_page: OpenPage, server: ServerThread, player: str
) -> None:
    page, wire, valve, turn = cut_with_the_reconnect_held(open_page, server, f"?player={player}")
    pause_while_disconnected(page, wire)
    assert address(valve, 1)["paused"] == ["0"]  # it set out while the turn played
    valve.turn_away()
    until(page, "s.resumes === 1")
    # The next attempt asks for the turn paused; the server pauses it as it takes the page
    # back, and its `ready` says so: the page has nothing to send, the server nothing to ack.
    query = address(valve, 2)
    assert (query["turn"], query["seq"]) == ([turn], [str(HOLD_FROM - 1)])
    assert query["paused"] == ["1"]
    readies = [m for m in wire.received if m["action"] == "ready"]
    assert [r["data"]["resumed"] for r in readies] == [False, True]
    assert readies[1]["data"]["session"] == readies[0]["data"]["session"]
    assert readies[1]["data"]["turn"] == {"id": turn, "paused": True}
    last_words = say_the_rest_while_paused(page, wire, server, turn)
    assert where(wire, "sent", "pause") == [] and where(wire, "received", "paused") == []
    # After the resumed `ready`: the frames kept from the page, sent again (they were written
    # before the pause), and nothing the turn said after it.
    again = where(wire, "received", "ready")[1]
    kept = [m for m in valve.held if m["action"] == "audio"]
    replayed = audio_between(wire, again, len(wire.both))
    assert kept and replayed[: len(kept)] == kept
    assert all(m["sentence"] < len(PARTS) - 1 for m in replayed)

    resume_and_play_on_as_one_stream(
        page, wire, turn, again=again, silent_since=last_words, player=player
    )


@pytest.mark.parametrize("server", [{"held": True}], indirect=True)
def test_a_pause_pressed_after_the_reconnect_set_out_is_sent_after_the_resumed_ready(
    open_page: OpenPage, server: ServerThread
) -> None:
    """The reconnect set out before Pause was pressed: its address says the turn plays, and so
    does the resumed `ready` (as it would from a server that ignores `paused=`). The page then
    sends `pause` at once, and nothing new of the turn comes until Resume."""
    page, wire, valve, turn = cut_with_the_reconnect_held(open_page, server)
    pause_while_disconnected(page, wire)
    valve.let_through()
    wire.wait_for("paused", lambda: wire.of_turn(turn, "paused"))
    assert address(valve, 1)["paused"] == ["0"]
    readies = [m for m in wire.received if m["action"] == "ready"]
    assert readies[1]["data"]["turn"] == {"id": turn, "paused": False}
    say_the_rest_while_paused(page, wire, server, turn)
    # On the new socket: the resumed `ready`, the page's `pause`, the server's `paused`; before
    # it, the frames kept from the page, sent again; since then, no audio at all.
    again = where(wire, "received", "ready")[1]
    [pause] = where(wire, "sent", "pause")
    [paused] = where(wire, "received", "paused", turn)
    assert again < pause < paused
    kept = [m for m in valve.held if m["action"] == "audio"]
    assert audio_between(wire, again, paused)[: len(kept)] == kept
    assert audio_between(wire, paused, len(wire.both)) == []

    resume_and_play_on_as_one_stream(
        page, wire, turn, again=again, silent_since=paused, player="mse"
    )


@pytest.mark.parametrize("server", [{"held": True}], indirect=True)
def test_stopping_while_disconnected_stops_the_turn_on_reconnect_and_plays_none_of_it(
    open_page: OpenPage, server: ServerThread
) -> None:
    llm = server.llm
    assert isinstance(llm, HeldLLM)
    page, wire, valve, turn = cut_with_the_reconnect_held(open_page, server)
    page.click("#stop")
    stopped_there = state(page)
    assert stopped_there["turn"]["state"] == "stopped"
    audio = page.evaluate(AUDIO_JS)
    assert audio["paused"] and audio["src"] is None and audio["buffered"] == []
    assert {"action": "stop"} not in wire.sent  # there was nowhere to send it

    valve.let_through()
    wire.wait_for("stopped", lambda: wire.of_turn(turn, "stopped"))
    readies = [m for m in wire.received if m["action"] == "ready"]
    assert readies[1]["data"]["resumed"] is True
    assert readies[1]["data"]["turn"] == {"id": turn, "paused": False}  # it was still running
    again = where(wire, "received", "ready")[1]
    [stop] = where(wire, "sent", "stop")
    [stopped] = where(wire, "received", "stopped")
    assert again < stop < stopped and wire.both[stopped][1]["turn"] == turn
    # The frames kept from the page came again before `stopped`, and nothing of the turn after.
    kept = [m for m in valve.held if m["action"] == "audio"]
    late = audio_between(wire, again, stopped)
    assert kept and late[: len(kept)] == kept
    assert [m for d, m in wire.both[stopped + 1 :] if m.get("turn") == turn] == []
    # The page threw every one of them away: nothing was appended, the transcript is as it was.
    until(page, f"s.dropped === {len(late)}")
    now = state(page)
    assert now["turn"] == stopped_there["turn"]
    audio = page.evaluate(AUDIO_JS)
    assert audio["paused"] and audio["src"] is None and audio["buffered"] == []
    meta = page.text_content(f'[data-turn="{turn}"] .meta') or ""
    assert meta.endswith("stopped") and "resuming" not in meta and "cut off" not in meta

    # The session goes on: a new prompt is answered and played in full.
    server.call(llm.go[1].set)
    second = ask(page, "And its river?")
    until(page, "s.turn.state === 'done'")
    now = state(page)
    assert now["session"] == readies[0]["data"]["session"]
    assert now["dropped"] == len(late)
    frames = wire.of_turn(second, "audio")
    assert [m["seq"] for m in frames] == list(range(len(frames)))
    seconds = frames_seconds(wire, second)
    audio = page.evaluate(AUDIO_JS)
    assert audio["buffered"] == [[0, pytest.approx(seconds, abs=SAME)]]
    assert audio["played"] == [[0, pytest.approx(seconds, abs=SAME)]]
    assert now["turn"]["caption"] == "".join(sum(PARTS, []))
