"""``GET /v1/realtime``: the text-in, audio-out subset of OpenAI's Realtime API over a WebSocket.

One :class:`RealtimeSession` a socket; its conversation is its memory, as on ``/ws``. A
``response.create`` runs one :class:`~voicechat.pipeline.turn.Turn` over the conversation, for
24 kHz PCM16 in ``response.output_audio.delta``: a backend that makes PCM (Piper, tone, a chain)
hands it over as it is; MP3 is decoded as it comes
(:class:`~voicechat.pipeline.encoders.TurnPcm`). ``response.cancel`` stops the turn (its
LLM stream and every synthesis), and ``response.done`` with ``status: cancelled`` is written
only after the turn's task has ended, so no audio of it follows.
``conversation.item.truncate`` cuts the assistant item to the sentences begun before
``audio_end_ms``, as ``played`` does on ``/ws``.

Client events are accepted under their current and their beta names; the server answers with
the current names, or the beta ones when the client said ``OpenAI-Beta: realtime=v1`` (the
SDK's beta entry point does). Events of the audio-input half, and any other, get ``error``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import WSMsgType, web

from voicechat.llm.base import ChatMessage
from voicechat.pipeline.cancellation import release_cancellation
from voicechat.pipeline.encoders import PCM_RATE, TurnPcm
from voicechat.pipeline.turn import Turn, TurnOptions
from voicechat.server.client_frames import ClientWebSocket
from voicechat.server.keys import LLM, REALTIME, SETTINGS, TTS
from voicechat.server.metrics import METRICS
from voicechat.server.openai_api import OpenAIError, check_access, resolve_voice, take_seat
from voicechat.server.session import SessionConfig, session_config

log = logging.getLogger("voicechat.realtime")

STOP_TIMEOUT: Final = 2.0
# The server's event names, current → beta (only those that differ).
BETA_NAMES: Final = {
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "conversation.item.added": "conversation.item.created",
}


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


@dataclass(slots=True)
class Item:
    """A message of the conversation; an assistant's keeps when each sentence began."""

    id: str
    role: str
    text: str
    starts: list[tuple[float, str]] = field(default_factory=list)  # (audio s, sentence)
    audio_s: float = 0.0


@dataclass(slots=True)
class Response:
    id: str
    item: Item
    turn: Turn | None = None
    task: asyncio.Task[None] | None = None
    cancelled: bool = False


