"""voicechat's import graph, read from the source (every import, ``TYPE_CHECKING`` and
function-level ones included), for the architecture tests and for people:

    python -m tests.import_graph            # depth, circles and wing-rule breaks of voicechat/
    python -m tests.import_graph OTHER_ROOT # the same for another checkout (its voicechat/)
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The wings' rules (docs/architecture.md): a module under the first prefix may not import one
# under any of the others, except the listed (importer, imported) pairs.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "voicechat.pipeline": ("voicechat.server", "voicechat.client", "voicechat.cli"),
    "voicechat.server": ("voicechat.client", "voicechat.cli"),
    "voicechat.client": ("voicechat.server", "voicechat.cli"),
    "voicechat.llm": (
        "voicechat.server",
        "voicechat.client",
        "voicechat.cli",
        "voicechat.pipeline",
    ),
    "voicechat.tts": (
        "voicechat.server",
        "voicechat.client",
        "voicechat.cli",
        "voicechat.pipeline",
    ),
}
ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {
        # The one door from the client into the server: an in-process server for the CLI.
        ("voicechat.client.local_server", "voicechat.server.app"),
        # Backends use the pipeline's leaf helpers (no voicechat imports of their own but
        # errors): what text has speech in it, MP3 framing, and MP3 decoding.
        *(
            (f"voicechat.{wing}", f"voicechat.pipeline.{leaf}")
            for wing in ("tts", "llm")
            for leaf in ("audio", "speakable", "mp3_decoder")
        ),
    }
)
TOP_LEVEL = {"config", "errors", "logs", "protocol", "registry", "openai_errors"}


@dataclass(frozen=True, slots=True)
class ImportGraph:
    edges: dict[str, frozenset[str]]  # module → the voicechat modules it imports

    @classmethod
    def read(cls, root: Path = ROOT) -> ImportGraph:
        package = root / "voicechat"
        modules = {_module_name(root, path): path for path in package.rglob("*.py")}
        edges = {
            name: frozenset(_imports(name, path, modules.keys())) for name, path in modules.items()
        }
        return cls(edges)

    def circles(self) -> list[list[str]]:
        """Every strongly connected component of more than one module (or a self-import)."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        found: list[list[str]] = []

        def visit(node: str) -> None:
            index[node] = low[node] = len(index)
            stack.append(node)
            on_stack.add(node)
            for target in self.edges.get(node, ()):
                if target not in index:
                    visit(target)
                    low[node] = min(low[node], low[target])
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in self.edges.get(node, ()):
                    found.append(sorted(component))

        sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
        for node in sorted(self.edges):
            if node not in index:
                visit(node)
        return sorted(found)

    def depth(self) -> int:
        """Floors of the graph: the modules in its longest import chain, each circle taken as
        one floor (so the figure exists with circles too)."""
        return len(self.longest_chain())

    def longest_chain(self) -> list[str]:
        """The longest import chain, top first; a circle on it is shown as its first module."""
        component_of = {m: tuple(c) for c in self.circles() for m in c}

        @cache
        def chain(group: tuple[str, ...]) -> tuple[str, ...]:
            targets = {t for m in group for t in self.edges.get(m, ())} - set(group)
            below = sorted({component_of.get(t, (t,)) for t in targets})
            return (group[0], *max((chain(g) for g in below), key=len, default=()))

        groups = sorted({component_of.get(m, (m,)) for m in self.edges})
        return list(max((chain(g) for g in groups), key=len, default=()))

    def wing_breaks(self) -> list[tuple[str, str]]:
        """Imports that break the wings' rules, as (importer, imported)."""
        breaks = []
        for importer, targets in sorted(self.edges.items()):
            for imported in sorted(targets):
                if _forbidden(importer, imported):
                    breaks.append((importer, imported))
        return breaks


def _forbidden(importer: str, imported: str) -> bool:
    if any(_within(importer, a) and _within(imported, b) for a, b in ALLOWED):
        return False
    for wing, banned in FORBIDDEN.items():
        if _within(importer, wing) and any(_within(imported, b) for b in banned):
            return True
    parts = importer.split(".")
    top_level = len(parts) == 2 and parts[1] in TOP_LEVEL
    return top_level and any(
        _within(imported, f"voicechat.{w}") for w in ("pipeline", "server", "client", "cli")
    )


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(name: str, path: Path, known: object) -> Iterator[str]:
    modules = set(known)  # type: ignore[call-overload]
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _resolve(alias.name, modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield from _resolve(submodule if submodule in modules else base, modules)


def _resolve(dotted: str, modules: set[str]) -> Iterator[str]:
    while dotted and dotted not in modules:
        dotted = dotted.rpartition(".")[0]
    if dotted.startswith("voicechat"):
        yield dotted


def main(argv: list[str]) -> int:
    root = Path(argv[0]).resolve() if argv else ROOT
    graph = ImportGraph.read(root)
    circles = graph.circles()
    print(f"{root}: {len(graph.edges)} modules, depth {graph.depth()}, {len(circles)} circles")
    print(
        "  longest chain:", " → ".join(m.removeprefix("voicechat.") for m in graph.longest_chain())
    )
    for circle in circles:
        print("  circle:", " ↔ ".join(circle))
    for importer, imported in graph.wing_breaks():
        print(f"  wing rule broken: {importer} imports {imported}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
