"""Record real speech into samples/tts/ (needs network; the openai one needs a key too).

    .venv/bin/python samples/record_tts.py edge "The capital of France is Paris."
    .venv/bin/python samples/record_tts.py edge-voices
    OPENAI_API_KEY=sk-... .venv/bin/python samples/record_tts.py openai "Hello there."

``edge`` writes edge-speech.mp3: the audio bytes of every ``audio`` message of Microsoft's
read-aloud service, in order, as the edge-tts library received them. ``edge-voices`` writes
edge-voices.json, the service's voice list. ``openai`` writes openai-speech.mp3: the body of a
streamed ``/v1/audio/speech`` response (response_format mp3), byte for byte.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

OUT = Path(__file__).resolve().parent / "tts"


async def record_edge(text: str, voice: str) -> bytes:
    import edge_tts

    audio = bytearray()
    async for chunk in edge_tts.Communicate(text, voice).stream():
        if chunk["type"] == "audio":
            audio += chunk["data"]
    return bytes(audio)


async def record_edge_voices() -> bytes:
    import edge_tts

    return (json.dumps(await edge_tts.list_voices(), indent=1) + "\n").encode()


async def record_openai(text: str, voice: str, model: str, base_url: str | None) -> bytes:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url)
    body = bytearray()
    async with client.audio.speech.with_streaming_response.create(
        model=model, voice=voice, input=text, response_format="mp3"
    ) as response:
        async for chunk in response.iter_bytes():
            body += chunk
    await client.close()
    return bytes(body)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("service", choices=["edge", "edge-voices", "openai"])
    parser.add_argument("text", nargs="?", default="The capital of France is Paris.")
    parser.add_argument("--voice", default=None)
    parser.add_argument("--model", default="gpt-4o-mini-tts")
    parser.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL"))
    args = parser.parse_args()
    if args.service == "edge":
        data = asyncio.run(record_edge(args.text, args.voice or "en-US-EmmaMultilingualNeural"))
        out = OUT / "edge-speech.mp3"
    elif args.service == "edge-voices":
        data = asyncio.run(record_edge_voices())
        out = OUT / "edge-voices.json"
    else:
        data = asyncio.run(
            record_openai(args.text, args.voice or "alloy", args.model, args.base_url)
        )
        out = OUT / "openai-speech.mp3"
    OUT.mkdir(exist_ok=True)
    out.write_bytes(data)
    print(f"wrote {len(data)} bytes to {out}")


if __name__ == "__main__":
    main()
