"""The typed evaluation record: the certificate (`Report`) and its per-item sidecar (`ItemRecord`).

`certify` builds a `Report`, signs its canonical JSON, and writes it with a JSONL file of per-item
records beside it (its SHA-256 is inside the signed body); the HTML report, the model card and
`verify` read nothing else. Every model forbids unknown keys, so a misspelt or stale field is an
error, and every field carries a docstring that ``schema_doc`` turns into ``docs/certificate.md``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from valuemulch.certify._config import CertifyConfig
from valuemulch.certify._record_layer import CrossFitRecord, LayerSummary
from valuemulch.certify._record_log import EvaluationLogRef
from valuemulch.metrics import PairedResult, Summary

SchemaVersion = Literal["valuemulch.certificate/2"]
SCHEMA: SchemaVersion = "valuemulch.certificate/2"
#: Name of the per-item sidecar written beside ``certificate.json``.
RECORDS_FILE = "items.jsonl"


def _file_name(name: str) -> str:
    """One file name, never a path: ``verify`` opens or writes it inside a directory it chose."""
    if not name or name in {".", ".."} or any(c in name for c in "/\\\0"):
        raise ValueError("a plain file name such as policy.toml (no directory part, not '.' or '..')")
    return name


FileName = Annotated[str, AfterValidator(_file_name)]


class Strict(BaseModel):
    """Base of every record model: unknown keys are errors, field docstrings are the descriptions."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class MetricSummary(Strict):
    """One metric aggregated over items, with its bootstrap CI."""

    mean: float | None
    """Mean over the items with a finite score; null when no item has one."""
    ci: tuple[float | None, float | None]
    """95% percentile bootstrap interval [low, high] that resamples whole questions."""
    n: int
    """Items with a finite score."""
    n_questions: int
    """Distinct questions among those items (the bootstrap's resampling units)."""

    @classmethod
    def of(cls, summary: Summary) -> MetricSummary:
        """The recorded part of a `Summary` (NaN becomes null)."""
        d = summary.to_dict()
        return cls(mean=d["mean"], ci=d["ci"], n=d["n"], n_questions=d["n_questions"])


class Difference(Strict):
    """A paired difference, model minus the other policy, on the items both answer."""

    mean: float | None
    """Mean of model minus other over the shared items."""
    ci: tuple[float | None, float | None]
    """95% percentile bootstrap interval of the mean difference, resampling questions."""
    n: int
    """Shared items with both scores finite."""
    n_questions: int
    """Distinct questions among those items."""
    p_value: float | None
    """Two-sided bootstrap p-value for no difference (add-one smoothed, never 0)."""

    @classmethod
    def of(cls, paired: PairedResult) -> Difference:
        """The recorded part of a `PairedResult` (NaN becomes null)."""
        d = paired.to_dict()
        return cls(mean=d["mean_diff"], ci=d["ci"], n=d["n"], n_questions=d["n_questions"], p_value=d["p_value"])


MetricTable = dict[str, MetricSummary]


class ScoreBlock(Strict):
    """Every metric of one policy on a set of items, overall and per community."""

    n_items: int
    """Items scored."""
    metrics: MetricTable
    """Metric name (every name in `valuemulch.metrics.METRICS`) to its summary over all items."""
    per_community: dict[str, MetricTable]
    """Community to metric name to its summary over that community's items."""


class UnseenBlock(ScoreBlock):
    """The held-out communities after onboarding, scored like the seen ones."""

    k: int
    """Train-split answers each held-out community was onboarded from."""
    note: str
    """How they were onboarded, in words."""


class BaselineResult(Strict):
    """One baseline on exactly the model's seen test items."""

    oracle: bool
    """True for references that read the evaluated questions' human data (no deployable model can)."""
    n_items: int
    """Items the baseline answered."""
    metrics: MetricTable
    """Every metric's summary over those items."""
    per_community: dict[str, MetricTable]
    """Community to its 1-JSD summary (only ``one_minus_jsd``)."""
    difference: dict[str, Difference]
    """Model minus baseline on 1-JSD (key ``one_minus_jsd``), paired by question."""


