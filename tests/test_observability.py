"""GET /metrics in Prometheus format, one registry per app; logs tagged with session and turn."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Iterator, Sequence
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ClientFactory, ScriptedLLM, eventually
from voicechat.errors import LLMFailed, TTSFailed
from voicechat.llm.base import ChatMessage
from voicechat.logs import TEXT_FORMAT, ContextIds, JsonFormatter
from voicechat.server.keys import SESSIONS
from voicechat.tts.tone import ToneTTS


class FailingLLM:
    """Says one sentence, then its stream breaks."""

    name = "failing"

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
        yield "First sentence is fine. "
        raise LLMFailed("the stream broke", backend=self.name)

    async def aclose(self) -> None:
        return None


class FailingTTS(ToneTTS):
    """Never produces audio."""

    async def synthesize(
        self, text: str, *, voice: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        raise TTSFailed("no voice today", backend=self.name)
        yield b""  # pragma: no cover - makes this an async generator


async def scrape(http: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` of the app's /metrics."""
    response = await http.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_metrics_after_a_turn(voice_client: ClientFactory) -> None:
    client, http = await voice_client()
    assert (await client.turn("Count to five."))[-1]["action"] == "done"
    samples = await scrape(http)
    assert value(samples, "voicechat_sessions_active") == 1
    assert value(samples, "voicechat_turns_total", outcome="done") == 1
    assert value(samples, "voicechat_turns_total", outcome="stopped") == 0
    assert value(samples, "voicechat_time_to_first_audio_seconds_count") == 1
    assert value(samples, "voicechat_time_to_first_audio_seconds_sum") > 0
    assert value(samples, "voicechat_connections_refused_total", reason="token") == 0
    assert value(samples, "voicechat_errors_total", code="rate_limited") == 0


async def test_metrics_count_stops_errors_and_closed_sessions(voice_client: ClientFactory) -> None:
    llm = ScriptedLLM([f"Sentence {n} is here. " for n in range(6)], hold_after=2)
    client, http = await voice_client(llm=llm)
    await client.ws.send_str("{bad")
    await client.start("go")
    await client.until("audio")
    await client.send("stop")
    await client.until("stopped")
    samples = await scrape(http)
    assert value(samples, "voicechat_turns_total", outcome="stopped") == 1
    assert value(samples, "voicechat_stop_latency_seconds_count") == 1
    assert value(samples, "voicechat_errors_total", code="bad_json") == 1
    await client.ws.close()
    await eventually(lambda: not http.app[SESSIONS])
    assert value(await scrape(http), "voicechat_sessions_active") == 0


async def test_a_session_closed_mid_turn_counts_as_cancelled(voice_client: ClientFactory) -> None:
    llm = ScriptedLLM(["One sentence here. ", "And another one. "], hold_after=1)
    client, http = await voice_client(llm=llm)
    await client.start("go")
    await client.until("audio")
    await client.ws.close()
    await eventually(lambda: not http.app[SESSIONS])
    assert value(await scrape(http), "voicechat_turns_total", outcome="cancelled") == 1


async def test_backend_failures_are_counted_by_backend(voice_client: ClientFactory) -> None:
    client, http = await voice_client(llm=FailingLLM())
    events = await client.turn("go")
    assert [e["data"]["code"] for e in events if e["action"] == "error"] == ["llm_failed"]
    samples = await scrape(http)
    assert value(samples, "voicechat_backend_failures_total", kind="llm", backend="failing") == 1
    assert value(samples, "voicechat_errors_total", code="llm_failed") == 1
    assert value(samples, "voicechat_turns_total", outcome="error") == 1

    client, http = await voice_client(tts=FailingTTS())
    await client.turn("Count to five.")
    samples = await scrape(http)
    assert value(samples, "voicechat_backend_failures_total", kind="tts", backend="tone") == 5


async def test_each_app_has_its_own_registry(voice_client: ClientFactory) -> None:
    first, first_http = await voice_client()
    second, second_http = await voice_client()
    await first.turn("Count to five.")
    await first.turn("Count to five.")
    await second.turn("Count to five.")
    assert value(await scrape(first_http), "voicechat_turns_total", outcome="done") == 2
    assert value(await scrape(second_http), "voicechat_turns_total", outcome="done") == 1


@pytest.fixture
def json_log() -> Iterator[list[dict[str, Any]]]:
    """Records formatted as the server's ``--log-format json`` formats them."""
    lines: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(self.format(record)))

    handler = Collect(logging.INFO)
    handler.addFilter(ContextIds())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lines
    root.removeHandler(handler)
    root.setLevel(level)


async def test_logs_carry_the_session_and_turn_ids(
    voice_client: ClientFactory, json_log: list[dict[str, Any]]
) -> None:
    client, _ = await voice_client(tts=FailingTTS())
    ready = client.events[0]
    session_id = ready["data"]["session"]
    await client.turn("Count to five.")
    # logged by the session, in the connection's task
    started = [e for e in json_log if "turn t1 started" in e["message"]]
    assert [(e["session"], e["turn"]) for e in started] == [(session_id, "-")]
    # logged by the turn's stages, which know nothing of sessions
    retries = [e for e in json_log if "retrying" in e["message"]]
    assert retries
    assert {(e["session"], e["turn"]) for e in retries} == {(session_id, "t1")}


def test_records_outside_a_session_have_no_ids() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    assert ContextIds().filter(record)
    entry = json.loads(JsonFormatter().format(record))
    assert (entry["session"], entry["turn"], entry["message"]) == ("-", "-", "hello")


async def test_the_text_format_shows_the_ids(voice_client: ClientFactory) -> None:
    client, _ = await voice_client(tts=FailingTTS())
    session_id = client.events[0]["data"]["session"]
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(logging.WARNING)
    handler.addFilter(ContextIds())
    handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.getLogger().addHandler(handler)
    try:
        await client.turn("Count to five.")
    finally:
        logging.getLogger().removeHandler(handler)
    assert any(f"voicechat.turn [{session_id}/t1]: turn t1:" in line for line in lines), lines
