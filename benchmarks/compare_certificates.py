"""Compare every number of two certificates, across the schema change (certificate/1 -> /2).

    python benchmarks/compare_certificates.py OLD/certificate.json NEW/certificate.json [--tol 1e-12]

Walks the old certificate's sections that `verify` compares (testbed, config, evaluation, bounds,
verdict) and the model; every number must be in the new one at the same path within ``--tol``, and
every string must be equal. Values only in the new certificate are listed, not failed. Prints the hashes of the evaluated items and model
files of both. Exit 0 when nothing differs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

SECTIONS = ("model", "testbed", "config", "evaluation", "bounds", "verdict")
#: Differ by construction between two checkouts: where the model and the shipped policy file live
#: (the policy's content is compared through ``verdict.policy_hash`` and ``config.policy_text``).
IGNORED = {"model.dir", "config.policy_file"}


def _leaves(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _leaves(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _leaves(v, f"{path}[{i}]", out)
    else:
        out[path] = value


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def compare(old: dict[str, Any], new: dict[str, Any], tol: float) -> tuple[list[str], list[str], int]:
    """(differences, paths only in new, numbers compared)."""
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    for section in SECTIONS:
        _leaves(old.get(section), section, a)
        _leaves(new.get(section), section, b)
    problems, compared = [], 0
    for path, x in a.items():
        if path in IGNORED:
            continue
        if path not in b:
            problems.append(f"{path}: {x!r} in the old certificate, missing in the new")
            continue
        y = b[path]
        if _is_number(x) and _is_number(y):
            compared += 1
            if not math.isclose(x, y, rel_tol=0, abs_tol=tol):
                problems.append(f"{path}: old {x!r}, new {y!r} (|diff| {abs(x - y):.3g})")
        elif x != y:
            problems.append(f"{path}: old {x!r}, new {y!r}")
    added = sorted(p for p in b if p not in a)
    return problems, added, compared


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--tol", type=float, default=1e-12)
    args = parser.parse_args()
    old, new = (json.loads(p.read_text(encoding="utf-8")) for p in (args.old, args.new))
    print(f"schema: {old.get('schema')} -> {new.get('schema')}")
    for label, doc in (("old", old), ("new", new)):
        print(f"{label} testbed.data_hash: {doc['testbed']['data_hash']}")
        for k, v in doc["testbed"]["items_hash"].items():
            print(f"{label} testbed.items_hash.{k}: {v}")
        for f, h in doc["model"]["files"].items():
            print(f"{label} model.files[{f}]: {h}")
    problems, added, compared = compare(old, new, args.tol)
    print(f"{compared} numbers compared (tolerance {args.tol:g}); {len(added)} values only in the new certificate")
    for path in added[:20]:
        print(f"NEW  {path}")
    for line in problems[:60]:
        print(f"DIFF {line}")
    print("same" if not problems else f"{len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
