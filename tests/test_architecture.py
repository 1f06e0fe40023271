"""The house's layout holds: no import circle in voicechat/, and the wings keep their rules
(docs/architecture.md). ``python -m tests.import_graph`` prints the graph's depth and circles."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.import_graph import ImportGraph


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    return ImportGraph.read()


def test_voicechat_has_no_import_circle(graph: ImportGraph) -> None:
    assert graph.circles() == []


def test_every_import_keeps_the_wings_rules(graph: ImportGraph) -> None:
    assert graph.wing_breaks() == []


def test_the_wings_exist_and_each_says_what_it_may_import(graph: ImportGraph) -> None:
    for wing in ("pipeline", "server", "client", "llm", "tts"):
        assert f"voicechat.{wing}" in graph.edges
    for wing in ("pipeline", "server", "client"):
        doc = (Path(__file__).parent.parent / "voicechat" / wing / "__init__.py").read_text()
        assert "May import" in doc


def test_a_circle_is_found_type_only_imports_included(tmp_path: Path) -> None:
    package = tmp_path / "voicechat"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from voicechat.b import thing\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from voicechat.a import x\n"
    )
    (package / "c.py").write_text("def f():\n    from voicechat import a\n")
    graph = ImportGraph.read(tmp_path)
    assert graph.circles() == [["voicechat.a", "voicechat.b"]]
    assert graph.depth() == 2  # c → (a ↔ b)


def test_a_wing_break_is_found(tmp_path: Path) -> None:
    package = tmp_path / "voicechat"
    for wing in ("pipeline", "server", "client"):
        (package / wing).mkdir(parents=True)
        (package / wing / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "server" / "app.py").write_text("")
    (package / "pipeline" / "turn.py").write_text("from voicechat.server import app\n")
    (package / "client" / "local_server.py").write_text("from voicechat.server.app import x\n")
    (package / "client" / "other.py").write_text("import voicechat.server.app\n")
    assert ImportGraph.read(tmp_path).wing_breaks() == [
        ("voicechat.client.other", "voicechat.server.app"),
        ("voicechat.pipeline.turn", "voicechat.server.app"),
    ]