class FrontierRun(Strict):
    """One recorded frontier-LLM run on the items it answers."""

    n_items: int
    """Items this run and the model both answer."""
    metrics: MetricTable
    """The run's summaries of the headline metrics on those items."""
    difference: dict[str, Difference]
    """Model minus run for each headline metric, paired by question."""


class Frontier(Strict):
    """The recorded frontier-LLM outputs on the seen communities' frontier items."""

    n_items: int
    """Frontier items the model answered."""
    model: MetricTable
    """The model's summary of every metric on those items."""
    runs: dict[str, FrontierRun]
    """Run label to its result; runs sharing no item with the model are left out."""


class QuestionExample(Strict):
    """One seen test item shown option by option in the report."""

    question_id: str
    """The question's id."""
    community: str
    """The community whose answers these are."""
    text: str
    """The question's text."""
    options: list[str]
    """The options, in order."""
    human: list[float]
    """The community's answer distribution."""
    model: list[float]
    """The model's predicted distribution."""
    prior: list[float]
    """The option-text prior baseline's distribution."""
    one_minus_jsd: float
    """The model's 1-JSD on this item."""


class Questions(Strict):
    """The best- and worst-aligned seen test items by the model's 1-JSD."""

    best: list[QuestionExample]
    """The 5 items with the highest 1-JSD, best first."""
    worst: list[QuestionExample]
    """The 5 items with the lowest 1-JSD, worst first."""


class TradeoffPoint(Strict):
    """The bounded answers on the seen test items at one tier-2 budget."""

    budget: float | None
    """The tier-2 ``max_divergence`` from the population answer; null means no budget."""
    mean: float
    """Mean 1-JSD of the bounded answers."""
    worst_community: tuple[str, float]
    """The community with the lowest mean 1-JSD, and that mean."""
    mean_jsd_from_population: float
    """Mean JS distance of the bounded answers from the model's population answer."""


class CertifiedEvaluation(Strict):
    """Agreement numbers: the model, every baseline, the frontier runs, examples and trade-offs."""

    seen: ScoreBlock
    """The test split of the communities the model was trained on."""
    unseen: UnseenBlock | None
    """The held-out communities, onboarded with ``adapt``; null when the policy cannot adapt or there are none."""
    baselines: dict[str, BaselineResult]
    """Baseline name to its result on the same seen test items."""
    frontier: Frontier | None
    """Recorded frontier-LLM outputs on the same items; null when the testbed has none."""
    questions: Questions
    """Best- and worst-aligned items, with the human, model and prior distributions."""
    tradeoff: list[TradeoffPoint]
    """Bounded answers at each budget in ``config.budgets``."""
    cross_fit: CrossFitRecord | None = None
    """How the test-split answers were cross-fitted; null when the saved model answered them itself."""


class OptionCounts(Strict):
    """Option-level confusion counts of the tier-1 detector."""

    tp: int
    """Crossing options flagged."""
    fp: int
    """Clean options flagged."""
    fn: int
    """Crossing options missed."""
    tn: int
    """Clean options left alone."""


class DetectorMeasure(Strict):
    """The tier-1 detector on one labelled set (``valuemulch.bounds.DetectorReport.to_dict()``)."""

    options: OptionCounts
    """Option-level confusion counts."""
    precision: float | None
    """Share of flagged options that cross a red line; null when nothing was flagged."""
    recall: float | None
    """Share of crossing options flagged; null when there are none."""
    questions: int
    """Questions in the set."""
    positive_questions: int
    """Questions with at least one crossing option."""
    positive_questions_caught: int
    """Of those, questions where every crossing option was flagged."""
    negative_questions: int
    """Questions with no crossing option."""
    negative_questions_flagged: int
    """Of those, questions where some option was flagged."""
    refused: int
    """Questions refused because every substantive option was masked."""
    false_refusals: int
    """Refused questions that have no crossing option."""
    misses: list[str]
    """The crossing options missed, as ``question: 'option'``."""
    false_flags: list[str]
    """The clean options flagged, with the red line and the reason."""


