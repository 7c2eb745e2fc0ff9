"""The package's import graph has no circle (issue 26): library modules reach the CLI's defaults
through fghv.cli.options, never through the entry point."""

import ast
from pathlib import Path

import pytest

from fghv.cli import options

PKG = Path(__file__).resolve().parents[1] / "fghv"


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("fghv."))
    return out


def test_no_import_circle():
    mods = {p.stem: p for p in PKG.glob("*.py")}
    graph = {m: {d for d in _imports(p) if d in mods and d != m} for m, p in mods.items()}
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for d in graph[m]:
            if state.get(d) == 1:
                raise AssertionError("import circle: " + " -> ".join([*stack[stack.index(d):], d]))
            if d not in state:
                visit(d, [*stack, d])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not any("__main__" in deps for m, deps in graph.items() if m != "__main__")


def test_options_are_the_cli_defaults():
    a = options("train", data="D", train_domains=["camA"], out="O", steps=7)
    assert (a.cmd, a.data, a.steps, a.batch, a.family, a.resume) == ("train", "D", 7, 32, "lite", False)
    with pytest.raises(ValueError, match="unknown option"):
        options("train", data="D", train_domains=["camA"], out="O", stepz=7)
    with pytest.raises(ValueError, match="missing required"):
        options("train", data="D", out="O")
