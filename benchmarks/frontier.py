"""The community layer (`stack`'s numerical core) on both testbeds' frontier items, cross-fitted.

Run by hand (CPU, a few minutes; nice it on a shared machine):

    VALUEMULCH_DATA=../shared/data nice -n 19 python benchmarks/frontier.py \
        [--encoder us-32=/tmp/serve-model] [--encoder global-32=DIR] [--n-boot 1000] [--ablations]

Backbones: every recorded run answering a frontier item, the option-text prior (fitted on the train
split, seen communities) and, where given, a trained encoder policy. Recorded runs answer only test
questions, so the layer is cross-fitted: K folds by a hash of the question text, each fold predicted
by a layer fitted on the others with every setting chosen by inner CV inside those folds. TV is
mean total variation over items (lower is better); CIs resample whole questions
(`valuemulch.metrics`). The reference is Opus few-shot (express_distribution/task3) on us-32 and the
recorded run with the lowest TV on global-32 (chosen on the evaluation items, which only makes the
comparison harder for the layer). Rows: every recorded run, their plain mean, each backbone
calibrated alone (cross-fitted the same way), the layer with and without the encoder, and the layer
over one vendor's runs (what a user with one API key gets). The layer rows are what `valuemulch
evaluate --policy stack --items frontier --cross-fit 5` computes (same folds, same inner CV).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from valuemulch.certify import recorded_for
from valuemulch.data import load_testbed, resolve_data_root
from valuemulch.metrics import pad, paired_bootstrap, summarise, tv
from valuemulch.policies import OptionTextPriorPolicy, Policy
from valuemulch.policies._stack_cv import Grid, cross_fit
from valuemulch.types import NormItem

from valuemulch.policies._stack_math import Item, LayerConfig, fit_layer, outer_fold  # isort: skip

US_REFERENCE = "recorded:anthropic_opus/express_distribution/task3_easy_hard"
Rows = dict[str, list[np.ndarray | None]]


def _per_community(policy: Policy, norm_items: Sequence[NormItem]) -> list[np.ndarray]:
    out: dict[int, np.ndarray] = {}
    by_comm: dict[str, list[int]] = {}
    for j, i in enumerate(norm_items):
        by_comm.setdefault(i.community, []).append(j)
    for community, idx in by_comm.items():
        for j, p in zip(idx, policy.predict(community, [norm_items[j].question for j in idx]), strict=True):
            out[j] = np.asarray(p, dtype=np.float64)
    return [out[j] for j in range(len(norm_items))]


def backbones(testbed_name: str, root: Path, encoder: str | None) -> tuple[list[NormItem], Rows, list[str]]:
    testbed = load_testbed(testbed_name, root)
    norm_items = list(testbed.frontier_items.filter(communities=testbed.seen))
    rows: Rows = {}
    for run in recorded_for(testbed):
        found = [run.predict(i.community, [i.question])[0] if run.covers(i.community, i.question) else None for i in norm_items]
        if any(p is not None for p in found):
            rows[run.label] = found  # a later run with the same label replaces an earlier one, as in certify
    recorded = sorted(rows)
    prior = OptionTextPriorPolicy().fit(testbed.items("train", "seen"))
    rows["option-text-prior"] = list(_per_community(prior, norm_items))
    if encoder:
        rows["encoder"] = list(_per_community(Policy.load(encoder), norm_items))
    return norm_items, rows, recorded


FAMILIES = {"anthropic": "Anthropic", "gpt": "OpenAI", "llama": "Meta", "deepseek": "DeepSeek"}


def family_of(label: str) -> str:
    """The vendor of a recorded run (what one API key reaches): from the model part of its name."""
    model = label.removeprefix("recorded:").split("/")[0]
    return next((f for prefix, f in FAMILIES.items() if model.startswith(prefix)), model)


def _tv_rows(preds: Sequence[np.ndarray | None], gold: Sequence[np.ndarray]) -> np.ndarray:
    """Per-item TV, NaN where the prediction is missing."""
    out = np.full(len(gold), np.nan)
    have = [j for j, p in enumerate(preds) if p is not None]
    if have:
        out[have] = tv(pad([gold[j] for j in have]), pad([preds[j] for j in have]))  # type: ignore[misc]
    return out


def _line(label: str, scores: np.ndarray, ref: np.ndarray | None, comms: list[str], qids: list[str], n_boot: int) -> str:
    keep = np.isfinite(scores)
    s = summarise(
        scores[keep],
        [c for c, k in zip(comms, keep, strict=True) if k],
        [q for q, k in zip(qids, keep, strict=True) if k],
        higher_is_better=False,
        n_boot=n_boot,
    )
    text = f"| {label} | {s.n} | {s.mean:.3f} [{s.ci[0]:.3f}, {s.ci[1]:.3f}] |"
    if ref is not None:
        d = paired_bootstrap(scores, ref, qids, n_boot=n_boot)
        text += f" {d.mean_diff:+.3f} [{d.ci[0]:+.3f}, {d.ci[1]:+.3f}] (n={d.n}) |"
    else:
        text += " |"
    return text


def _plain_mean(rows: Rows, recorded: list[str], n: int) -> list[np.ndarray | None]:
    out: list[np.ndarray | None] = []
    for j in range(n):
        found = [rows[b][j] for b in recorded if rows[b][j] is not None]
        out.append(np.mean(found, axis=0) if found else None)
    return out


def _calibrated_single(
    items: list[Item], rows: Rows, gold: list[np.ndarray], name: str, bias: bool, by_tv: bool, folds: int
) -> list[np.ndarray | None]:
    """One backbone, its temperature (and bias) fitted on the other folds, on the items it answers."""
    fold = np.array([outer_fold(i.group, folds) for i in items])
    out: list[np.ndarray | None] = [None] * len(items)
    answered = np.array([p is not None for p in rows[name]])
    config = LayerConfig(
        "single", ranking=(name,), position_bias=(name,) if bias else (), calibrate_by_tv=(name,) if by_tv else ()
    )
    for f in range(folds):
        train, test = np.flatnonzero((fold != f) & answered), np.flatnonzero((fold == f) & answered)
        if not len(train) or not len(test):
            continue
        layer = fit_layer([items[j] for j in train], {name: [rows[name][j] for j in train]}, [gold[j] for j in train], config)
        for j, p in zip(test, layer.predict([items[j] for j in test], {name: [rows[name][j] for j in test]}), strict=True):
            out[j] = p
    return out


def probe(testbed_name: str, root: Path, encoder: str | None, n_boot: int, folds: int, ablations: bool) -> None:
    t0 = time.time()
    norm_items, rows, recorded = backbones(testbed_name, root, encoder)
    gold = [i.distribution for i in norm_items]
    comms, qids = [i.community for i in norm_items], [i.question.id for i in norm_items]
    items = [Item(i.community, i.question.id, i.question.n_options, i.question.text) for i in norm_items]  # as `stack` folds them
    raw = {b: _tv_rows(rows[b], gold) for b in rows}
    full = [b for b in recorded if np.isfinite(raw[b]).mean() >= Grid().min_coverage]
    reference = US_REFERENCE if testbed_name == "us-32" else min(full, key=lambda b: float(np.nanmean(raw[b])))
    ref = raw[reference]
    print(f"\n## {testbed_name}: {len(items)} frontier items, {len(set(qids))} questions, {len(set(comms))} seen communities")
    print(f"{len(recorded)} recorded runs; reference: {reference}; encoder: {encoder or 'none'}; K={folds}\n")
    print("| policy | n | TV [95% CI] | minus reference [95% CI] |\n|---|---|---|---|")
    for b in sorted(rows, key=lambda b: float(np.nanmean(raw[b]))):
        print(_line(f"raw {b}", raw[b], ref, comms, qids, n_boot))
    print(_line("plain mean of recorded runs", _tv_rows(_plain_mean(rows, recorded, len(items)), gold), ref, comms, qids, n_boot))
    for b in sorted(rows):
        for bias, by_tv in ((False, False), (True, False), (True, True)):
            single = _tv_rows(_calibrated_single(items, rows, gold, b, bias, by_tv, folds), gold)
            how = ("by TV" if by_tv else "by CE") + (" +bias" if bias else "")
            print(_line(f"calibrated {how} {b}", single, ref, comms, qids, n_boot))
    variants: dict[str, tuple[list[str], Grid]] = {"layer (no encoder)": ([b for b in rows if b != "encoder"], Grid())}
    if "encoder" in rows:
        variants["layer (with encoder)"] = (list(rows), Grid())
    own = [b for b in rows if b not in recorded]  # the prior (and encoder): no API key needed
    for family in sorted({family_of(b) for b in recorded}):
        variants[f"layer, {family} runs only (+ {', '.join(own)})"] = (
            [b for b in recorded if family_of(b) == family] + own,
            Grid(),
        )
    if ablations:
        names = list(rows)
        variants |= {
            "ablation: linear only": (names, Grid(poolings=("linear",), single=False)),
            "ablation: log-linear only": (names, Grid(poolings=("loglinear",), single=False)),
            "ablation: shared weights only": (names, Grid(shrink=(None,))),
            "ablation: objective ce only": (names, Grid(objectives=("ce",))),
            "ablation: objective tv only": (names, Grid(objectives=("tv",))),
        }
    for label, (names, grid) in variants.items():
        t1 = time.time()
        pred, layers = cross_fit(items, {b: rows[b] for b in names}, gold, grid, n_folds=folds)
        print(_line(label, _tv_rows(pred, gold), ref, comms, qids, n_boot))
        chosen = Counter(layer.config.label() for layer in layers)
        tops = [sorted(layer.weights.items(), key=lambda kv: -kv[1])[:3] for layer in layers]
        bias = Counter(b for layer in layers for b in layer.config.position_bias)
        print(f"|   chosen per fold: {dict(chosen)}; {time.time() - t1:.0f}s |  |  |  |")
        print(f"|   top weights, fold 0: {[(b.removeprefix('recorded:'), round(w, 3)) for b, w in tops[0]]} |  |  |  |")
        print(f"|   position bias kept (folds of {len(layers)}): {len(bias)} backbones |  |  |  |")
    print(f"\n({time.time() - t0:.0f}s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--testbed", action="append", choices=["us-32", "global-32"])
    parser.add_argument("--encoder", action="append", default=[], help="TESTBED=DIR of a saved encoder policy")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--ablations", action="store_true")
    args = parser.parse_args()
    encoders = dict(e.split("=", 1) for e in args.encoder)
    root = resolve_data_root()
    for name in args.testbed or ["us-32", "global-32"]:
        probe(name, root, encoders.get(name), args.n_boot, args.folds, args.ablations)


if __name__ == "__main__":
    main()
