"""The hand-written types of web/ (voicechat.d.ts, react/useVoiceChat.d.ts) compile, catch
misuse, and declare what the modules really export: `tsc --noEmit` from npm's typescript and
Node's import of the modules themselves (installed by `make web-deps`)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parent.parent / "web"
TSC = WEB / "node_modules" / ".bin" / "tsc"
NODE = "/usr/bin/node"


def require_tools() -> None:
    if not TSC.exists():
        pytest.fail(f"{TSC} is missing: run `make web-deps` (npm ci in web/) first")


def tsc(*args: str) -> subprocess.CompletedProcess[str]:
    require_tools()
    return subprocess.run(
        [str(TSC), "--noEmit", "--pretty", "false", *args],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_types_compile_with_an_app_using_them() -> None:
    result = tsc("-p", "tsconfig.json")
    assert result.returncode == 0, result.stdout + result.stderr


MISUSE = """
import { VoiceChat } from "voicechat-client";
const chat = new VoiceChat({ player: "flash" });
chat.on("txet", () => undefined);
chat.on("sentence", (s) => s.seq);
chat.start(42);
chat.start("hi", { audio: "no" });
"""


def test_the_types_reject_misuse(tmp_path: Path) -> None:
    checks = WEB / "types-check"
    bad = checks / f"misuse-{tmp_path.name}.ts"
    bad.write_text(MISUSE)
    try:
        result = tsc("-p", "tsconfig.json")
    finally:
        bad.unlink()
    assert result.returncode != 0
    errors = [line for line in result.stdout.splitlines() if bad.name in line]
    assert len(errors) == 5, result.stdout  # one per wrong line


def declared_members(d_ts: str, class_name: str) -> set[str]:
    body = d_ts.split(f"export class {class_name} {{", 1)[1].split("\n}\n", 1)[0]
    names = re.findall(r"^  (?:readonly )?(\w+)[(<:?]", body, flags=re.MULTILINE)
    return set(names) - {"constructor"}


EXPORTS_JS = """
const module = await import(process.argv[1]);
const proto = module.VoiceChat.prototype;
const members = Object.getOwnPropertyNames(proto)
  .filter((n) => n !== "constructor" && !n.startsWith("_"));
console.log(JSON.stringify({ exports: Object.keys(module).sort(), members: members.sort() }));
"""


def test_the_declarations_name_what_the_module_exports() -> None:
    result = subprocess.run(
        [NODE, "--input-type=module", "-e", EXPORTS_JS, (WEB / "voicechat.js").as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = json.loads(result.stdout)
    d_ts = (WEB / "voicechat.d.ts").read_text()
    declared_exports = set(re.findall(r"^export (?:class|function) (\w+)", d_ts, re.MULTILINE))
    assert set(found["exports"]) == declared_exports
    # Every method and getter is declared; the declared fields the constructor sets are
    # checked by the browser tests that read them.
    members = declared_members(d_ts, "VoiceChat")
    assert set(found["members"]) <= members
    methods = set(re.findall(r"^  (\w+)[(<]", d_ts.split("export class VoiceChat {")[1], re.M))
    assert methods - {"constructor"} <= set(found["members"])


def test_the_hooks_declarations_name_what_it_exports() -> None:
    require_tools()  # the hook imports react, from web/node_modules
    hook = WEB / "react" / "useVoiceChat.js"
    script = "const m = await import(process.argv[1]); console.log(JSON.stringify(Object.keys(m)));"
    result = subprocess.run(
        [NODE, "--input-type=module", "-e", script, hook.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    d_ts = (WEB / "react" / "useVoiceChat.d.ts").read_text()
    declared = set(re.findall(r"^export function (\w+)", d_ts, re.MULTILINE))
    assert set(json.loads(result.stdout)) == declared == {"useVoiceChat"}
