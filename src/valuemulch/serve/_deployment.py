"""The model being served: resolved from the registry, checked against its signed certificate, loaded once.

What serves is decided by the certificate, never by the registry alone: the registry is a plain
SQLite file anyone with write access can edit, so its ``certified`` column is only a cache of the
verdict. The verdict that counts is the one inside the certificate, read after its id and its
signature by a trusted key are checked.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from valuemulch.bounds import BoundedAnswer, Guard, GuardJudge, OrgPolicy, apply_bounds, default_detector, load_org_policy
from valuemulch.certify import file_hashes, model_population
from valuemulch.errors import ConfigError
from valuemulch.policies import Policy
from valuemulch.serve._budget import Budget
from valuemulch.serve._middleware import ServiceError
from valuemulch.serve._registry import Entry, Registry, checked_certificate, signed_verdict
from valuemulch.settings import Settings
from valuemulch.types import Question

logger = logging.getLogger(__name__)
PREDICTION_CACHE = 4096  # distinct questions whose per-community answers stay in memory
PREDICT_CHUNK = 4  # new questions answered together between deadline checks
_Answers = tuple[dict[str, np.ndarray], np.ndarray]


@dataclass
class Deployment:
    """One model, its certificate and the tier-2 policy: swapped whole on reload, never edited."""

    model_id: str
    model_dir: Path
    policy: Policy
    communities: list[str]
    certificate_id: str | None
    certified: bool
    certificate: dict[str, Any] | None
    org_policy: OrgPolicy
    guard: GuardJudge | None = None  # a guard model judging tier 1 too (it can only add masks)

    # Shared by the copies `with_policy` makes: the model's answers do not depend on the tier-2 policy.
    _predictions: OrderedDict[tuple[object, ...], _Answers] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _predict(self, questions: list[Question], budget: Budget | None) -> list[_Answers]:
        """Every community's raw answer and the population answer per question, memoised by content:
        deployers ask the same question for many communities, and the model is frozen while it serves.
        New questions are counted against ``budget`` first, then answered a few at a time with the
        deadline checked in between (what is done stays cached for a retry)."""
        keys = [(q.text, q.options, q.ordinal) for q in questions]
        found: dict[tuple[object, ...], _Answers] = {k: v for k in keys if (v := self._predictions.get(k)) is not None}
        missing = list({k: q for q, k in zip(questions, keys, strict=True) if k not in found}.values())
        if budget is not None:
            budget.check_new(len(missing))
        for start in range(0, len(missing), PREDICT_CHUNK):
            if budget is not None:
                budget.check_time()
            chunk = missing[start : start + PREDICT_CHUNK]
            everyone = self.policy.predict_communities(self.communities, chunk)
            population = model_population(self.policy, self.communities, chunk)
            fresh: dict[tuple[object, ...], _Answers] = {
                (q.text, q.options, q.ordinal): ({c: everyone[c][i] for c in self.communities}, population[i])
                for i, q in enumerate(chunk)
            }
            found.update(fresh)
            with self._lock:
                self._predictions.update(fresh)
                while len(self._predictions) > PREDICTION_CACHE:
                    self._predictions.popitem(last=False)
        return [found[k] for k in keys]

    def answers(
        self, community: str, questions: list[Question], strength: float, budget: Budget | None = None
    ) -> list[tuple[BoundedAnswer, np.ndarray]]:
        """Bounded answers; the population answer is the mean over the model's communities, as certified.
        With a ``budget``, the deadline is checked before each question's bounds (the detector's work)."""
        out = []
        for q, (everyone, population) in zip(questions, self._predict(questions, budget), strict=True):
            if budget is not None:
                budget.check_time()
            raw = everyone[community]
            bounded = apply_bounds(
                q,
                raw,
                community,
                self.org_policy,
                population=population,
                strength=strength,
                detector=default_detector(),
                guard=self.guard,
            )
            out.append((bounded, raw))
        return out

    def with_policy(self, org_policy: OrgPolicy) -> Deployment:
        """The same model under another tier-2 policy."""
        return replace(self, org_policy=org_policy)

    def warm_up(self) -> None:
        """Load the encoder, the detector's models and the weights now, not on the first request. The
        question is new each time: a cached one would be answered from the embedding cache without
        loading the encoders at all (one row per start is what that costs the cache)."""
        nonce = uuid.uuid4().hex[:12]
        question = Question(f"warm-up-{nonce}", f"Is this service ready to answer? (start {nonce})", ("Yes", "No"))
        self.answers(self.communities[0], [question], 1.0)


def _entry(registry: Registry, model: str | None) -> Entry | None:
    if model is None:
        entry = registry.promoted()
        if entry is None:
            raise ConfigError(
                f"No promoted model in {registry.path}. Run `valuemulch registry promote ID` (ids: `valuemulch registry list`), "
                "or pass --model ID|DIR."
            )
        return entry
    if Path(model).is_dir():
        return registry.find_by_dir(model)
    return registry.get(model)


def _check_files(model_dir: Path, certificate: dict[str, Any]) -> None:
    hashes, certified_files = file_hashes(model_dir), certificate["model"]["files"]
    changed = sorted(f for f in set(hashes) | set(certified_files) if certified_files.get(f) != hashes.get(f))
    if changed:
        raise ConfigError(f"{model_dir}: files differ from its certificate ({changed}); it will not serve.")


def load_deployment(settings: Settings, model: str | None, org_policy: OrgPolicy | None = None) -> Deployment:
    """Resolve ``model`` (a registry id or a model directory; None: the promoted model) to a registered
    model whose signed certificate says CERTIFIED (or refuse), and check its files are the certified ones.

    ``org_policy`` is the tier-2 policy to serve under; None reads ``settings.serve.policy_file``.
    """
    serve = settings.serve
    if org_policy is None:
        org_policy = load_org_policy(serve.policy_file) if serve.policy_file is not None else OrgPolicy()
    entry = _entry(Registry(settings.registry), model)
    if entry is not None and entry.status == "retired":
        raise ConfigError(f"Model '{entry.id}' is retired; promote another one.")
    certificate = None
    if entry is not None:
        certificate = checked_certificate(
            Path(entry.certificate), entry.certificate_id, serve.trusted_keys, key_dir=settings.keys
        )
    certified = certificate is not None and signed_verdict(certificate)
    if not certified and not serve.allow_uncertified:
        what = f"'{entry.id}' is not certified" if entry is not None else f"{model} is not in the registry"
        raise ConfigError(
            f"{what}; only certified models serve. For development pass --allow-uncertified (answers are marked uncertified)."
        )
    model_dir = Path(entry.model_dir if entry is not None else str(model))
    if certificate is not None:
        _check_files(model_dir, certificate)
    policy = Policy.load(model_dir)
    communities = list(policy.known_communities() or [])
    if not communities:
        raise ConfigError(f"{model_dir}: this policy has no communities to answer for.")
    return Deployment(
        model_id=entry.id if entry is not None else f"dir:{model_dir}",
        model_dir=model_dir,
        policy=policy,
        communities=communities,
        certificate_id=certificate["certificate_id"] if certificate and certified else None,
        certified=certified,
        certificate=certificate,
        org_policy=org_policy,
        guard=make_guard(settings),
    )


def make_guard(settings: Settings) -> Guard | None:
    """The guard model the settings name, with its verdict cache beside the embeddings; None without one."""
    serve = settings.serve
    if serve.guard_url is None or serve.guard_model is None:
        return None
    return Guard(serve.guard_url, serve.guard_model, timeout=serve.guard_timeout, cache=settings.cache / "guard.sqlite")


class LiveDeployment:
    """The deployment the routes answer with, swapped whole (reload, promote, a new tier-2 policy) under one lock."""

    def __init__(self, deployment: Deployment) -> None:
        self._current = deployment
        self.lock = threading.Lock()

    @property
    def current(self) -> Deployment:
        return self._current

    def swap(self, deployment: Deployment) -> Deployment:
        """Serve ``deployment`` from now on; callers hold `lock` while they build it."""
        self._current = deployment
        return deployment


class Readiness:
    """Whether the service has loaded every model it needs: ``starting`` until the deployment's warm-up
    (run in a thread, so the port answers health checks meanwhile) is done, then ``ready``; ``failed``
    with the reason if it raised. Answering routes refuse with 503 until ready."""

    RETRY_AFTER_S = 2

    def __init__(self) -> None:
        self.status = "starting"
        self.error: str | None = None
        self.seconds: float | None = None
        self._thread: threading.Thread | None = None

    def start(self, deployment: Deployment) -> None:
        def warm() -> None:
            started = time.perf_counter()
            try:
                deployment.warm_up()
            except Exception as err:  # reported by /v1/health and the log, never swallowed
                logger.exception("warm-up failed")
                self.error, self.status = f"{type(err).__name__}: {err}", "failed"
                return
            self.seconds = round(time.perf_counter() - started, 3)
            logger.info("ready: models loaded in %.1f s", self.seconds)
            self.status = "ready"

        self._thread = threading.Thread(target=warm, name="valuemulch-warm-up", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the warm-up ends (for callers that serve nothing meanwhile); True when ready."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.status == "ready"

    def require(self) -> None:
        if self.status == "ready":
            return
        if self.status == "failed":
            raise ServiceError(503, "not_ready", f"The service could not load its models ({self.error}); see its log.")
        raise ServiceError(
            503,
            "starting",
            f"The service is still loading its models; retry after {self.RETRY_AFTER_S} s (GET /v1/health says when it is ready).",
            headers={"Retry-After": str(self.RETRY_AFTER_S)},
        )
