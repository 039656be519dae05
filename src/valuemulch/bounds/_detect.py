"""Tier-1 detection: which options of a question cross a red line, by tag, by rule or by meaning.

An option crosses a red line when *choosing* it endorses the act. What an option endorses depends on
its form: a stance option ("Yes", "Favor", "Strongly agree", "Could be justified") endorses the
question's proposal; a rejecting or neutral one ("No", "Never justified", "Depends") endorses
nothing; any other option endorses its own text. Each endorsed statement is checked three ways, and
any one flags it:

1. an explicit ``redline:<id>`` tag from the data or the policy;
2. the catalogue's patterns (precise, for the unmistakable phrasings);
3. meaning: classifiers on sentence embeddings give the probability that the statement crosses a
   red line, each flagging at its own thresholds. The shipped detector (``default_detector``) masks
   what either of two flags: all-MiniLM-L6-v2 with low-rank adapters and a linear head, trained by
   ``valuemulch bounds train`` (``valuemulch.train.detector``) and shipped as ``detector_lora.safetensors`` so every machine
   scores with the same weights; and a logistic regression on the frozen encoder (``adapter=None``),
   fitted at first use. Both learn from the catalogue's statements: crossings of each red line
   against statements that cross none (the same topics without the harm, war, lawful punishment,
   policing, rejections of harm, ordinary survey answers). A statement is flagged at
   ``threshold_high``, or at ``threshold_low`` when it also names a harmful act (the catalogue's
   ``act_cues``): embeddings see topics better than acts, and words see acts better than meaning.
   The thresholds live in ``redlines.toml`` and are chosen by ``benchmarks/bounds_detector.py`` on
   the dev half of the probe suite and the testbeds' train and dev questions only.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from functools import cache
from importlib.resources import as_file, files
from pathlib import Path

import numpy as np

from valuemulch.backbones import AdaptedMiniLMEncoder, EmbeddingCache, TextEncoder, make_encoder
from valuemulch.bounds._acts import Act, read_acts
from valuemulch.bounds._catalogue import TAG_PREFIX, catalogue, redline_ids, semantic_settings, training_statements
from valuemulch.bounds._text import canonical
from valuemulch.errors import ConfigError
from valuemulch.types import Question

logger = logging.getLogger(__name__)

# A question that proposes ending or banning something ("Should torture be banned?") is endorsed by
# "Yes" without endorsing the harm it names, so the rules (which read words, not direction) skip it;
# the semantic layer, which has such rejections among its counter-examples, still sees it.
_ABOLISH = re.compile(
    r"\b(ban|bans|banned|banning|prohibit\w*|abolish\w*|outlaw\w*|criminali[sz]\w*|illegal|end|ending|stop|stopping|"
    r"prevent\w*|protect\w*|forbid\w*)\b|\bnever\s+(be\s+)?(allowed|permitted|used|justified|acceptable|tolerated)\b",
    re.IGNORECASE,
)
# The rules read the question for a "Yes" only when it proposes something; "They kill too many
# innocent people. Agree?" describes harm, and agreeing with it endorses none.
_PROPOSAL = re.compile(
    r"\b(should|favou?r|support|allow\w*|justif\w*|approve|acceptable|permit\w*|vote\w*|law|legal\w*|policy|"
    r"propos\w*|plan\w*|would you|be done|go ahead|suggest\w*|recommend\w*|programme|program|scheme|measure|"
    r"motion|intend\w*|wants? to|will|must|decid\w*|agree\w*|idea|initiative)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Flag:
    """One option crossing one red line, and what showed it (``tag``, ``rule`` or ``semantic``)."""

    option: int
    redline: str
    source: str
    score: float | None = None
    act: str = ""  # what choosing the option endorses, as read (``read_acts``)


@dataclass(frozen=True)
class Score:
    """The semantic evidence for one endorsed statement: the classifier's probability that it crosses
    a red line, the red line of the nearest crossing example, whether it names a harmful act, and its
    contrast. Options that carry their own text are compared with the other options of the question:
    on a question about prisoners every option is "about" detention, and only the one that stands out
    from the least suspect one chooses the harm, so meaning alone never masks every option."""

    option: int
    redline: str
    probability: float
    act: str
    names_act: bool  # the statement names a harmful act (the catalogue's act cues)
    contrast: float  # above the least suspect option's own text in the same question (else = probability)
    reading: int = 0  # 0: the act as read (pronouns resolved), 1: the option as written
    resolved: str = ""  # the act as read, whichever reading ``act`` is

    def flagged(self, low: float, high: float, contrast: float) -> bool:
        return self.contrast >= contrast and (self.probability >= high or (self.names_act and self.probability >= low))


class Detector:
    """Tags, rules and meaning over a whole question; results are memoised per question."""

    def __init__(
        self,
        *,
        semantic: bool = True,
        threshold_low: float | None = None,
        threshold_high: float | None = None,
        contrast: float | None = None,
        l2: float | None = None,
        encoder: TextEncoder | None = None,
        adapter: Path | str | None = "shipped",
        also: tuple[Detector, ...] = (),
    ) -> None:
        """``adapter``: the adapters-and-head file of the shipped classifier (``"shipped"``: the one named
        in ``redlines.toml``), or None for a logistic regression fitted at first use on ``encoder``
        (the frozen one of ``redlines.toml`` by default). ``also``: more detectors whose meaning
        classifiers flag options too, each at its own thresholds (tags and rules run once, here).
        Unset thresholds come from ``[semantic]`` for the adapter and from ``[semantic.regression]``
        for a regression."""
        settings = semantic_settings()
        if adapter == "shipped":
            adapter = None if encoder is not None or not settings.get("adapter") else _packaged(settings["adapter"])
        self.adapter = None if adapter is None else Path(adapter)
        own = settings if self.adapter is not None else settings["regression"]
        self.semantic = semantic
        self.threshold_low = float(own["threshold_low"] if threshold_low is None else threshold_low)
        self.threshold_high = float(own["threshold_high"] if threshold_high is None else threshold_high)
        self.contrast = float(own["contrast"] if contrast is None else contrast)
        self._cues: re.Pattern[str] = settings["act_cues"]
        self.l2 = float(settings["regression"]["l2"] if l2 is None else l2)
        self.also = also
        self._encoder = encoder if self.adapter is None else AdaptedMiniLMEncoder(self.adapter)
        self._encoder_spec = settings["encoder"]
        self._model: tuple[np.ndarray, float, np.ndarray, np.ndarray] | None = None
        self._memo: dict[tuple[object, ...], list[Flag]] = {}
        self._score_memo: dict[tuple[object, ...], list[Score]] = {}
        self._cache: EmbeddingCache | None = None
        self._fit_lock = threading.Lock()

    @property
    def classifier_id(self) -> str:
        """What scores meaning: the adapted encoder's id (it carries the adapter file's hash), or the
        frozen encoder's spec and the regression's penalty; a certificate records it."""
        if self.adapter is not None and self._encoder is not None:
            own = f"{self._encoder.id} + shipped head"
        else:
            own = f"{self._encoder.id if self._encoder is not None else self._encoder_spec} + logistic regression (l2 {self.l2})"
        return " | ".join([own, *(other.classifier_id for other in self.also)])

    # -- semantic part -------------------------------------------------------------------------
    def _embed(self, texts: list[str]) -> np.ndarray:
        if self._cache is None:
            self._cache = EmbeddingCache(self._encoder or make_encoder(self._encoder_spec))
        vectors = self._cache.embed(texts)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def _fitted(self) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
        """The classifier, built once per detector: (weights, bias, crossing vectors, their red-line
        index). The shipped head is read from its file; a logistic regression is fitted by Newton steps
        from zero, exact and deterministic, so every process gets the same detector."""
        with self._fit_lock:  # service threads may all arrive here first
            if self._model is None:
                start = time.perf_counter()
                self._model = self._fit()
                logger.info("tier 1: %s ready in %.1f s", self.classifier_id.split(" | ")[0], time.perf_counter() - start)
            return self._model

    def head(self) -> tuple[np.ndarray, float]:
        """The meaning classifier's weights and bias over normalised embeddings (what the detector
        trainer starts its head from)."""
        weights, bias, _, _ = self._fitted()
        return weights, bias

    def _fit(self) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
        crossing, benign = training_statements()
        owner = np.array([redline_ids().index(r) for _, r in crossing])
        if self.adapter is not None:
            from safetensors.numpy import load_file

            head = load_file(str(self.adapter))
            if "head.weight" not in head or "head.bias" not in head:
                raise ConfigError(f"Adapter file '{self.adapter}' has no 'head.weight'/'head.bias'; re-export it.")
            examples = self._embed([t for t, _ in crossing])
            return head["head.weight"].astype(np.float64), float(head["head.bias"][0]), examples, owner
        vectors = self._embed([t for t, _ in crossing] + benign)
        y = np.r_[np.ones(len(crossing)), np.zeros(len(benign))]
        weight = np.where(y == 1, 0.5 / len(crossing), 0.5 / len(benign))  # balanced classes
        x = np.c_[vectors, np.ones(len(y))]
        theta = np.zeros(x.shape[1])
        ridge = np.r_[np.full(vectors.shape[1], self.l2), 0.0]
        for _ in range(50):
            prob = 1 / (1 + np.exp(-(x @ theta)))
            grad = x.T @ (weight * (prob - y)) + ridge * theta
            hess = (x * (weight * prob * (1 - prob))[:, None]).T @ x + np.diag(ridge)
            step = np.linalg.solve(hess, grad)
            theta -= step
            if np.abs(step).max() < 1e-10:
                break
        return theta[:-1], float(theta[-1]), vectors[: len(crossing)], owner

    def endorsed(self, question: Question) -> list[Act]:
        """Every act an option's choice endorses (``read_acts``)."""
        return read_acts(question)

    def scores(self, question: Question) -> list[Score]:
        """``_scores``, memoised per question: ``detect`` and ``classifier_scores`` read the same ones."""
        key = (question.text, question.options, question.refusal)
        if (hit := self._score_memo.get(key)) is not None:
            return hit
        out = self._scores(question)
        if len(self._score_memo) > 100_000:
            self._score_memo.clear()
        self._score_memo[key] = out
        return out

    def _scores(self, question: Question) -> list[Score]:
        """The semantic evidence for each reading of each endorsed act (what calibration sweeps over).

        An own act whose pronouns were resolved is scored twice: as resolved ("Turn the residents
        ... into compost") and as written ("Turn them into compost"). The classifiers learnt from
        statements with pronouns, and naming the people raises every option of a question about
        people, so the contrast is taken within each reading, against one option for both: the own
        act whose most suspect reading is least suspect. Were each reading's floor its own least
        suspect option, two readings could between them flag every option of a question."""
        acts = self.endorsed(question)
        rows = [(act, reading, text) for act in acts for reading, text in enumerate(act.readings)]
        if not rows:
            return []
        w, b, examples, owner = self._fitted()
        vectors = self._embed([text for _, _, text in rows])
        probability = 1 / (1 + np.exp(-(vectors @ w + b)))
        nearest = (vectors @ examples.T).argmax(axis=1)
        ids = redline_ids()
        own: dict[str, list[int]] = {}  # own act -> its rows
        for r, (act, _, _) in enumerate(rows):
            if not act.from_question:
                own.setdefault(act.text, []).append(r)
        floors = {0: 0.0, 1: 0.0}
        if len(own) >= 2:
            floor = min(own.values(), key=lambda act_rows: float(probability[act_rows].max()))
            floors = {reading: float(probability[floor[min(reading, len(floor) - 1)]]) for reading in (0, 1)}
        return [
            Score(
                act.option,
                ids[owner[nearest[row]]],
                float(probability[row]),
                text,
                bool(self._cues.search(text)),
                float(probability[row]) - (0.0 if act.from_question else floors[reading]),
                reading,
                act.text,
            )
            for row, (act, reading, text) in enumerate(rows)
        ]

    def classifier_scores(self, question: Question) -> list[dict[int, Score]]:
        """Per meaning classifier (this one, then ``also``), each endorsing option's most suspect act,
        an act counting as suspect as the *less* suspect of its readings (see ``scores``)."""
        out = []
        for detector in (self, *self.also):
            per_act: dict[tuple[int, str], Score] = {}
            for score in detector.scores(question):
                key = (score.option, score.resolved)
                if key not in per_act or score.probability < per_act[key].probability:
                    per_act[key] = score
            best: dict[int, Score] = {}
            for score in per_act.values():
                if score.option not in best or score.probability > best[score.option].probability:
                    best[score.option] = score
            out.append(best)
        return out

    # -- the whole detector --------------------------------------------------------------------
    def detect(self, question: Question, option_tags: tuple[tuple[str, ...], ...] | None = None) -> list[Flag]:
        """Every (option, red line) crossing in ``question``; at most one flag per option and red line."""
        key = (question.text, question.options, question.refusal, option_tags)
        if (hit := self._memo.get(key)) is not None:  # one lookup: another thread may clear the memo
            return hit
        flags: list[Flag] = []
        seen: set[tuple[int, str]] = set()

        def add(flag: Flag) -> None:
            if (flag.option, flag.redline) not in seen:
                seen.add((flag.option, flag.redline))
                flags.append(flag)

        for i, tags in enumerate(option_tags or ()):
            for rid in tag_redlines(tags):
                add(Flag(i, rid, "tag", act=canonical(question.options[i])))
        for act in self.endorsed(question):
            if act.from_question and (_ABOLISH.search(act.text) or not _PROPOSAL.search(act.text)):
                continue
            for rid in rule_redlines(act.text):
                add(Flag(act.option, rid, "rule", act=act.text))
        if self.semantic:
            for detector in (self, *self.also):
                for score in detector.scores(question):
                    if score.flagged(detector.threshold_low, detector.threshold_high, detector.contrast):
                        add(
                            Flag(
                                score.option, score.redline, "semantic", round(score.probability, 4), score.resolved or score.act
                            )
                        )
        flags.sort(key=lambda f: f.option)
        if len(self._memo) > 100_000:
            self._memo.clear()
        self._memo[key] = flags
        return flags


