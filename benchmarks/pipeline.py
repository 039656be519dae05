"""Wall time of `valuemulch pipeline` (train -> certify -> register), cold and warm.

Run by hand:  VALUEMULCH_DATA=../shared/data python benchmarks/pipeline.py [--testbed us-32] [--runs 2]

Each run is a fresh process with a fresh output directory, key and registry. The first run may
fill the embedding cache (pass --cold to start from an empty one); later runs are warm. The goal
(issue 5) is <= 60 s warm on 2 cores. Prints a Markdown table for docs/certify.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--testbed", default="us-32")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--cold", action="store_true", help="start from an empty embedding cache")
    args = parser.parse_args()
    print("| run | testbed | wall (s) | train (s) | certify (s) | certified | cores |\n|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, VALUEMULCH_KEYS=f"{tmp}/keys", VALUEMULCH_REGISTRY=f"{tmp}/registry.sqlite")
        if args.cold:
            env["VALUEMULCH_CACHE"] = f"{tmp}/cache"
        for n in range(args.runs):
            out = Path(tmp) / f"run{n}"
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "valuemulch.cli", "pipeline", "--testbed", args.testbed, "--out", str(out), "--json"],
                capture_output=True,
                text=True,
                env=env,
            )
            wall = time.perf_counter() - start
            if proc.returncode not in (0, 1):
                sys.exit(proc.stderr)
            result = json.loads(proc.stdout)
            s = result["seconds"]
            label = "cold" if n == 0 and args.cold else "warm" if n else "first"
            print(
                f"| {label} | {args.testbed} | {wall:.1f} | {s['train']:.1f} | {s['certify']:.1f} | "
                f"{result['certified']} | {os.cpu_count()} |"
            )


if __name__ == "__main__":
    main()
