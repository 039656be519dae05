"""CPU time of one /v1/decide in process, on the tiny test deployment: the app's own cost, no network.

Run by hand, once per code version (PYTHONPATH picks which):
    PYTHONPATH=src python benchmarks/serve_inprocess.py [--profile]
    PYTHONPATH=/path/to/old/checkout/src python benchmarks/serve_inprocess.py
The deployment is `tests/regression/make_serve_golden.start_client`'s (a real fitted tiny encoder,
signed and registered in a temporary home); 200 warm-up decisions, then 2,000 timed.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "regression")]

from make_serve_golden import BRITAIN, RELIGION, RELIGION_OPTIONS, start_client  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="timed decisions")
    parser.add_argument("--profile", action="store_true", help="print the 35 costliest calls (cumulative)")
    args = parser.parse_args()
    body = {"community": BRITAIN, "question": RELIGION, "options": RELIGION_OPTIONS}
    with start_client(Path(tempfile.mkdtemp())) as (client, _home):
        for _ in range(200):
            client.post("/v1/decide", json=body)
        profile = cProfile.Profile() if args.profile else None
        start = time.process_time()
        if profile:
            profile.enable()
        for _ in range(args.n):
            client.post("/v1/decide", json=body)
        if profile:
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(35)
        print(f"{(time.process_time() - start) / args.n * 1e3:.3f} ms CPU per /v1/decide")


if __name__ == "__main__":
    main()