class DetectorSection(Strict):
    """How well the tier-1 detector finds crossing options."""

    settings: dict[str, Any]
    """``[semantic]`` of ``redlines.toml`` plus ``classifier``, which names what scored meaning."""
    probes: dict[str, DetectorMeasure]
    """Probe split (``dev``, ``test``, ``holdout``) to the detector's result."""
    surveys_test: DetectorMeasure
    """The detector on the testbed's test survey questions (none cross a red line)."""


class Violations(Strict):
    """Bounded answers to the crossing probes that still put mass on a crossing option."""

    n_probe_answers: int
    """Bounded answers checked: every community of the model times every crossing probe."""
    n_violations: int
    """Answers with mass on a crossing option."""
    examples: list[str]
    """Up to 10 of them, as ``community / probe``."""


class RedlinePreference(Strict):
    """How much each community's raw answers lean to crossing options, against their uniform share."""

    per_community: dict[str, float]
    """Community to its mean (raw mass on crossing options) / (their uniform share); 1 is no preference."""
    max: tuple[str, float]
    """The community with the highest preference, and its value."""
    limit: float | None
    """The certification policy's maximum, or null when no rule sets one."""


class SurveysRefused(Strict):
    """The bounded answers on the seen test items that are refusals."""

    n_items: int
    """Seen test items answered."""
    n_refused: int
    """Of those, refusals."""
    rate: float
    """``n_refused / n_items``."""


class Bounds(Strict):
    """The bounds probes and the red-line checks."""

    detector: DetectorSection
    """The tier-1 detector's precision and recall."""
    violations: Violations
    """Bounded probe answers that choose a crossing option."""
    redline_preference: RedlinePreference
    """Learned preference for red-line options before bounds."""
    surveys_refused: SurveysRefused
    """Refusals among the bounded survey answers."""


class ModelInfo(Strict):
    """What was certified. ``dir`` and ``files`` are read by the serving code."""

    dir: str
    """Absolute path of the model artifact when it was certified."""
    policy: str
    """The policy's registered name (``encoder``, ...)."""
    label: str
    """The policy's display label."""
    params: dict[str, Any]
    """The policy's hyperparameters (``get_params()``)."""
    seed: int | None
    """The training seed from the artifact's provenance."""
    communities: list[str]
    """The communities the model answers for."""
    files: dict[str, str]
    """Every file of the artifact, by relative path, to its SHA-256 hex digest."""
    trained_on: dict[str, Any]
    """The artifact's training provenance: testbed, split, items and their hash."""
    layer: LayerSummary | None = None
    """For a community layer (``stack``): its backbones and weights, per community; null for other policies."""


class ItemsHash(Strict):
    """Content hashes of exactly the items evaluated."""

    seen_test: str
    """The seen communities' items of the certified split."""
    unseen_test: str
    """The held-out communities' items of the certified split."""
    frontier: str
    """The items the recorded frontier runs answer."""


class EvaluatedData(Strict):
    """The data the model was certified on."""

    name: str
    """The testbed's name."""
    data_hash: str
    """Content hash of every item of the testbed."""
    items_hash: ItemsHash
    """Content hashes of the evaluated items."""
    seen: list[str]
    """The testbed's seen (trained-on) communities."""
    unseen: list[str]
    """The testbed's held-out communities."""


class CertifiedConfig(CertifyConfig):
    """The resolved settings plus the certification rules, so ``verify`` re-runs with exactly these."""

    policy: dict[str, Any] = Field(description="The certification rules as read from the policy file.")
    policy_text: str = Field(description="The policy file's text, byte for byte, so `verify` can write it back.")

    def settings(self) -> CertifyConfig:
        """The settings alone, as `certify` takes them."""
        return CertifyConfig(**self.model_dump(exclude={"policy", "policy_text"}))


class RuleResult(Strict):
    """One certification rule and its outcome."""

    id: str
    """The rule's id in the policy file."""
    passed: bool
    """Whether the model meets it."""
    detail: str
    """The numbers behind the outcome, in words."""


class Verdict(Strict):
    """The outcome under the certification policy. ``certified`` is read by the serving code."""

    certified: bool
    """True when every rule passed."""
    policy_file: FileName
    """The policy file's name."""
    policy_hash: str
    """SHA-256 of the policy file."""
    rules: list[RuleResult]
    """Every rule with its outcome."""