class RealtimeSession:
    def __init__(self, ws: web.WebSocketResponse, request: web.Request, *, beta: bool) -> None:
        app = request.app
        self._ws = ws
        self._settings = app[SETTINGS]
        self._config: SessionConfig = session_config(self._settings)
        self._llm = app[LLM]
        self._tts = app[TTS]
        self._metrics = app[METRICS].session(llm=self._llm.name, tts=self._tts.name)
        self._beta = beta
        self._write_lock = asyncio.Lock()
        self._items: list[Item] = []
        self._response: Response | None = None
        self._events = itertools.count(1)
        self.id = _id("sess")
        self.voice: str | None = self._config.default_voice
        self.voice_name = "alloy"
        self.instructions = self._config.system_prompt

    # -- writing -----------------------------------------------------------------------------

    async def send(self, type: str, **fields: Any) -> None:
        if self._beta:
            type = BETA_NAMES.get(type, type)
        event = {"type": type, "event_id": f"event_{next(self._events)}", **fields}
        async with self._write_lock:
            if not self._ws.closed:
                with contextlib.suppress(ConnectionError):
                    await self._ws.send_str(json.dumps(event, separators=(",", ":")))

    async def send_error(
        self, message: str, *, code: str, event_id: str | None, param: str | None = None
    ) -> None:
        error = {
            "type": "invalid_request_error",
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id,
        }
        await self.send("error", error=error)

    def session_json(self) -> dict[str, Any]:
        audio_format = {"type": "audio/pcm", "rate": PCM_RATE}
        session: dict[str, Any] = {
            "id": self.id,
            "object": "realtime.session",
            "type": "realtime",
            "model": "voicechat",
            "instructions": self.instructions,
            "output_modalities": ["audio"],
            "audio": {"output": {"voice": self.voice_name, "format": audio_format}},
        }
        if self._beta:
            session.update(
                modalities=["audio", "text"], voice=self.voice_name, output_audio_format="pcm16"
            )
        return session

    # -- reading -----------------------------------------------------------------------------

    async def receive(self, raw: str) -> None:
        try:
            event = json.loads(raw)
        except ValueError:
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            await self.send_error("not a JSON event", code="invalid_json", event_id=None)
            return
        event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        kind = event["type"]
        try:
            if kind == "session.update":
                await self._update(event.get("session") or {})
            elif kind == "conversation.item.create":
                await self._create_item(event.get("item") or {})
            elif kind == "response.create":
                await self._respond()
            elif kind == "response.cancel":
                await self._cancel(event_id)
            elif kind == "conversation.item.truncate":
                await self._truncate(event)
            elif kind.startswith("input_audio_buffer."):
                raise OpenAIError(
                    "audio input is not supported; send input_text", code="unsupported"
                )
            else:
                raise OpenAIError(f"unsupported event type {kind!r}", code="unknown_event")
        except OpenAIError as exc:
            await self.send_error(
                exc.message, code=exc.code or "invalid", event_id=event_id, param=exc.param
            )

    async def _update(self, session: dict[str, Any]) -> None:
        output = ((session.get("audio") or {}).get("output")) or {}
        voice = output.get("voice", session.get("voice"))
        fmt = output.get("format") or {}
        fmt_type = fmt.get("type") if isinstance(fmt, dict) else None
        beta_fmt = session.get("output_audio_format")
        if (fmt_type not in (None, "audio/pcm") or fmt.get("rate", PCM_RATE) != PCM_RATE) or (
            beta_fmt not in (None, "pcm16")
        ):
            raise OpenAIError(
                "only 24 kHz PCM16 output is supported (audio/pcm, pcm16)",
                param="session.audio.output.format",
                code="invalid_value",
            )
        if voice is not None:
            if not isinstance(voice, str):
                raise OpenAIError("voice must be a name", param="voice", code="invalid_value")
            self.voice = resolve_voice(voice, self._tts, self._settings)
            self.voice_name = voice
        if isinstance(session.get("instructions"), str):
            self.instructions = session["instructions"]
        await self.send("session.updated", session=self.session_json())

    async def _create_item(self, item: dict[str, Any]) -> None:
        content = item.get("content") or []
        texts = [
            part.get("text")
            for part in content
            if isinstance(part, dict) and part.get("type") in ("input_text", "text", "output_text")
        ]
        role = item.get("role")
        if item.get("type", "message") != "message" or role not in ("user", "assistant", "system"):
            raise OpenAIError("only message items are supported", param="item", code="unsupported")
        if not texts or len(texts) != len(content) or not all(isinstance(t, str) for t in texts):
            raise OpenAIError("only text content is supported", param="item", code="unsupported")
        new = Item(item.get("id") or _id("item"), role, " ".join(str(t) for t in texts))
        previous = self._items[-1].id if self._items else None
        self._items.append(new)
        await self.send(
            "conversation.item.added", previous_item_id=previous, item=self._item_json(new)
        )
        if not self._beta:
            await self.send(
                "conversation.item.done", previous_item_id=previous, item=self._item_json(new)
            )

    def _item_json(self, item: Item, *, status: str = "completed") -> dict[str, Any]:
        if item.role == "assistant":
            content = [{"type": "output_audio", "transcript": item.text}]
        else:
            content = [{"type": "input_text", "text": item.text}]
        return {
            "id": item.id,
            "object": "realtime.item",
            "type": "message",
            "role": item.role,
            "status": status,
            "content": content,
        }

    def _messages(self) -> list[ChatMessage]:
        messages: list[ChatMessage] = [{"role": "system", "content": self.instructions}]
        for item in self._items[-2 * max(self._config.history_turns, 1) - 1 :]:
            if item.text.strip() and item.role in ("user", "assistant", "system"):
                messages.append({"role": item.role, "content": item.text})  # type: ignore[typeddict-item]
        return messages

    # -- responses ---------------------------------------------------------------------------

    async def _respond(self) -> None:
        if self._response is not None:
            raise OpenAIError(
                "Conversation already has an active response in progress.",
                code="conversation_already_has_active_response",
            )
        item = Item(_id("item"), "assistant", "")
        response = Response(_id("resp"), item)
        self._response = response
        await self.send("response.created", response=self._response_json(response, "in_progress"))
        await self.send(
            "response.output_item.added",
            response_id=response.id,
            output_index=0,
            item=self._item_json(item, status="in_progress"),
        )
        previous = self._items[-1].id if self._items else None
        self._items.append(item)
        await self.send(
            "conversation.item.added",
            previous_item_id=previous,
            item=self._item_json(item, status="in_progress"),
        )
        response.task = asyncio.create_task(self._run(response), name=f"realtime {response.id}")
        response.task.add_done_callback(release_cancellation)

    def _response_json(self, response: Response, status: str, **extra: Any) -> dict[str, Any]:
        output = [] if status == "in_progress" else [self._item_json(response.item)]
        return {
            "id": response.id,
            "object": "realtime.response",
            "status": status,
            "output": output,
            **extra,
        }

    async def _run(self, response: Response) -> None:
        item, ids = (
            response.item,
            {
                "response_id": response.id,
                "item_id": response.item.id,
                "output_index": 0,
                "content_index": 0,
            },
        )
        failure: list[dict[str, Any]] = []

        async def audio(pcm: bytes) -> None:
            if pcm and not response.cancelled:
                await self.send(
                    "response.output_audio.delta", **ids, delta=base64.b64encode(pcm).decode()
                )

        async def send(message: dict[str, Any], hold: bool) -> bool:
            if response.cancelled:
                return False
            self._metrics.sent(message)  # in /ws's terms: first audio, errors, the outcome
            action = message["action"]
            if action == "text":
                await self.send(
                    "response.output_audio_transcript.delta", **ids, delta=message["data"]
                )
            elif action == "sentence":
                item.starts.append((item.audio_s, message["data"]))
            elif action == "audio":
                data = base64.b64decode(message["data"])
                item.audio_s += turn.seconds_of(data)
                await audio(await to_pcm.add(message["sentence"], data))
            elif action == "done":
                await audio(await to_pcm.flush())
            elif action == "error":
                failure.append(message["data"])
            return not response.cancelled

        turn = Turn(
            response.id,
            self._messages(),
            llm=self._llm,
            tts=self._tts,
            send=send,
            options=TurnOptions(
                voice=self.voice,
                lookahead=self._config.lookahead,
                first_clause_chars=self._config.first_clause_chars,
                max_chunk_chars=self._config.max_chunk_chars,
                lead=self._config.lead,
                frame_ms=self._config.frame_ms,
                tts_timeout=self._config.tts_timeout,
                end_turn_on_tts_failure=self._config.end_turn_on_tts_failure,
                pcm_rate=PCM_RATE,
            ),
        )
        response.turn = turn
        to_pcm = TurnPcm(turn.pcm_rate)  # the backend's own PCM, or its MP3 decoded
        self._metrics.turn_started(turn.id)
        await turn.run()
        if response.cancelled:
            return
        item.text = " ".join(turn.spoken)
        await self.send("response.output_audio.done", **ids)
        await self.send("response.output_audio_transcript.done", **ids, transcript=item.text)
        await self.send(
            "response.output_item.done",
            response_id=response.id,
            output_index=0,
            item=self._item_json(item),
        )
        self._response = None
        status = "failed" if failure and not turn.spoken else "completed"
        details = {"type": "failed", "error": failure[0]} if status == "failed" else None
        await self.send(
            "response.done", response=self._response_json(response, status, status_details=details)
        )

    async def _cancel(self, event_id: str | None) -> None:
        response = self._response
        if response is None:
            raise OpenAIError(
                "there is no active response to cancel", code="response_cancel_not_active"
            )
        self._metrics.stop_requested()
        await self._stop(response)
        self._metrics.sent({"action": "stopped", "turn": response.id})
        await self.send(
            "response.output_item.done",
            response_id=response.id,
            output_index=0,
            item=self._item_json(response.item, status="incomplete"),
        )
        details = {"type": "cancelled", "reason": "client_cancelled"}
        await self.send(
            "response.done",
            response=self._response_json(response, "cancelled", status_details=details),
        )

    async def _stop(self, response: Response) -> None:
        """Stop the turn and wait for its task: after this, nothing of it is written."""
        response.cancelled = True
        self._response = None
        turn, task = response.turn, response.task
        if turn is not None:
            turn.stop()
        if task is not None and not task.done():
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=STOP_TIMEOUT)
            if not done:
                log.error("realtime %s: a response did not stop in %.1f s", self.id, STOP_TIMEOUT)
        if turn is not None:
            response.item.text = turn.heard()

    async def _truncate(self, event: dict[str, Any]) -> None:
        item = next((i for i in self._items if i.id == event.get("item_id")), None)
        end_ms = event.get("audio_end_ms")
        if item is None or item.role != "assistant":
            raise OpenAIError(
                "no assistant item with that id", param="item_id", code="invalid_value"
            )
        if not isinstance(end_ms, int) or not 0 <= end_ms <= round(item.audio_s * 1000):
            raise OpenAIError(
                "audio_end_ms is beyond the item's audio",
                param="audio_end_ms",
                code="invalid_value",
            )
        if self._response is not None and self._response.item is item:
            await self._stop(self._response)  # a truncate of the playing answer ends it
        item.text = " ".join(text for start, text in item.starts if start * 1000 < end_ms)
        await self.send(
            "conversation.item.truncated",
            item_id=item.id,
            content_index=event.get("content_index", 0),
            audio_end_ms=end_ms,
        )

    async def close(self) -> None:
        if self._response is not None:
            await self._stop(self._response)
        self._metrics.closed()


async def realtime_handler(request: web.Request) -> web.StreamResponse:
    try:
        check_access(request, origin_check=True)
        give_back = take_seat(request)
    except OpenAIError as exc:
        return exc.response()
    try:
        return await _serve_realtime(request)
    finally:
        give_back()


async def _serve_realtime(request: web.Request) -> web.WebSocketResponse:
    settings = request.app[SETTINGS]
    ws = ClientWebSocket(
        protocols=("realtime",),
        heartbeat=settings.heartbeat,
        max_msg_size=settings.max_message_bytes,
        compress=False,
    )
    await ws.prepare(request)
    request.app[REALTIME].add(ws)  # shutdown closes it with 1001
    beta = request.headers.get("OpenAI-Beta", "").startswith("realtime=v1") or (
        "openai-beta.realtime-v1" in request.headers.get("Sec-WebSocket-Protocol", "")
    )
    session = RealtimeSession(ws, request, beta=beta)
    try:
        await session.send("session.created", session=session.session_json())
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                await session.receive(message.data)
            elif message.type is WSMsgType.BINARY:
                await session.send_error(
                    "send JSON text events", code="invalid_json", event_id=None
                )
    finally:
        request.app[REALTIME].discard(ws)
        await asyncio.shield(session.close())
    return ws
