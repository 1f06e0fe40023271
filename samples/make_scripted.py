"""Write the scripted LLM streams in samples/llm/ (run: python samples/make_scripted.py).

The machine these were made on has no route to any LLM service, so these streams are
*scripted*: each answer is cut into GPT-style token deltas and wrapped in exactly the
`chat.completion.chunk` JSON that OpenAI's streaming endpoint sends, with a seeded, plausible
timing (time to first token ~350 ms, then 15-45 ms per token). `record_llm.py` records real
ones against a live endpoint in the same format.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

HERE = Path(__file__).parent / "llm"
MODEL = "gpt-4o-mini-2024-07-18"
TOKEN = re.compile(r"\s*[\w'’]{1,7}|\s*[^\w\s]|\s+")

ANSWERS: dict[str, tuple[str, str]] = {
    "default": (
        "Tell me about the voicechat demo.",
        "Hello! This is voicechat, speaking offline with a local Piper voice. The answer you "
        "hear was streamed by a replayed language model, cut into sentences, and turned into "
        "speech one sentence at a time. Dr. Smith's favourite number is 3.14, and that did "
        "not break the sentence splitter. You can pause, resume or stop me at any moment. "
        "Enjoy the demo!",
    ),
    "capital": (
        "What is the capital of France?",
        "The capital of France is Paris. "
        "It has been the country's capital for most of its history.",
    ),
    "markdown": (
        "Show me some markdown.",
        "Here is **bold** text and a [link](https://example.com/docs).\n\n- First item\n"
        "- Second item\n\n```python\nprint('hi')\n```\nThat's all.",
    ),
    "chinese": (
        "用中文介绍一下你自己。",
        "你好！我是一个语音助手。我可以用中文回答你的问题，也可以说 English。",
    ),
    "long_first": (
        "Describe the sea at night.",
        "On a calm night far from the coast, when the wind has dropped and the last light has "
        "gone from the sky, the sea turns into a slow black mirror that holds every star above "
        "it. Then a wave breaks the picture. The stars come back a moment later.",
    ),
    "counting": (
        "Count to five.",
        "One. Two. Three. Four. Five.",
    ),
}


def _chunk(
    name: str, delta: dict[str, object] | None, finish: str | None = None
) -> dict[str, object]:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {
        "id": f"chatcmpl-scripted-{name}",
        "object": "chat.completion.chunk",
        "created": 1764000000,
        "model": MODEL,
        "system_fingerprint": "fp_scripted",
        "choices": [choice],
    }


def stream(
    name: str, prompt: str, answer: str, *, quirks: bool = False, break_after: int = 0
) -> list[dict[str, object]]:
    rng = random.Random(name)
    tokens = TOKEN.findall(answer)
    assert "".join(tokens) == answer, name
    header = {"prompt": prompt, "model": MODEL, "source": "scripted (see samples/README.md)"}
    events: list[dict[str, object]] = [header]
    if quirks:  # what Azure and others send: a prompt-filter chunk with no choices, a null delta
        events.append({"delay_ms": 120, "data": {**_chunk(name, None), "choices": []}})
        events.append({"delay_ms": 5, "data": _chunk(name, None)})
    events.append({"delay_ms": 350, "data": _chunk(name, {"role": "assistant", "content": ""})})
    for index, token in enumerate(tokens):
        if break_after and index == break_after:
            events.append({"delay_ms": 20, "data": {"error": "connection reset by peer"}})
            return events
        delay = rng.randint(15, 45)
        events.append({"delay_ms": delay, "data": _chunk(name, {"content": token})})
    events.append({"delay_ms": 10, "data": _chunk(name, {}, "stop")})
    usage = {
        "prompt_tokens": 42,
        "completion_tokens": len(tokens),
        "total_tokens": 42 + len(tokens),
    }
    events.append({"delay_ms": 5, "data": {**_chunk(name, None), "choices": [], "usage": usage}})
    events.append({"delay_ms": 1, "data": "[DONE]"})
    return events


def write(name: str, events: list[dict[str, object]]) -> None:
    lines = [json.dumps(e, ensure_ascii=False) for e in events]
    (HERE / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    HERE.mkdir(exist_ok=True)
    for name, (prompt, answer) in ANSWERS.items():
        write(name, stream(name, prompt, answer))
    prompt, answer = ANSWERS["capital"]
    write("quirks", stream("quirks", "Answer with quirky chunks.", answer, quirks=True))
    prompt, answer = ANSWERS["default"]
    write("broken", stream("broken", "Break in the middle.", answer, break_after=30))


if __name__ == "__main__":
    main()
