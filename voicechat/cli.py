"""Command line: ``voicechat serve`` runs the server, ``voicechat demo`` answers a sample
prompt offline and writes the speech to an MP3 file."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import aiohttp
from aiohttp import web

from voicechat.config import Settings, add_arguments, load_settings
from voicechat.errors import ConfigError
from voicechat.logs import configure_logging
from voicechat.server import create_app

DEMO_PROMPT = "Tell me about the voicechat demo."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicechat", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    add_arguments(serve)
    demo = commands.add_parser("demo", help="answer a sample prompt offline into an MP3 file")
    demo.add_argument("--prompt", default=DEMO_PROMPT)
    demo.add_argument("--out", type=Path, default=Path("out/demo.mp3"))
    add_arguments(demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            settings = load_settings(args)
            _configure_logging(settings)
            web.run_app(
                create_app(settings),
                host=settings.host,
                port=settings.port,
                print=_listening(settings),
                shutdown_timeout=settings.shutdown_timeout,
            )
            return 0
        # The demo runs on the embedded default whatever keys the environment holds.
        settings = load_settings(args, overrides={"llm": args.llm or "replay", "port": 8765})
        _configure_logging(settings, quiet=True)
        return demo(settings, prompt=args.prompt, out=args.out)
    except ConfigError as exc:
        print(f"voicechat: {exc.message}", file=sys.stderr)
        return 2


def _configure_logging(settings: Settings, *, quiet: bool = False) -> None:
    level = logging.WARNING if quiet else getattr(logging, settings.log_level.upper(), logging.INFO)
    configure_logging(level=level, fmt=settings.log_format)


def _listening(settings: Settings) -> Callable[[str], None]:
    def say(_: str) -> None:
        print(
            f"voicechat listening on http://{settings.host}:{settings.port}/ (WebSocket /ws)",
            flush=True,
        )

    return say


def demo(settings: Settings, *, prompt: str, out: Path) -> int:
    """Answer ``prompt`` through a server started in-process and write the speech to ``out``."""
    audio, ttfa = asyncio.run(run_demo(settings, prompt=prompt))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(audio)
    print(f"\ntime to first audio: {ttfa * 1000:.0f} ms")
    print(f"wrote {len(audio)} bytes of MP3 speech to {out.resolve()}")
    print("for the browser page: `make serve`, then open http://127.0.0.1:8765/")
    return 0 if audio else 1


async def run_demo(settings: Settings, *, prompt: str) -> tuple[bytes, float]:
    """Start the server on a free loopback port and ask ``prompt`` over the real WebSocket,
    printing the answer as it streams; return the MP3 and the time to first audio."""
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        return await _ask(f"http://127.0.0.1:{port}/ws", prompt, token=settings.token)
    finally:
        await runner.cleanup()


async def _ask(url: str, prompt: str, *, token: str | None = None) -> tuple[bytes, float]:
    audio = bytearray()
    ttfa = float("nan")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as ws:
        ready = json.loads(await ws.receive_str())
        data = ready["data"]
        rate = data["audio"]["sample_rate"]
        print(f"connected: llm={data['llm']} tts={data['tts']} ({rate} Hz mp3)")
        print(f"> {prompt}")
        started = time.perf_counter()
        await ws.send_json({"action": "start", "data": {"prompt": prompt}})
        async for message in ws:
            event = json.loads(message.data)
            action = event["action"]
            if action == "sentence":
                print(f"  [{event['index']}] {event['data']}", flush=True)
            elif action == "audio":
                if not audio:
                    ttfa = time.perf_counter() - started
                audio += base64.b64decode(event["data"])
            elif action == "error":
                print(f"  error: {event['data']['message']}", file=sys.stderr)
            elif action == "done":
                summary = event["data"]
                print(f"done: {summary['sentences']} sentences, {summary['audio_ms']} ms of audio")
                break
    return bytes(audio), ttfa
