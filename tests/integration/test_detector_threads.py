"""The shipped detector under a burst of request threads in a fresh process, as the service meets it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BURST = """
from concurrent.futures import ThreadPoolExecutor
from valuemulch.bounds import default_detector
from valuemulch.types import Question

detector = default_detector()
detector.detect(Question("warm-up", "Is this service ready?", ("Yes", "No")))
questions = [Question(f"q{i}", f"Should the town {RUN} allow plan number {i} for the park?", ("Yes", "No")) for i in range(16)]
with ThreadPoolExecutor(8) as pool:
    futures = [pool.submit(detector.detect, q) for q in questions]
errors = [repr(f.exception()) for f in futures if f.exception()]
assert not errors, errors[:2]
print("ok", len(questions))
"""


def test_a_cold_encoder_survives_a_burst_of_threads(tmp_path: Path) -> None:
    """The second process finds every statement it needs at start-up in the embedding cache, so no
    model is loaded before the burst: eight threads then meet the encoders cold, at once. Loading
    transformers' lazy modules from several threads used to fail with ImportError (a 500 from
    /v1/decide); loading is now one at a time."""
    env = {**os.environ, "VALUEMULCH_CACHE": str(tmp_path / "cache")}
    for run in ("first", "second"):
        proc = subprocess.run(
            [sys.executable, "-c", BURST.replace("{RUN}", run)], env=env, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0 and "ok 16" in proc.stdout, proc.stderr[-2000:]
