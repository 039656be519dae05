"""Imports point down the pipeline only: types/errors <- metrics <- data <- backbones <- policies <- bounds <- train <- certify <- serve <- train.pipeline <- cli."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "src" / "valuemulch"
LAYERS = [
    "errors",
    "types",
    "metrics",
    "data",
    "backbones",
    "policies",
    "bounds",
    "train",
    "certify",
    "serve",
    "train.pipeline",
    "cli",
]


def _layer(module: str) -> int:
    parts = module.split(".")[1:]
    for n in (2, 1):  # the longest entry first: train.pipeline sits above train
        if ".".join(parts[:n]) in LAYERS:
            return LAYERS.index(".".join(parts[:n]))
    return -1


def test_imports_point_down_only() -> None:
    violations = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        here = _layer(".".join(rel.parts))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("valuemulch."):
                there = _layer(node.module)
                if there > here >= 0:
                    violations.append(f"{rel} imports {node.module}")
    assert not violations, violations