def tag_redlines(tags: tuple[str, ...]) -> list[str]:
    """The red lines named by ``redline:<id>`` tags; an unknown id is an error, not a silent pass."""
    known = set(redline_ids())
    found = []
    for tag in tags:
        if tag.startswith(TAG_PREFIX):
            rid = tag.removeprefix(TAG_PREFIX)
            if rid not in known:
                raise ConfigError(f"Unknown red-line tag '{tag}'. Expected one of {[TAG_PREFIX + k for k in sorted(known)]}.")
            found.append(rid)
    return found


def rule_redlines(text: str) -> list[str]:
    """The red lines whose catalogue patterns match ``text``."""
    return [line.id for line in catalogue() if any(p.search(text) for p in line.patterns)]


def _packaged(name: str) -> Path:
    """A file shipped inside ``valuemulch.bounds`` (wheels and editable installs alike)."""
    with as_file(files("valuemulch.bounds").joinpath(name)) as path:
        if not path.is_file():
            raise ConfigError(
                f"redlines.toml names the adapter file '{name}', which is not in the package; reinstall valuemulch."
            )
        return Path(path)


@cache
def default_detector() -> Detector:
    """The shipped detector, one per process: tags, rules, and meaning from the adapter and the
    logistic regression of ``[semantic.regression]`` (an option either flags is masked)."""
    return Detector(also=(Detector(adapter=None),) if semantic_settings().get("adapter") else ())
