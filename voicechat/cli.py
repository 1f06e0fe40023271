"""Command line: ``serve`` runs the server; ``say`` speaks the answer to one prompt, ``chat``
holds a spoken conversation, ``demo`` answers a sample prompt offline; ``pull`` downloads a
local model and ``models`` lists them. ``say``, ``chat`` and
``demo`` talk to a server at ``--url``, or start one in this process when none is given."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import miniaudio

from voicechat.client.audio_file import save_audio
from voicechat.client.chat import Chat, connect
from voicechat.client.connection import ConnectionFailed
from voicechat.client.console import KEYS_HELP, LiveView, PlainView, Terminal, TurnView
from voicechat.client.conversation import Conversation
from voicechat.client.events import Ready
from voicechat.client.local_server import local_server
from voicechat.client.playback import Output, Recorder, Speaker, playback_backends
from voicechat.config import Settings, add_arguments, load_settings
from voicechat.errors import ConfigError, VoicechatError
from voicechat.logs import configure_logging
from voicechat.model_commands import add_commands, run_models, run_pull
from voicechat.server.app import create_app
from voicechat.server.collector import tune_collector
from voicechat.server.keys import SESSIONS
from voicechat.server.listener import serve

DEMO_PROMPT = "Tell me about the voicechat demo."
BROWSER_HINT = "for the browser page: `make serve`, then open http://127.0.0.1:8765/"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicechat", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_arguments(commands.add_parser("serve", help="run the server"))
    say = commands.add_parser("say", help="speak the answer to one prompt")
    say.add_argument("prompt")
    _client_arguments(say, out="write the speech to this file (.mp3, or .wav/.flac/.ogg)")
    chat = commands.add_parser("chat", help="a spoken conversation, one prompt per line")
    _client_arguments(chat)
    chat.add_argument("--out-dir", type=Path, default=Path("out"), help="where chat-N.mp3 go")
    demo = commands.add_parser("demo", help="answer a sample prompt offline, out loud or to a file")
    demo.add_argument("--prompt", default=DEMO_PROMPT)
    _client_arguments(demo, out="write the speech to this file instead of playing it")
    add_commands(commands)
    return parser


def _client_arguments(parser: argparse.ArgumentParser, *, out: str | None = None) -> None:
    parser.add_argument("--url", help="server to talk to (ws://host:port/ws); default: in-process")
    if out is not None:
        parser.add_argument("--out", type=Path, help=out)
    parser.add_argument(
        "--text", action="store_true", help="text only: print the answer, synthesize nothing"
    )
    parser.add_argument(
        "--audio-backend",
        default=os.environ.get("VOICECHAT_AUDIO_BACKEND") or None,
        help="play through this miniaudio backend (pulseaudio, alsa, coreaudio, wasapi, ...; "
        "null: a silent device in real time) [VOICECHAT_AUDIO_BACKEND]",
    )
    add_arguments(parser)  # settings of the in-process server


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            settings = load_settings(args)
            _configure_logging(settings)
            app = create_app(settings)
            tune_collector(app, app[SESSIONS])
            asyncio.run(serve(app, settings, announce=_listening(settings)))
            return 0
        if args.command == "models":
            return run_models(args)
        command = {"say": say, "chat": chat, "demo": demo, "pull": run_pull}[args.command]
        return asyncio.run(command(args))
    except (ConfigError, ConnectionFailed, VoicechatError) as exc:
        print(f"voicechat: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except KeyboardInterrupt:
        if sys.stdout.isatty():
            print()  # leave the status line
        return 130


def _configure_logging(settings: Settings, *, quiet: bool = False) -> None:
    level = logging.WARNING if quiet else getattr(logging, settings.log_level.upper(), logging.INFO)
    secrets = [s for s in (settings.token, settings.openai_api_key) if s]
    configure_logging(level=level, fmt=settings.log_format, secrets=secrets)


def _listening(settings: Settings) -> Callable[[], None]:
    def say() -> None:
        print(
            f"voicechat listening on http://{settings.host}:{settings.port}/ (WebSocket /ws)",
            flush=True,
        )

    return say


@asynccontextmanager
async def _connect(
    args: argparse.Namespace, *, overrides: dict[str, Any] | None = None
) -> AsyncIterator[Chat]:
    if args.url:
        token = args.token or os.environ.get("VOICECHAT_TOKEN") or None
        async with connect(args.url, token=token) as chat:
            yield chat
        return
    recording = (
        args.text
        or getattr(args, "out", None) is not None
        or playback_backends(args.audio_backend) is None
    )
    if recording and args.lead is None:
        # Written to a file, the answer need not be paced to real time.
        overrides = {**(overrides or {}), "lead": 0.0}
    settings = load_settings(args, overrides=overrides)
    _configure_logging(settings, quiet=True)
    async with (
        local_server(settings) as url,
        connect(url, token=settings.token) as chat,
    ):
        yield chat


@asynccontextmanager
async def _output(args: argparse.Namespace, info: Ready, view: TurnView) -> AsyncIterator[Output]:
    """A speaker when this machine can play and no file was asked for, else a recorder."""
    output: Output
    if args.text:
        output = Recorder()  # nothing will come to it
    elif getattr(args, "out", None) is not None:
        output = Recorder()
    elif (backends := playback_backends(args.audio_backend)) is None:
        view.note("no audio output device found: the speech goes to a file")
        output = Recorder()
    else:
        try:
            output = Speaker(sample_rate=info.sample_rate, backends=backends or None)
            view.note(f"playing through {output.backend}")
        except miniaudio.MiniaudioError as exc:
            view.note(f"cannot open the audio device ({exc}): the speech goes to a file")
            output = Recorder()
    try:
        yield output
    finally:
        output.close()


def _view() -> TurnView:
    live = sys.stdout.isatty() and os.environ.get("TERM") != "dumb"
    return LiveView() if live else PlainView()


def _connected(view: TurnView, info: Ready) -> None:
    view.note(f"connected: llm={info.llm} tts={info.tts} ({info.sample_rate} Hz mp3)")


def _save(view: TurnView, output: Output, path: Path, *, text: bool = False) -> None:
    if text or not isinstance(output, Recorder):
        return
    mp3 = output.take()
    if not mp3:
        view.note("no audio was received; nothing written")
        return
    saved = save_audio(mp3, path)
    view.note(
        f"wrote {saved.bytes} bytes of speech ({saved.duration_ms / 1000:.1f} s) "
        f"to {saved.path.resolve()}"
    )


async def say(
    args: argparse.Namespace,
    *,
    overrides: dict[str, Any] | None = None,
    default_out: Path = Path("out/answer.mp3"),
) -> int:
    """Speak the answer to ``args.prompt``; 0 when it was spoken or stopped, 1 when refused."""
    view, terminal = _view(), Terminal()
    async with _connect(args, overrides=overrides) as voice:
        _connected(view, voice.info)
        async with _output(args, voice.info, view) as output:
            conversation = Conversation(
                voice,
                output=output,
                view=view,
                terminal=terminal,
                voice_name=args.voice,
                audio=not args.text,
            )
            outcome = await conversation.ask(args.prompt)
            _save(view, output, args.out or default_out, text=args.text)
    return 1 if outcome.ended == "failed" else 0


async def chat(args: argparse.Namespace) -> int:
    """One session, many turns: a prompt per line of input until its end (or q)."""
    view, terminal = _view(), Terminal()
    async with _connect(args) as voice:
        _connected(view, voice.info)
        async with _output(args, voice.info, view) as output:
            conversation = Conversation(
                voice,
                output=output,
                view=view,
                terminal=terminal,
                voice_name=args.voice,
                audio=not args.text,
            )
            view.note("one prompt per line; end of input (Ctrl-D) quits")
            if terminal.is_tty:
                view.note(f"while it speaks: {KEYS_HELP}")
            turns = 0
            while True:
                if terminal.is_tty:
                    print("you> ", end="", flush=True)
                line = await terminal.read_line()
                if line is None:
                    break
                if not line.strip():
                    continue
                turns += 1
                outcome = await conversation.ask(line.strip(), echo=not terminal.is_tty)
                _save(view, output, args.out_dir / f"chat-{turns}.mp3", text=args.text)
                if outcome.quit:
                    break
    return 0


async def demo(args: argparse.Namespace) -> int:
    """``say`` on the embedded default (replayed LLM, Piper), whatever keys are in the env,
    unless ``--llm``/``--tts`` say otherwise."""
    code = await say(
        args,
        overrides={"llm": args.llm or "replay", "tts": args.tts or "piper"},
        default_out=Path("out/demo.mp3"),
    )
    print(BROWSER_HINT)
    return code
