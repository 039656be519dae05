"""Build a certificate: what a saved model scores on questions it never saw, beside every baseline and
the recorded frontier models, what the bounds probes found, and exactly what was run.

Everything here is deterministic given the model files, the data and ``CertifyConfig`` (bootstraps
are seeded, torch runs on the CPU in eval mode), so ``verify`` can build the same body again and
compare every number. The schema is documented in ``docs/certificate.md``.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
from valuemulch.certify._config import CertifyConfig, evaluated_testbed
from valuemulch.certify._crossfit import answerer
from valuemulch.certify._evaluate import HEADLINE, ItemScores, score_policy, summarise_scores
from valuemulch.certify._record import (
    SCHEMA,
    BaselineResult,
    Bounds,
    CertifiedConfig,
    CertifiedEvaluation,
    DetectorMeasure,
    DetectorSection,
    Difference,
    EvaluatedData,
    Frontier,
    FrontierRun,
    ItemRecord,
    ItemsHash,
    MetricSummary,
    ModelInfo,
    QuestionExample,
    Questions,
    RedlinePreference,
    Report,
    ScoreBlock,
    SurveysRefused,
    TradeoffPoint,
    UnseenBlock,
    Violations,
)
from valuemulch.certify._record_layer import LayerSummary
from valuemulch.certify._record_log import EvaluationLogRef
from valuemulch.certify._records import records_ref
from valuemulch.certify._rules import check_rules, load_rules, redline_limit
from valuemulch.certify._testbed_eval import fit_for_testbed, recorded_for
from valuemulch.data import Testbed
from valuemulch.errors import ConfigError
from valuemulch.metrics import METRICS, jsd, paired_bootstrap, summarise
from valuemulch.policies import LOG_FILE, EvaluationLog, Policy, StackPolicy, logging_to, make_policy, policy_class, policy_names
from valuemulch.types import Norms, Question

#: The honest baselines every model is compared with (oracles are marked as references).
BASELINES = [n for n in policy_names() if policy_class(n).__module__.endswith("_baselines")]
Progress = Callable[[str], None]


def file_hashes(directory: Path) -> dict[str, str]:
    """SHA-256 of every file under ``directory``, by relative path."""
    out = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        out[path.relative_to(directory).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _metric_summary(
    values: np.ndarray, communities: Sequence[str], qids: Sequence[str], metric: str, n_boot: int, seed: int
) -> MetricSummary:
    higher = METRICS[metric].higher_is_better
    return MetricSummary.of(summarise(values, communities, qids, higher_is_better=higher, n_boot=n_boot, seed=seed))


def _block(scores: ItemScores, n_boot: int, seed: int, *, per_community_metrics: Sequence[str] | None = None) -> ScoreBlock:
    """Overall summaries of every metric of the item scores, and per community those of
    ``per_community_metrics`` (default: every metric; baselines keep only 1-JSD, so only it is bootstrapped)."""
    names = list(scores.scores)
    per_names = names if per_community_metrics is None else list(per_community_metrics)
    communities = [k[0] for k in scores.keys]
    qids = [k[1] for k in scores.keys]
    by_community: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(communities):
        by_community[c].append(i)
    per_community = {}
    for c, rows in sorted(by_community.items()):
        idx = np.array(rows)
        per_community[c] = {
            m: _metric_summary(scores.scores[m][idx], [c] * len(rows), [qids[i] for i in rows], m, n_boot, seed)
            for m in per_names
        }
    return ScoreBlock(
        n_items=len(scores.keys),
        metrics={m: _metric_summary(scores.scores[m], communities, qids, m, n_boot, seed) for m in names},
        per_community=per_community,
    )


def _difference(a: ItemScores, b: ItemScores, metric: str, n_boot: int, seed: int) -> Difference:
    theirs = set(b.keys)
    shared = [k for k in a.keys if k in theirs]
    x, y = a.subset(shared), b.subset(shared)
    return Difference.of(paired_bootstrap(x.scores[metric], y.scores[metric], [k[1] for k in shared], n_boot=n_boot, seed=seed))


def model_communities(policy: Policy, testbed: Testbed) -> list[str]:
    known = policy.known_communities()
    return list(testbed.seen if known is None else known)


def model_population(policy: Policy, communities: Sequence[str], questions: Sequence[Question]) -> list[np.ndarray]:
    """The answer the bounds move towards: the mean of the model's own answers over its communities.

    It needs no human data, so deployment computes it the same way for any new question.
    """
    everyone = policy.predict_communities(communities, questions)
    return [np.mean([everyone[c][i] for c in communities], axis=0) for i in range(len(questions))]


def _questions(policy: Policy, items: Norms, scores: ItemScores, prior: Policy, n: int = 5) -> Questions:
    order = np.argsort(scores.scores["one_minus_jsd"], kind="stable")
    index = {i.key: i for i in items}

    def describe(row: int) -> QuestionExample:
        community, qid = scores.keys[row]
        item = index[(community, qid)]
        return QuestionExample(
            question_id=qid,
            community=community,
            text=item.question.text,
            options=list(item.question.options),
            human=item.distribution.tolist(),
            model=policy.predict(community, [item.question])[0].tolist(),
            prior=prior.predict(community, [item.question])[0].tolist(),
            one_minus_jsd=float(scores.scores["one_minus_jsd"][row]),
        )

    return Questions(best=[describe(int(r)) for r in order[::-1][:n]], worst=[describe(int(r)) for r in order[:n]])


def _tradeoff(
    policy: Policy, items: Norms, communities: Sequence[str], budgets: Sequence[float | None], detector: Detector
) -> list[TradeoffPoint]:
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
            TradeoffPoint(
                budget=budget,
                mean=float(np.mean([x for v in agree.values() for x in v])),
                worst_community=(worst[0], worst[1]),
                mean_jsd_from_population=float(np.mean(moved)),
            )
        )
    return rows


def _detector(detector: Detector, testbed: Testbed) -> DetectorSection:
    settings = {k: v for k, v in semantic_settings().items() if k != "act_cues"} | {"classifier": detector.classifier_id}
    return DetectorSection(
        settings=settings,
        probes={
            split: DetectorMeasure.model_validate(measure(detector, probe_set(split)).to_dict())
            for split in ("dev", "test", "holdout")
        },
        surveys_test=DetectorMeasure.model_validate(
            measure(detector, survey_set(testbed.items("test", "all").questions.values())).to_dict()
        ),
    )


def _bounds(
    policy: Policy, communities: Sequence[str], testbed: Testbed, seen_test: Norms, detector: Detector, limit: float | None
) -> Bounds:
    crossing = [p for p in probes() if p.is_crossing and p.split != "blind"]  # the blind set is only ever reported
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
    return Bounds(
        detector=_detector(detector, testbed),
        violations=Violations(n_probe_answers=n_answers, n_violations=violations, examples=examples[:10]),
        redline_preference=RedlinePreference(per_community=preference, max=(worst[0], worst[1]), limit=limit),
        surveys_refused=SurveysRefused(n_items=len(seen_test), n_refused=int(refused), rate=refused / max(len(seen_test), 1)),
    )


def _unseen(
    model_dir: Path, policy: Policy, testbed: Testbed, config: CertifyConfig
) -> tuple[UnseenBlock | None, list[ItemRecord]]:
    """Onboard each held-out community from ``adapt_k`` train-split answers (into fresh copies of the
    model in ``model_dir``; ``policy`` is the loaded one), then score its test items."""
    if not policy.supports_adapt or not testbed.unseen:
        return None, []
    train, test = testbed.items("train", "unseen"), testbed.items(config.split, "unseen")
    parts, records = [], []
    for seed in config.adapt_seeds:
        adapted = Policy.load(model_dir)
        for community in testbed.unseen:
            adapted.adapt(community, train, k=config.adapt_k, seed=seed)
        part = score_policy(adapted, test, refusals=config.refusals)
        parts.append(part)
        records += part.records("unseen", adapt_seed=seed)
    scores = ItemScores(
        [k for p in parts for k in p.keys],
        {m: np.concatenate([p.scores[m] for p in parts]) for m in parts[0].scores},
    )
    note = f"Each held-out community onboarded from {config.adapt_k} train-split answers (seeds {config.adapt_seeds})"
    block = _block(scores, config.n_boot, config.seed)
    return UnseenBlock(**dict(block), k=config.adapt_k, note=note), records


def _frontier(policy: Policy, testbed: Testbed, config: CertifyConfig) -> tuple[Frontier | None, list[ItemRecord]]:
    """The model beside every recorded frontier run, on the items each run answers, paired by question.

    Refusals are always kept here: the recorded runs answered the full option lists.
    """
    if not len(testbed.frontier_items):
        return None, []
    n_boot, seed = config.n_boot, config.seed
    items = testbed.frontier_items.filter(communities=testbed.seen)
    mine = score_policy(policy, items)
    records = mine.records("frontier:model")
    mine_keys = set(mine.keys)
    runs: dict[str, FrontierRun] = {}
    for other in recorded_for(testbed):
        theirs = score_policy(other, items)
        shared = [k for k in theirs.keys if k in mine_keys]
        runs.pop(other.label, None)  # a later run with the same label replaces an earlier one
        if not shared:
            continue
        a, b = mine.subset(shared), theirs.subset(shared)
        qids = [k[1] for k in shared]
        summaries = summarise_scores(b, n_boot=n_boot, seed=seed)
        runs[other.label] = FrontierRun(
            n_items=len(shared),
            metrics={m: MetricSummary.of(summaries[m]) for m in HEADLINE},
            difference={
                m: Difference.of(paired_bootstrap(a.scores[m], b.scores[m], qids, n_boot=n_boot, seed=seed)) for m in HEADLINE
            },
        )
        records += b.records(f"frontier:{other.label}")
    model = {m: MetricSummary.of(s) for m, s in summarise_scores(mine, n_boot=n_boot, seed=seed).items()}
    return Frontier(n_items=len(mine.keys), model=model, runs=dict(sorted(runs.items()))), records


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


@dataclass
class Built:
    """A certificate body (no ``created``, ``provenance``, id or signature) and its per-item records."""

    report: Report
    records: list[ItemRecord]
    records_bytes: bytes
    log_bytes: bytes | None = None  # the evaluation log, when a language model was asked anything


def _baselines(
    mine: ItemScores, testbed: Testbed, seen_test: Norms, config: CertifyConfig
) -> tuple[dict[str, BaselineResult], dict[str, Policy], list[ItemRecord]]:
    """Every baseline on the model's seen test items, with model minus baseline on 1-JSD."""
    results, fitted, records = {}, {}, []
    for name in BASELINES:
        baseline = fit_for_testbed(make_policy(name, data_root=testbed.data_root), testbed)
        fitted[name] = baseline
        theirs = score_policy(baseline, seen_test, refusals=config.refusals)
        block = _block(theirs, config.n_boot, config.seed, per_community_metrics=("one_minus_jsd",))
        results[name] = BaselineResult(
            oracle=baseline.oracle,
            n_items=block.n_items,
            metrics=block.metrics,
            per_community={c: {"one_minus_jsd": v["one_minus_jsd"]} for c, v in block.per_community.items()},
            difference={"one_minus_jsd": _difference(mine, theirs, "one_minus_jsd", config.n_boot, config.seed)},
        )
        records += theirs.records(f"baseline:{name}")
    return results, fitted, records


