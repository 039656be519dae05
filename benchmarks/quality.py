"""Quality of every policy on both testbeds' test splits: the tables in docs/quality.md.

Run by hand:  VALUEMULCH_DATA=../shared/data python benchmarks/quality.py [--n-boot 1000] [--lm-questions 24] > out.md

Prints Markdown, per testbed:
1. every baseline and the trained `encoder` on the test split (seen communities): 1-JSD,
   representativeness and TV with 95% CIs, and the worst community;
2. the encoder against the option-text prior, community by community;
3. the like-for-like frontier comparison: each recorded frontier run and the encoder on exactly the
   items that run answered (paired bootstrap CI of the TV difference);
4. onboarding the 8 unseen communities with `adapt` from k in {5, 10, 20} train-split answers
   (3 draws each), scored on their test-split items next to uniform and the pooled-population oracle;
5. `lm` policies (SmolLM2-135M-Instruct) on a stated subset, with the encoder on the same subset;
6. encoder training time, cold (empty embedding cache) and warm.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from baselines import HEADER, _row
from valuemulch.certify import evaluate_on_testbed, fit_for_testbed, score_policy
from valuemulch.data import Testbed, load_testbed, resolve_data_root
from valuemulch.policies import EncoderPolicy, Policy, build, policy_class, policy_names
from valuemulch.train import EncoderConfig, train_encoder

BASELINES = [n for n in policy_names() if policy_class(n).__module__.endswith("_baselines")]
LM_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("lm logprobs, persona, 2 orders", {"method": "logprobs", "steering": "persona", "permutations": 2}),
    ("lm logprobs, persona, 1 order", {"method": "logprobs", "steering": "persona", "permutations": 1}),
    ("lm logprobs, no steering, 2 orders", {"method": "logprobs", "steering": "none", "permutations": 2}),
    ("lm sampled (20), persona", {"method": "sampled", "steering": "persona", "permutations": 1, "n_samples": 20}),
    ("lm verbalized, persona (uniform on parse failure)", {"method": "verbalized", "on_parse_error": "uniform", "permutations": 1}),
]


def _mean(x: np.ndarray) -> float:
    return float(np.nanmean(x)) if len(x) else float("nan")


def test_split(tb: Testbed, encoder: Policy, n_boot: int) -> None:
    print(f"\n### {tb.name}: test split, seen communities\n\n{HEADER}")
    for name in BASELINES:
        d = evaluate_on_testbed(name, tb, compare_recorded=False, n_boot=n_boot).to_dict()
        d["oracle"] = policy_class(name).oracle
        print(_row(name, d, d["n_items"]))
    d = evaluate_on_testbed(encoder, tb, compare_recorded=False, n_boot=n_boot).to_dict()
    print(_row("**encoder**", d, d["n_items"]))
    prior = evaluate_on_testbed("option-text-prior", tb, compare_recorded=False, n_boot=n_boot).to_dict()
    ours, theirs = d["per_community"], prior["per_community"]
    margins = {c: ours[c]["one_minus_jsd"] - theirs[c]["one_minus_jsd"] for c in ours}
    below = {c: m for c, m in margins.items() if m <= 0}
    print(
        f"\nencoder above option-text-prior (1-JSD) in {len(margins) - len(below)} of {len(margins)} communities; "
        f"smallest margin {min(margins.values()):+.3f} ({min(margins, key=margins.__getitem__)}), "
        f"largest {max(margins.values()):+.3f}" + (f"; not above: {sorted(below)}" if below else "")
    )


def frontier(tb: Testbed, encoder: Policy, n_boot: int) -> None:
    if not len(tb.frontier_items):
        return
    d = evaluate_on_testbed(encoder, tb, items="frontier", n_boot=n_boot).to_dict()
    print(f"\n### {tb.name}: frontier items, encoder on exactly each recorded run's items\n")
    print("| recorded policy | items | recorded TV | encoder TV | TV difference (encoder - recorded) [95% CI] | recorded 1-JSD | encoder 1-JSD |")
    print("|---|---|---|---|---|---|---|")
    runs = sorted(
        ((r, c) for r, c in d["compared"].items() if c.get("n_items")), key=lambda rc: rc[1]["metrics"]["tv"]["mean"]
    )
    beaten = 0
    for run, c in runs:
        same = next(v for k, v in c.items() if k.endswith("_on_same_items"))
        diff = c["paired_difference"]["tv"]
        beaten += diff["ci"][1] < 0
        print(
            f"| {run} | {c['n_items']} | {c['metrics']['tv']['mean']:.3f} | {same['tv']['mean']:.3f} | "
            f"{diff['mean_diff']:+.3f} [{diff['ci'][0]:+.3f}, {diff['ci'][1]:+.3f}] | "
            f"{c['metrics']['one_minus_jsd']['mean']:.3f} | {same['one_minus_jsd']['mean']:.3f} |"
        )
    print(f"\nencoder TV significantly below (95% CI of the difference < 0) {beaten} of {len(runs)} recorded runs.")


def onboarding(tb: Testbed, encoder: Policy, n_boot: int, seeds: int = 3) -> None:
    train_items = tb.items("train", "unseen")
    test_items = tb.items("test", "unseen")
    uniform = fit_for_testbed(build("uniform"), tb)
    pooled = fit_for_testbed(build("pooled-oracle"), tb)
    loo = fit_for_testbed(build("pooled-oracle", leave_out_self=True), tb)
    print(f"\n### {tb.name}: onboarding the unseen communities from k train-split answers, scored on their test split\n")
    print("| k | communities | items | encoder+adapt 1-JSD | uniform | pooled-oracle | pooled-oracle (community left out) | adapted >= pooled-oracle in |")
    print("|---|---|---|---|---|---|---|---|")
    saved = encoder.save(Path(tempfile.mkdtemp(prefix="valuemulch-quality-")) / "encoder")  # each adaptation starts from a fresh load
    for k in (5, 10, 20):
        ours, base_u, base_p, base_l, wins, n, used = [], [], [], [], 0, 0, set()
        for community in tb.unseen:
            own_test = test_items.filter(communities=[community])
            have = len(train_items.filter(communities=[community]))
            if not len(own_test) or have < k:
                continue
            used.add(community)
            per_seed = []
            for seed in range(seeds):
                adapted = Policy.load(saved)
                adapted.adapt(community, train_items, k=k, seed=seed)  # type: ignore[attr-defined]
                per_seed.append(score_policy(adapted, own_test).scores["one_minus_jsd"])
            mine = np.mean(per_seed, axis=0)
            p = score_policy(pooled, own_test).scores["one_minus_jsd"]
            ours.append(mine)
            base_u.append(score_policy(uniform, own_test).scores["one_minus_jsd"])
            base_p.append(p)
            base_l.append(score_policy(loo, own_test).scores["one_minus_jsd"])
            wins += _mean(mine) >= _mean(p)
            n += len(own_test)
        cat = np.concatenate
        print(
            f"| {k} | {len(used)} | {n} | {_mean(cat(ours)):.3f} | {_mean(cat(base_u)):.3f} | {_mean(cat(base_p)):.3f} | "
            f"{_mean(cat(base_l)):.3f} | {wins} of {len(used)} |"
        )
    print(f"\n(adapted scores are the mean of {seeds} draws of the k questions; items are micro-averaged)")


def lm_subset(tb: Testbed, encoder: Policy, n_questions: int, communities: int) -> None:
    rng = np.random.default_rng(0)
    ids = sorted(rng.choice(sorted(tb.question_ids("test")), size=n_questions, replace=False).tolist())
    chosen = sorted(rng.choice(tb.seen, size=communities, replace=False).tolist())
    subset = tb.items("test", "seen").filter(question_ids=ids, communities=chosen)
    print(f"\n### {tb.name}: lm policies (SmolLM2-135M-Instruct, zero-shot) on a subset\n")
    print(f"{n_questions} test questions drawn with seed 0 x communities {chosen}: {len(subset)} items.\n")
    print("| policy | items | 1-JSD | R | TV | seconds per item |\n|---|---|---|---|---|---|")
    rows: list[tuple[str, Policy]] = [
        ("uniform", fit_for_testbed(build("uniform"), tb)),
        ("option-text-prior", fit_for_testbed(build("option-text-prior"), tb)),
        ("encoder", encoder),
    ]
    for label, params in LM_VARIANTS:
        rows.append((label, build("lm", **params).fit(tb.items("train", "seen"))))
    for label, policy in rows:
        start = time.perf_counter()
        s = score_policy(policy, subset).scores
        per_item = (time.perf_counter() - start) / max(len(subset), 1)
        print(
            f"| {label} | {len(s['tv'])} | {_mean(s['one_minus_jsd']):.3f} | {_mean(s['representativeness']):.3f} | "
            f"{_mean(s['tv']):.3f} | {per_item:.3f} |"
        )


def timing(tb: Testbed) -> Policy:
    """Train the encoder cold (fresh embedding cache), then warm; return the warm model."""
    print(f"\n### {tb.name}: encoder training time ({os.cpu_count()} CPU cores visible, torch threads {_threads()})\n")
    previous = os.environ.get("VALUEMULCH_CACHE")
    with tempfile.TemporaryDirectory() as cold_cache:
        os.environ["VALUEMULCH_CACHE"] = cold_cache
        start = time.perf_counter()
        train_encoder(EncoderConfig(testbed=tb.name), testbed=tb)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        trained = train_encoder(EncoderConfig(testbed=tb.name), testbed=tb)
        warm = time.perf_counter() - start
    if previous is None:
        os.environ.pop("VALUEMULCH_CACHE")
    else:
        os.environ["VALUEMULCH_CACHE"] = previous
    print(f"cold (encoder loaded and every text embedded): {cold:.1f} s; warm (embedding cache filled): {warm:.1f} s")
    return trained.policy


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--lm-questions", type=int, default=24, help="test questions for the lm subset (0 skips it)")
    parser.add_argument("--lm-communities", type=int, default=3)
    parser.add_argument("--testbeds", default="us-32,global-32")
    parser.add_argument("--no-timing", action="store_true", help="train once, without the cold/warm timing (for a busy machine)")
    args = parser.parse_args()
    root = resolve_data_root(args.data)
    start = time.perf_counter()
    for name in args.testbeds.split(","):
        tb = load_testbed(name, root)
        encoder = train_encoder(EncoderConfig(testbed=name), testbed=tb).policy if args.no_timing else timing(tb)
        assert isinstance(encoder, EncoderPolicy)
        test_split(tb, encoder, args.n_boot)
        frontier(tb, encoder, args.n_boot)
        onboarding(tb, encoder, args.n_boot)
        if args.lm_questions:
            lm_subset(tb, encoder, args.lm_questions, args.lm_communities)
    print(f"\n(benchmark wall time {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