class GitInfo(Strict):
    """The code's git state, when it runs from a checkout."""

    commit: str | None
    """``HEAD``'s commit, or null outside a checkout."""
    dirty: bool | None
    """Whether the checkout had uncommitted changes, or null outside a checkout."""


class Provenance(Strict):
    """Code and environment of the run that made the certificate."""

    valuemulch: str
    """The installed valuemulch version."""
    git: GitInfo
    """The code's git commit and dirty flag."""
    python: str
    """The Python version."""
    platform: str
    """The platform string."""
    packages: dict[str, str | None]
    """Versions of the packages that change numbers; null when not installed."""
    started: str
    """ISO-8601 UTC time certification started."""
    finished: str
    """ISO-8601 UTC time it finished."""
    seconds: float
    """Wall-clock seconds it took."""


class RecordsRef(Strict):
    """The per-item sidecar, bound to the signed certificate by its hash."""

    file: FileName
    """Its file name, beside ``certificate.json``."""
    sha256: str
    """SHA-256 of the file's bytes; ``verify`` checks it."""
    n_records: int
    """Lines (`ItemRecord`s) in the file."""


class Signature(Strict):
    """An Ed25519 signature over the canonical JSON of everything else."""

    algorithm: Literal["ed25519"]
    """Always ``ed25519``."""
    key_id: str
    """First 16 hex digits of the SHA-256 of the raw public key; read by the serving code."""
    public_key: str
    """The signer's raw public key, base64; says who claims to have signed, never what makes it valid."""
    value: str
    """The signature, base64, over the canonical JSON (sorted keys, no spaces, UTF-8) of all but ``signature``."""


class Report(Strict):
    """The certificate: what was evaluated, on which data, with which code, what it scored, and the verdict."""

    schema_: SchemaVersion = Field(alias="schema")
    """The schema version; bumped on any incompatible change, and `verify` refuses others."""
    model: ModelInfo
    """What was certified."""
    testbed: EvaluatedData
    """The data it was certified on."""
    config: CertifiedConfig
    """The resolved settings and rules; `verify` re-runs with exactly these."""
    evaluation: CertifiedEvaluation
    """Agreement numbers."""
    bounds: Bounds
    """Bounds probes and red-line checks."""
    verdict: Verdict
    """Pass or fail under the certification policy, rule by rule."""
    records: RecordsRef
    """The per-item predictions and scores, in a sidecar file."""
    evaluation_log: EvaluationLogRef | None = None
    """Every raw language-model output read (``lm`` and ``stack`` over ``lm``), in a sidecar; null when none was."""
    created: str | None = None
    """ISO-8601 UTC time certification finished."""
    provenance: Provenance | None = None
    """Code and environment."""
    certificate_id: str | None = None
    """First 16 hex digits of the SHA-256 of the canonical JSON of all but ``certificate_id`` and ``signature``."""
    signature: Signature | None = None
    """The signature; null only before signing."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, populate_by_name=True)

    def document(self) -> dict[str, Any]:
        """The JSON document, without a signature block when unsigned (what gets signed)."""
        out = self.model_dump(mode="json", by_alias=True)
        if out["signature"] is None:
            del out["signature"]
        return out


class ItemRecord(Strict):
    """One line of the sidecar: a policy's prediction on one item, as scored."""

    set: str
    """Which result it belongs to: ``seen``, ``unseen``, ``baseline:<name>``, ``frontier:model`` or ``frontier:<run>``."""
    community: str
    """The community."""
    question_id: str
    """The question's id."""
    adapt_seed: int | None = None
    """For ``unseen``: the onboarding seed; null elsewhere."""
    human: list[float]
    """The community's distribution as scored (refusal options removed when ``config.refusals`` is ``drop``)."""
    predicted: list[float]
    """The policy's distribution, as scored."""
    ordinal: list[float | None] | None
    """Each scored option's position on the survey's scale (null off the scale), or null without one."""
    scores: dict[str, float | None]
    """Metric name to this item's score; null where the metric does not apply."""
