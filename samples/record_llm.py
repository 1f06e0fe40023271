"""Record a real streamed chat completion into samples/llm/NAME.jsonl (needs a key and network).

    OPENAI_API_KEY=sk-... python samples/record_llm.py capital "What is the capital of France?"
    python samples/record_llm.py --base-url http://127.0.0.1:11434/v1 --model llama3.2 hi "Say hi."

It posts a streaming chat-completions request and writes every server-sent event exactly as it
arrived, with the milliseconds since the previous one, after a header line with the prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

import aiohttp

from voicechat.config import SPEECH_SYSTEM_PROMPT


async def record(base_url: str, key: str, model: str, prompt: str) -> list[dict[str, object]]:
    body = {
        "model": model,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": SPEECH_SYSTEM_PROMPT},
            {"role": "user", "content": prompt},
        ],
    }
    events: list[dict[str, object]] = [
        {"prompt": prompt, "model": model, "source": f"recorded from {base_url}"}
    ]
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as http:
        last = time.perf_counter()
        async with http.post(
            f"{base_url}/chat/completions", json=body, headers=headers
        ) as response:
            response.raise_for_status()
            async for raw in response.content:
                line = raw.decode().strip()
                if not line.startswith("data:"):
                    continue
                now = time.perf_counter()
                payload = line.removeprefix("data:").strip()
                data = payload if payload == "[DONE]" else json.loads(payload)
                events.append({"delay_ms": round((now - last) * 1000, 1), "data": data})
                last = now
    return events


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name")
    parser.add_argument("prompt")
    parser.add_argument(
        "--base-url", default=os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
    )
    parser.add_argument("--model", default="gpt-4o-mini")
    args = parser.parse_args()
    key = os.environ.get("OPENAI_API_KEY", "not-needed")
    events = asyncio.run(record(args.base_url, key, args.model, args.prompt))
    out = Path(__file__).parent / "llm" / f"{args.name}.jsonl"
    out.write_text(
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), encoding="utf-8"
    )
    print(f"wrote {len(events) - 1} events to {out}")


if __name__ == "__main__":
    main()
