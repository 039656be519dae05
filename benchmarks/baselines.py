"""Baselines and recorded frontier models on both testbeds: the table in docs/baselines.md.

Run by hand:  VALUEMULCH_DATA=../shared/data python benchmarks/baselines.py [--n-boot 1000] > out.md
It prints Markdown: for each testbed, every baseline on the test split (seen communities), with
refusal options kept and dropped, then every policy on the frontier items against the same targets
the recorded frontier outputs were scored against.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from valuemulch.certify import evaluate_on_testbed, fit_for_testbed, recorded_for
from valuemulch.data import load_testbed, resolve_data_root
from valuemulch.policies import build, policy_class, policy_names

BASELINES = [n for n in policy_names() if policy_class(n).__module__.endswith("_baselines")]


def _cell(metric: dict) -> str:
    if metric["mean"] is None:
        return "n/a"
    lo, hi = metric["ci"]
    return f"{metric['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def _row(name: str, d: dict, n_items: int) -> str:
    m = d["metrics"]
    worst = m["one_minus_jsd"]["worst_community"]
    label = f"{name} (oracle)" if d.get("oracle") else name
    return (
        f"| {label} | {n_items} | {_cell(m['one_minus_jsd'])} | {_cell(m['representativeness'])} | {_cell(m['tv'])} | "
        f"{worst[0]} ({worst[1]:.3f}) |"
        if worst
        else f"| {label} | {n_items} | n/a | n/a | n/a | n/a |"
    )


HEADER = "| policy | items | 1-JSD [95% CI] | R [95% CI] | TV [95% CI] | worst community (1-JSD) |\n|---|---|---|---|---|---|"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()
    root = resolve_data_root(args.data)
    start = time.perf_counter()
    for name in ("us-32", "global-32"):
        tb = load_testbed(name, root)
        for refusals in ("keep", "drop"):
            print(f"\n### {name}: test split, seen communities, refusal options {refusals}\n\n{HEADER}")
            for policy in BASELINES:
                d = evaluate_on_testbed(policy, tb, refusals=refusals, compare_recorded=False, n_boot=args.n_boot).to_dict()
                d["oracle"] = policy_class(policy).oracle
                print(_row(policy, d, d["n_items"]))
            loo = fit_for_testbed(build("pooled-oracle", leave_out_self=True), tb)
            d = evaluate_on_testbed(loo, tb, refusals=refusals, compare_recorded=False, n_boot=args.n_boot).to_dict()
            print(_row("pooled-oracle, community left out", d, d["n_items"]))
        print(f"\n### {name}: frontier items (targets as the recorded outputs were scored), refusal options kept\n")
        print(HEADER)
        for policy in BASELINES:
            d = evaluate_on_testbed(policy, tb, items="frontier", compare_recorded=False, n_boot=args.n_boot).to_dict()
            d["oracle"] = policy_class(policy).oracle
            print(_row(policy, d, d["n_items"]))
        # each recorded run on the frontier items it covers, and option-text-prior on exactly those items
        d = evaluate_on_testbed("option-text-prior", tb, items="frontier", n_boot=args.n_boot).to_dict()
        print(
            "\n| recorded policy | items | 1-JSD | R | TV | option-text-prior TV on the same items | TV difference (prior - recorded) [95% CI] |"
        )
        print("|---|---|---|---|---|---|---|")
        runs = sorted(d["compared"].items(), key=lambda kv: kv[1]["metrics"]["tv"]["mean"] if kv[1].get("n_items") else 9)
        for run, c in runs:
            if not c.get("n_items"):
                continue
            same = c["option-text-prior_on_same_items"]["tv"]["mean"]
            diff = c["paired_difference"]["tv"]
            m = c["metrics"]
            r = "n/a" if m["representativeness"]["mean"] is None else f"{m['representativeness']['mean']:.3f}"
            print(
                f"| {run} | {c['n_items']} | {m['one_minus_jsd']['mean']:.3f} | {r} | {m['tv']['mean']:.3f} | {same:.3f} | "
                f"{diff['mean_diff']:+.3f} [{diff['ci'][0]:+.3f}, {diff['ci'][1]:+.3f}] |"
            )
        print(f"\n{len(recorded_for(tb))} recorded runs answer items of {name}.")
    print(f"\n(benchmark wall time {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
