"""The tree is the pipeline: imports point down the layers only, and packages meet through public APIs.

Every module under ``src/valuemulch`` must be placed in a layer (an unplaced one fails the test
rather than being exempt), and both ``import valuemulch.x`` and ``from valuemulch.x import y`` count.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "src" / "valuemulch"

#: Lowest first. A module may import from its own layer or any layer below it. The most specific
#: prefix wins, so ``train.pipeline`` (train -> certify -> register) sits above ``serve``.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "filemodes"),
    ("settings",),
    ("types",),
    ("metrics",),
    ("data",),
    ("backbones",),
    ("policies",),
    ("bounds",),
    ("train",),
    ("certify",),
    ("serve",),
    ("train.pipeline",),
    ("cli",),
]


def _place(module: str) -> int | None:
    """The layer of ``valuemulch.a.b...``, by the longest matching prefix; None when unplaced."""
    parts = module.split(".")[1:]
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for layer, names in enumerate(LAYERS):
        for name in names:
            prefix = name.split(".")
            if parts[: len(prefix)] == prefix and (best is None or len(prefix) > best[0]):
                best = (len(prefix), layer)
    return None if best is None else best[1]


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.parts[-1] == "__init__" else rel.parts
        yield ".".join(parts), path


def _imports(path: Path) -> Iterator[str]:
    """Every ``valuemulch.*`` module a file imports, however it is written."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("valuemulch."))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("valuemulch."):
            yield node.module
            # ``from valuemulch.serve import routes`` imports a module too: place it by its full name
            yield from (f"{node.module}.{alias.name}" for alias in node.names if (PACKAGE.parent / f"{node.module}.{alias.name}".replace(".", "/")).exists())


def test_every_module_is_placed() -> None:
    unplaced = [m for m, _ in _modules() if m != "valuemulch" and _place(m) is None]
    assert not unplaced, f"add these to LAYERS: {unplaced}"


def test_imports_point_down_only() -> None:
    violations = []
    for module, path in _modules():
        here = _place(module)
        if here is None:
            continue
        for target in _imports(path):
            there = _place(target)
            if there is None:
                violations.append(f"{module} imports unplaced {target}")
            elif there > here:
                violations.append(f"{module} (layer {LAYERS[here]}) imports {target} (layer {LAYERS[there]})")
    assert not violations, violations


def _top(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_packages_use_each_other_only_through_public_apis() -> None:
    """``valuemulch.a`` may import ``valuemulch.b._x`` only when a == b."""
    violations = []
    for module, path in _modules():
        for target in _imports(path):
            private = [p for p in target.split(".")[2:] if p.startswith("_")]
            if private and _top(target) != _top(module):
                violations.append(f"{module} imports {target}")
    assert not violations, violations


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import valuemulch.cli\n", ["valuemulch.cli"]),
        ("from valuemulch.certify import verify\n", ["valuemulch.certify"]),
        ("from . import x\n", []),
        ("import os\n", []),
    ],
)
def test_imports_are_read_in_every_form(tmp_path: Path, source: str, expected: list[str]) -> None:
    path = tmp_path / "m.py"
    path.write_text(source, encoding="utf-8")
    assert list(_imports(path)) == expected


def test_an_unplaced_package_is_not_exempt() -> None:
    assert _place("valuemulch.newpkg.mod") is None
    assert _place("valuemulch.train.pipeline") == LAYERS.index(("train.pipeline",))
    assert _place("valuemulch.train.encoder") == LAYERS.index(("train",))


def _graph() -> dict[str, set[str]]:
    """Module -> the ``valuemulch`` modules it imports (lazy imports inside functions included)."""
    known = {m for m, _ in _modules()}
    graph: dict[str, set[str]] = {}
    for module, path in _modules():
        targets = set()
        for target in _imports(path):
            while target not in known and "." in target:  # ``from valuemulch.a.b import name``: the module is a.b
                target = target.rsplit(".", 1)[0]
            if target in known and target != module:
                targets.add(target)
        graph[module] = targets
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules along it, or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles() -> None:
    """A cycle, even through a lazy import, means two modules are one; move the shared code a layer down."""
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()) or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