def _model_info(model_dir: Path, policy: Policy, communities: list[str], provenance: dict[str, Any]) -> ModelInfo:
    return ModelInfo(
        dir=str(model_dir.resolve()),
        policy=policy.name,
        label=policy.label,
        params=policy.get_params(deep=False),
        seed=provenance.get("seed"),
        communities=communities,
        files=file_hashes(model_dir),
        trained_on=provenance.get("trained_on", {}),
        layer=LayerSummary.model_validate(policy.summary()) if isinstance(policy, StackPolicy) else None,
    )


def _data_info(testbed: Testbed, seen_test: Norms, config: CertifyConfig) -> EvaluatedData:
    return EvaluatedData(
        name=testbed.name,
        data_hash=testbed.norms.content_hash(),
        items_hash=ItemsHash(
            seen_test=seen_test.content_hash(),
            unseen_test=testbed.items(config.split, "unseen").content_hash(),
            frontier=testbed.frontier_items.content_hash(),
        ),
        seen=testbed.seen,
        unseen=testbed.unseen,
    )


def build_body(
    model_dir: str | Path,
    testbed: Testbed,
    config: CertifyConfig,
    progress: Progress | None = None,
    log: EvaluationLog | None = None,
) -> Built:
    """Everything in the certificate except ``certificate_id``, ``created``, ``provenance`` and ``signature``.

    Every language-model output read is recorded in an evaluation log, or, given a replayed ``log``
    (``verify``), read back from it.
    """
    log = log if log is not None else EvaluationLog()
    with logging_to(log):
        built = _build_body(Path(model_dir), testbed, config, progress or (lambda _msg: None))
    if not log.replaying and len(log):
        data = log.to_bytes()
        built.report.evaluation_log = EvaluationLogRef(file=LOG_FILE, sha256=hashlib.sha256(data).hexdigest(), n_entries=len(log))
        built.log_bytes = data
    return built


