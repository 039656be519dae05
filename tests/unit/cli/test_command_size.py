"""A command stays a thin layer (load options, call one library function, print): no function in
the CLI package grows past 40 lines, options included. Work that needs more belongs in the library."""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).parents[3] / "src" / "valuemulch" / "cli"
MAX_LINES = 40


def test_cli_functions_are_short() -> None:
    modules = sorted(CLI.glob("*.py"))
    assert len(modules) >= 8, modules  # the package is where this test looks; an empty glob would pass anything
    too_long = []
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_LINES:
                    too_long.append(f"{path.name}:{node.lineno} {node.name} ({length} lines)")
    assert not too_long, too_long


def test_every_command_module_is_registered() -> None:
    """A command module `__init__` does not import would be dead code the size test still passes."""
    init = (CLI / "__init__.py").read_text(encoding="utf-8")
    groups = {p.stem for p in CLI.glob("*.py") if not p.stem.startswith("_")}
    imported = {alias.name for node in ast.walk(ast.parse(init)) if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert groups <= imported, groups - imported
