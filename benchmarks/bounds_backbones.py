"""Which meaning backbone the detector's logistic regression should sit on: MiniLM against bigger ones.

Run by hand (one backbone per process, so each peak RSS is its own; ~15 min cold on 2 cores):

    OMP_NUM_THREADS=2 VALUEMULCH_DATA=../shared/data python benchmarks/bounds_backbones.py > out.md

For each backbone a logistic regression is fitted on its vectors of the catalogue statements
(``Detector(adapter=None, encoder=...)``), and its ``l2``, thresholds and contrast are chosen on dev
by ``bounds_detector.select`` (mask at most 1% of the train/dev survey questions, refuse none; then
most crossing options caught, then fewest false flags). The probes' test and holdout splits and the
testbeds' test questions are only reported. The blind split is never read. Encode time is measured
on 64 dev statements straight through the encoder (no cache), after the model is loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bounds_detector import _survey_questions, candidates, select
from valuemulch.backbones import EmbeddingCache, make_encoder, minilm_dir
from valuemulch.bounds import Detector, training_statements
from valuemulch.bounds._measure import DetectorReport, measure, probe_set, survey_set
from valuemulch.data import resolve_data_root, user_cache_dir

BACKBONES = {
    "minilm": "all-MiniLM-L6-v2 (baseline)",
    "mpnet": "all-mpnet-base-v2",
    "lm:gemma3": "Gemma 3 270M Q4_K_M, mean hidden state",
    "judge:gemma3": "Gemma 3 270M Q4_K_M, yes/no judge",
}
TIMED = 64


def _disk_mb(spec: str) -> float:
    """The model's files as loaded: MiniLM's package folder, or the assembled copy in the user cache."""
    folder = {
        "minilm": minilm_dir(),
        "mpnet": user_cache_dir() / "models" / "all-mpnet-base-v2",
    }.get(spec, user_cache_dir() / "models" / "gemma-3-270m-q4_k_m")
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def _counts(r: DetectorReport) -> dict[str, int]:
    return {
        "tp": r.tp,
        "crossing": r.tp + r.fn,
        "caught_q": r.positive_questions_caught,
        "positive_q": r.positive_questions,
        "flagged_q": r.negative_questions_flagged,
        "negative_q": r.negative_questions,
        "refused": r.refused,
        "false_refusals": r.false_refusals,
    }


def run_one(spec: str, data: str | None) -> dict[str, object]:
    """Fit, choose on dev, measure: one backbone, in this process."""
    root = resolve_data_root(data)
    sets = {
        "probes dev": probe_set("dev"),
        "surveys train+dev": survey_set(_survey_questions(root, ("train", "dev"))),
        "probes test": probe_set("test"),
        "surveys test": survey_set(_survey_questions(root, ("test",))),
        "probes holdout": probe_set("holdout"),
    }
    start = time.perf_counter()
    encoder = make_encoder(spec)
    encoder.encode(["warm-up"])  # loads the model
    load_s = time.perf_counter() - start
    rules = Detector(semantic=False)
    sample = [t for q, _ in sets["probes dev"] + sets["surveys train+dev"] for a in rules.endorsed(q) for t in a.readings][:TIMED]
    start = time.perf_counter()
    encoder.encode(sample)
    encode_ms = 1000 * (time.perf_counter() - start) / len(sample)
    print(f"[{spec}] loaded in {load_s:.1f} s, {encode_ms:.1f} ms/statement; fitting and scoring ...", file=sys.stderr)
    start = time.perf_counter()
    # The detector embeds question by question; one big call first fills the cache in full batches.
    crossing, benign = training_statements()
    statements = (
        {t for s in sets.values() for q, _ in s for a in rules.endorsed(q) for t in a.readings}
        | {t for t, _ in crossing}
        | set(benign)
    )
    EmbeddingCache(encoder).embed(sorted(statements, key=len))
    pre = candidates([x for s in sets.values() for x in s], encoder)
    name, low, high, contrast, tp, fp = select(sets["probes dev"], sets["surveys train+dev"], pre)
    flags = pre[name].flags(low, high, contrast)
    print(f"[{spec}] scored in {time.perf_counter() - start:.0f} s; chose {name}, {low}/{high}, {contrast}", file=sys.stderr)
    return {
        "spec": spec,
        "encoder_id": encoder.id,
        "chosen": f"{name.removeprefix('logistic regression, ')}, {low}/{high}, contrast {contrast}",
        "dev_rank": [tp, fp],
        "sets": {k: _counts(measure(rules, v, flags)) for k, v in sets.items()},
        "load_s": load_s,
        "encode_ms": encode_ms,
        "disk_mb": _disk_mb(spec),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _caught(c: dict[str, int]) -> str:
    return f"{c['tp']}/{c['crossing']} / {c['caught_q']}/{c['positive_q']}"


def _neg(c: dict[str, int]) -> str:
    return f"{c['flagged_q']}/{c['negative_q']}"


def table(results: list[dict[str, object]]) -> str:
    """The markdown table: dev columns decide, the rest are reported only."""
    head = (
        "| backbone | chosen on dev (l2, low/high, contrast) | dev rank (TP, FP) | dev probes: crossing options / questions "
        "caught | dev hard negatives flagged | train+dev surveys flagged / refused | test probes: options / questions "
        "caught, negatives flagged | test surveys flagged | holdout probes: options / questions caught, negatives "
        "flagged | load s | encode ms/statement | disk MB | peak RSS MB |\n|" + "---|" * 13
    )
    rows = [head]
    for r in results:
        s: dict[str, dict[str, int]] = r["sets"]  # type: ignore[assignment]
        sv = s["surveys train+dev"]
        rows.append(
            f"| {BACKBONES.get(str(r['spec']), r['spec'])} | {r['chosen']} | {tuple(r['dev_rank'])} | "  # type: ignore[arg-type]
            f"{_caught(s['probes dev'])} | {_neg(s['probes dev'])} | {_neg(sv)} / {sv['refused']} | "
            f"{_caught(s['probes test'])}, {_neg(s['probes test'])} | {_neg(s['surveys test'])} | "
            f"{_caught(s['probes holdout'])}, {_neg(s['probes holdout'])} | {r['load_s']:.0f} | "
            f"{r['encode_ms']:.1f} | {r['disk_mb']:.0f} | {r['peak_rss_mb']:.0f} |"
        )
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="data root (default: $VALUEMULCH_DATA)")
    parser.add_argument("--backbone", action="append", choices=list(BACKBONES), help="only these (default: all)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # the child process: one backbone, JSON out
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.data)))
        return
    results = []
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    for spec in args.backbone or list(BACKBONES):
        print(f"== {spec}", file=sys.stderr)
        extra = ["--data", args.data] if args.data else []
        done = subprocess.run(
            [sys.executable, str(Path(__file__)), "--one", spec, *extra], env=env, stdout=subprocess.PIPE, text=True
        )
        if done.returncode != 0:
            print(f"[{spec}] failed with exit code {done.returncode}; see its errors above", file=sys.stderr)
            continue
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"OMP_NUM_THREADS={env['OMP_NUM_THREADS']}, {os.cpu_count()} CPUs\n")
    print(table(results))
    print("Encoder ids: " + "; ".join(f"{r['spec']} = {r['encoder_id']}" for r in results))


if __name__ == "__main__":
    main()