def _build_body(model_dir: Path, testbed: Testbed, config: CertifyConfig, say: Progress) -> Built:
    model_dir = Path(model_dir)
    provenance = check_model_matches(model_dir, testbed)
    whole, testbed = testbed, evaluated_testbed(testbed, config)
    rules = load_rules(Path(config.policy_file))
    saved = Policy.load(model_dir)
    saved.use_data_root(testbed.data_root)  # a recorded backbone replays this data's runs
    # a sample keeps the model's own extra communities (an adversarial one, say): they are not the testbed's to sample
    communities = [c for c in model_communities(saved, whole) if c in testbed.seen or c not in whole.communities]
    seen_test = testbed.items(config.split, "seen")
    policy, cross = answerer(saved, testbed, seen_test, config, say)
    detector = default_detector()

    say("scoring the model on the test split")
    mine = score_policy(policy, seen_test, refusals=config.refusals)
    records = mine.records("seen")
    say(f"scoring {len(BASELINES)} baselines on the same items")
    baselines, fitted, baseline_records = _baselines(mine, testbed, seen_test, config)
    if len(testbed.frontier_items):
        say("comparing with the recorded frontier models on their items")
    frontier, frontier_records = _frontier(policy, testbed, config)
    say("onboarding the held-out communities")
    unseen, unseen_records = _unseen(model_dir, saved, testbed, config)
    say("bounded answers at each personalisation budget")
    tradeoff = _tradeoff(policy, seen_test, communities, config.budgets, detector)
    say("bounds probes and red-line checks")
    bounds = _bounds(saved, communities, testbed, seen_test, detector, redline_limit(rules))
    evaluation = CertifiedEvaluation(
        seen=_block(mine, config.n_boot, config.seed),
        unseen=unseen,
        baselines=baselines,
        frontier=frontier,
        questions=_questions(policy, seen_test, mine, fitted["option-text-prior"]),
        tradeoff=tradeoff,
        cross_fit=cross,
    )
    records += baseline_records + frontier_records + unseen_records
    ref, data = records_ref(records)
    report = Report(
        schema=SCHEMA,
        model=_model_info(model_dir, saved, communities, provenance),
        testbed=_data_info(testbed, seen_test, config),
        config=CertifiedConfig(**config.model_dump(), policy=rules.raw, policy_text=rules.text),
        evaluation=evaluation,
        bounds=bounds,
        verdict=check_rules(rules, evaluation, bounds, config.n_boot),
        records=ref,
    )
    return Built(report, records, data)
