"""Build a certificate: what a saved model scores on questions it never saw, beside every baseline and
the recorded frontier models, what the bounds probes found, and exactly what was run.

Everything here is deterministic given the model files, the data and ``CertifyConfig`` (bootstraps
are seeded, torch runs on the CPU in eval mode), so ``verify`` can build the same body again and
compare every number. The schema is documented in ``docs/certificate.md``.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from valuemulch.bounds import (
    Detector,
    OrgPolicy,
    apply_bounds,
    default_detector,
    measure,
    probe_set,
    probes,
    semantic_settings,
    survey_set,
)
from valuemulch.certify._evaluate import ItemScores, evaluate, score_policy
from valuemulch.certify._rules import check_rules, load_rules
from valuemulch.certify._testbed_eval import fit_for_testbed, recorded_for
from valuemulch.data import Testbed
from valuemulch.errors import ConfigError
from valuemulch.metrics import METRICS, jsd, paired_bootstrap, summarise
from valuemulch.policies import Policy, make_policy, policy_class, policy_names
from valuemulch.types import Norms, Question

SCHEMA = "valuemulch.certificate/1"
#: The honest baselines every model is compared with (oracles are marked as references).
BASELINES = [n for n in policy_names() if policy_class(n).__module__.endswith("_baselines")]
PACKAGES = ("numpy", "torch", "sentence-transformers", "transformers", "safetensors", "cryptography")
Progress = Callable[[str], None]


@dataclass
class CertifyConfig:
    """Every setting that changes a number; stored in the certificate and reused by ``verify``."""

    testbed: str
    policy_file: str
    split: str = "test"
    refusals: str = "keep"
    n_boot: int = 1000
    seed: int = 0
    adapt_k: int = 10
    adapt_seeds: list[int] = field(default_factory=lambda: [0])
    budgets: list[float | None] = field(default_factory=lambda: [0.05, 0.1, 0.2, 0.3, None])

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CertifyConfig:
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def file_hashes(directory: Path) -> dict[str, str]:
    """SHA-256 of every file under ``directory``, by relative path."""
    out = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        out[path.relative_to(directory).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _summary(
    values: np.ndarray, communities: Sequence[str], qids: Sequence[str], metric: str, n_boot: int, seed: int
) -> dict[str, Any]:
    s = summarise(
        values, communities, qids, higher_is_better=METRICS[metric].higher_is_better, n_boot=n_boot, seed=seed
    ).to_dict()
    return {"mean": s["mean"], "ci": s["ci"], "n": s["n"], "n_questions": s["n_questions"]}


def _block(scores: ItemScores, n_boot: int, seed: int, metrics: Sequence[str] | None = None) -> dict[str, Any]:
    """Overall and per-community summaries of item scores (``metrics`` limits which)."""
    names = list(metrics or scores.scores)
    communities = [k[0] for k in scores.keys]
    qids = [k[1] for k in scores.keys]
    by_community: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(communities):
        by_community[c].append(i)
    per_community = {}
    for c, rows in sorted(by_community.items()):
        idx = np.array(rows)
        per_community[c] = {
            m: _summary(scores.scores[m][idx], [c] * len(rows), [qids[i] for i in rows], m, n_boot, seed) for m in names
        }
    return {
        "n_items": len(scores.keys),
        "metrics": {m: _summary(scores.scores[m], communities, qids, m, n_boot, seed) for m in names},
        "per_community": per_community,
    }


def _difference(a: ItemScores, b: ItemScores, metric: str, n_boot: int, seed: int) -> dict[str, Any]:
    theirs = set(b.keys)
    shared = [k for k in a.keys if k in theirs]
    x, y = a.subset(shared), b.subset(shared)
    d = paired_bootstrap(x.scores[metric], y.scores[metric], [k[1] for k in shared], n_boot=n_boot, seed=seed).to_dict()
    return {"mean": d["mean_diff"], "ci": d["ci"], "n": d["n"], "n_questions": d["n_questions"], "p_value": d["p_value"]}


def model_communities(policy: Policy, testbed: Testbed) -> list[str]:
    known = policy.known_communities()
    return list(testbed.seen if known is None else known)


def model_population(policy: Policy, communities: Sequence[str], questions: Sequence[Question]) -> list[np.ndarray]:
    """The answer the bounds move towards: the mean of the model's own answers over its communities.

    It needs no human data, so deployment computes it the same way for any new question.
    """
    everyone = policy.predict_communities(communities, questions)
    return [np.mean([everyone[c][i] for c in communities], axis=0) for i in range(len(questions))]


def _questions(policy: Policy, items: Norms, scores: ItemScores, prior: Policy, n: int = 5) -> dict[str, list[dict[str, Any]]]:
    order = np.argsort(scores.scores["one_minus_jsd"], kind="stable")
    index = {i.key: i for i in items}

    def describe(row: int) -> dict[str, Any]:
        community, qid = scores.keys[row]
        item = index[(community, qid)]
        return {
            "question_id": qid,
            "community": community,
            "text": item.question.text,
            "options": list(item.question.options),
            "human": item.distribution.tolist(),
            "model": policy.predict(community, [item.question])[0].tolist(),
            "prior": prior.predict(community, [item.question])[0].tolist(),
            "one_minus_jsd": float(scores.scores["one_minus_jsd"][row]),
        }

    return {"best": [describe(int(r)) for r in order[::-1][:n]], "worst": [describe(int(r)) for r in order[:n]]}


def _tradeoff(
    policy: Policy, items: Norms, communities: Sequence[str], budgets: Sequence[float | None], detector: Detector
) -> list[dict[str, Any]]:
    """Mean and worst-community agreement of the *bounded* answers at each tier-2 budget."""
    questions = list(items.questions.values())
    population = {q.id: p for q, p in zip(questions, model_population(policy, communities, questions), strict=True)}
    raw = {}
    for c in sorted({i.community for i in items}):
        mine = [i for i in items if i.community == c]
        for item, p in zip(mine, policy.predict(c, [i.question for i in mine]), strict=True):
            raw[item.key] = p
    rows = []
    for budget in budgets:
        policy_t2 = OrgPolicy(max_divergence=budget)
        agree: dict[str, list[float]] = defaultdict(list)
        moved = []
        for item in items:
            answer = apply_bounds(
                item.question,
                raw[item.key],
                item.community,
                policy_t2,
                population=population[item.question.id],
                detector=detector,
            )
            if answer.distribution is None:
                continue
            agree[item.community].append(1 - float(jsd(item.distribution, answer.distribution)))
            moved.append(float(jsd(population[item.question.id], answer.distribution)))
        per = {c: float(np.mean(v)) for c, v in agree.items()}
        worst = min(per.items(), key=lambda kv: kv[1])
        rows.append(
            {
                "budget": budget,
                "mean": float(np.mean([x for v in agree.values() for x in v])),
                "worst_community": [worst[0], worst[1]],
                "mean_jsd_from_population": float(np.mean(moved)),
            }
        )
    return rows


def _bounds(policy: Policy, communities: Sequence[str], testbed: Testbed, seen_test: Norms, detector: Detector) -> dict[str, Any]:
    settings = {k: v for k, v in semantic_settings().items() if k != "act_cues"} | {"classifier": detector.classifier_id}
    detector_report = {
        "settings": settings,
        "probes": {split: measure(detector, probe_set(split)).to_dict() for split in ("dev", "test", "holdout")},
        "surveys_test": measure(detector, survey_set(testbed.items("test", "all").questions.values())).to_dict(),
    }
    crossing = [p for p in probes() if p.is_crossing]
    questions = [p.question for p in crossing]
    n_answers, violations, examples = 0, 0, []
    preference = {}
    for c in communities:
        raw = policy.predict(c, questions)
        lift = []
        for probe, p in zip(crossing, raw, strict=True):
            cols = list(probe.crossing)
            share = len(cols) / probe.question.n_options
            lift.append(float(p[cols].sum()) / share)
            tags = tuple((f"redline:{probe.redline}",) if i in probe.crossing else () for i in range(probe.question.n_options))
            answer = apply_bounds(probe.question, p, c, option_tags=tags, detector=detector)
            n_answers += 1
            if answer.distribution is not None and answer.distribution[cols].sum() > 0:
                violations += 1
                examples.append(f"{c} / {probe.id}")
        preference[c] = float(np.mean(lift))
    worst = max(preference.items(), key=lambda kv: kv[1])
    refused = sum(
        apply_bounds(i.question, np.full(i.question.n_options, 1 / i.question.n_options), i.community, detector=detector).refused
        for i in seen_test
    )
    return {
        "detector": detector_report,
        "violations": {"n_probe_answers": n_answers, "n_violations": violations, "examples": examples[:10]},
        "redline_preference": {"per_community": preference, "max": [worst[0], worst[1]]},
        "surveys_refused": {"n_items": len(seen_test), "n_refused": int(refused), "rate": refused / max(len(seen_test), 1)},
    }


def _unseen(model_dir: Path, testbed: Testbed, config: CertifyConfig) -> dict[str, Any] | None:
    """Onboard each held-out community from ``adapt_k`` train-split answers, then score its test items."""
    policy = Policy.load(model_dir)
    if not policy.supports_adapt or not testbed.unseen:
        return None
    train, test = testbed.items("train", "unseen"), testbed.items(config.split, "unseen")  # type: ignore[arg-type]
    parts = []
    for seed in config.adapt_seeds:
        adapted = Policy.load(model_dir)
        for community in testbed.unseen:
            adapted.adapt(community, train, k=config.adapt_k, seed=seed)
        parts.append(score_policy(adapted, test, refusals=config.refusals))  # type: ignore[arg-type]
    scores = ItemScores(
        [k for p in parts for k in p.keys],
        {m: np.concatenate([p.scores[m] for p in parts]) for m in parts[0].scores},
    )
    block = _block(scores, config.n_boot, config.seed)
    block["k"] = config.adapt_k
    block["note"] = f"Each held-out community onboarded from {config.adapt_k} train-split answers (seeds {config.adapt_seeds})"
    return block


def _git(cwd: Path) -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout
        return {"commit": commit, "dirty": bool(dirty.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def environment() -> dict[str, Any]:
    packages: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    return {
        "valuemulch": version("valuemulch"),
        "git": _git(Path(__file__).parent),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
    }


def check_model_matches(model_dir: Path, testbed: Testbed) -> dict[str, Any]:
    """Refuse to certify on a testbed whose test items the model may have seen."""
    provenance = Policy.read_provenance(model_dir)
    trained_on = provenance.get("trained_on", {})
    if trained_on.get("testbed") != testbed.name:
        raise ConfigError(
            f"{model_dir} was trained on testbed {trained_on.get('testbed')!r}, not {testbed.name!r}; "
            f"certify it with --testbed {trained_on.get('testbed')} (its test split is what it never saw)."
        )
    expected = testbed.items("train", "seen").content_hash()
    if trained_on.get("items_hash") != expected:
        raise ConfigError(
            f"{model_dir} was trained on items with hash {trained_on.get('items_hash')}, but this data's train split hashes to "
            f"{expected}: the data changed since training, so its test split may not be unseen. Retrain on this data."
        )
    return provenance


def build_body(
    model_dir: str | Path, testbed: Testbed, config: CertifyConfig, progress: Progress | None = None
) -> dict[str, Any]:
    """Everything in the certificate except ``certificate_id``, ``created``, ``provenance`` and ``signature``."""
    say = progress or (lambda _msg: None)
    model_dir = Path(model_dir)
    provenance = check_model_matches(model_dir, testbed)
    rules = load_rules(Path(config.policy_file))
    policy = Policy.load(model_dir)
    communities = model_communities(policy, testbed)
    seen_test = testbed.items(config.split, "seen")  # type: ignore[arg-type]
    detector = default_detector()

    say("scoring the model on the test split")
    mine = score_policy(policy, seen_test, refusals=config.refusals)  # type: ignore[arg-type]
    seen = _block(mine, config.n_boot, config.seed)

    say(f"scoring {len(BASELINES)} baselines on the same items")
    baselines = {}
    fitted: dict[str, Policy] = {}
    for name in BASELINES:
        baseline = fit_for_testbed(make_policy(name, data_root=testbed.data_root), testbed)
        fitted[name] = baseline
        theirs = score_policy(baseline, seen_test, refusals=config.refusals)  # type: ignore[arg-type]
        block = _block(theirs, config.n_boot, config.seed, metrics=list(theirs.scores))
        baselines[name] = {
            "oracle": baseline.oracle,
            "n_items": block["n_items"],
            "metrics": block["metrics"],
            "per_community": {c: {"one_minus_jsd": v["one_minus_jsd"]} for c, v in block["per_community"].items()},
            "difference": {"one_minus_jsd": _difference(mine, theirs, "one_minus_jsd", config.n_boot, config.seed)},
        }

    frontier = None
    if len(testbed.frontier_items):
        say("comparing with the recorded frontier models on their items")
        items = testbed.frontier_items.filter(communities=testbed.seen)
        result = evaluate(policy, items, compare=recorded_for(testbed), n_boot=config.n_boot, seed=config.seed)
        model_metrics = {m: _pick(s.to_dict()) for m, s in result.summaries.items()}
        runs = {}
        for label, entry in sorted(result.compared.items()):
            if not entry.get("n_items"):
                continue
            runs[label] = {
                "n_items": entry["n_items"],
                "metrics": {m: _pick(v) for m, v in entry["metrics"].items()},
                "difference": {
                    m: {
                        "mean": v["mean_diff"],
                        "ci": v["ci"],
                        "n": v["n"],
                        "n_questions": v["n_questions"],
                        "p_value": v["p_value"],
                    }
                    for m, v in entry["paired_difference"].items()
                },
            }
        frontier = {"n_items": result.n_items, "model": model_metrics, "runs": runs}

    say("onboarding the held-out communities")
    unseen = _unseen(model_dir, testbed, config)
    say("bounded answers at each personalisation budget")
    tradeoff = _tradeoff(policy, seen_test, communities, config.budgets, detector)
    say("bounds probes and red-line checks")
    bounds = _bounds(policy, communities, testbed, seen_test, detector)
    evaluation = {
        "seen": seen,
        "unseen": unseen,
        "baselines": baselines,
        "frontier": frontier,
        "questions": _questions(policy, seen_test, mine, fitted["option-text-prior"]),
        "tradeoff": tradeoff,
    }
    body = {
        "schema": SCHEMA,
        "model": {
            "dir": str(model_dir.resolve()),
            "policy": policy.name,
            "label": policy.label,
            "params": policy.get_params(),
            "seed": provenance.get("seed"),
            "communities": communities,
            "files": file_hashes(model_dir),
            "trained_on": provenance.get("trained_on", {}),
        },
        "testbed": {
            "name": testbed.name,
            "data_hash": testbed.norms.content_hash(),
            "items_hash": {
                "seen_test": seen_test.content_hash(),
                "unseen_test": testbed.items(config.split, "unseen").content_hash(),  # type: ignore[arg-type]
                "frontier": testbed.frontier_items.content_hash(),
            },
            "seen": testbed.seen,
            "unseen": testbed.unseen,
        },
        "config": {**asdict(config), "policy": rules.raw, "policy_text": rules.text},
        "evaluation": evaluation,
        "bounds": bounds,
    }
    limits = [r["max"] for r in rules.raw["rule"] if r["kind"] == "max_redline_preference"]
    bounds["redline_preference"]["limit"] = min(limits) if limits else None
    body["verdict"] = check_rules(rules, body)
    return body


def _pick(summary: dict[str, Any]) -> dict[str, Any]:
    return {"mean": summary["mean"], "ci": summary["ci"], "n": summary["n"], "n_questions": summary["n_questions"]}


def certificate_id(document: dict[str, Any], canonical: Callable[[dict[str, Any]], bytes]) -> str:
    body = {k: v for k, v in document.items() if k not in ("certificate_id", "signature")}
    return hashlib.sha256(canonical(body)).hexdigest()[:16]


def build_certificate(
    model_dir: str | Path,
    testbed: Testbed,
    config: CertifyConfig,
    canonical: Callable[[dict[str, Any]], bytes],
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The unsigned certificate: the body plus provenance, timestamps and its id."""
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    body = build_body(model_dir, testbed, config, progress)
    finished = datetime.now(UTC)
    document = {
        **body,
        "created": finished.isoformat(timespec="seconds"),
        "provenance": {
            **environment(),
            "started": started.isoformat(timespec="seconds"),
            "finished": finished.isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - t0, 3),
        },
    }
    document["certificate_id"] = certificate_id(document, canonical)
    return document
