"""The ``lm`` policy: a real language model, steered toward a community, read as a distribution."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from valuemulch.backbones import (
    BACKENDS,
    SMOLLM2,
    CacheStats,
    CausalLM,
    HFCausalLM,
    OpenAIChatLM,
    Prompt,
    ResponseCache,
    Retries,
    model_id,
    ray_causal_lm,
    response_caching,
)
from valuemulch.errors import ConfigError, OutputParseError
from valuemulch.policies._base import (
    BOOLEAN,
    OPTIONAL_TEXT,
    SEED,
    TEXT,
    Constraint,
    Policy,
    Progress,
    Rng,
    integer,
    one_of,
    real,
    register,
    seed_from,
)
from valuemulch.policies._lm._extract import letter_distribution, parse_verbalized, sampled_distribution
from valuemulch.policies._lm._fewshot import ShotBank
from valuemulch.policies._lm._log import active_log, request_key
from valuemulch.policies._lm._lora import Example, load_adapter, new_adapter, train_lora
from valuemulch.policies._lm._permute import Order, average_orders, option_orders, permute
from valuemulch.policies._lm._prompts import METHODS, STEERINGS, Method, Steering, build_prompt, option_letters
from valuemulch.types import Norms, Question

logger = logging.getLogger(__name__)

ADAPTER_DIR = "lora"
SAMPLE_TOKENS = 8  # room for "B. <option text>"; the letter comes first


@register
class LMPolicy(Policy):
    """A causal LM asked, per community, how that community would answer.

    Args:
        model: ``"smollm2"`` (SmolLM2-135M-Instruct, offline), a Hugging Face id or path, or the model
            name an endpoint serves when ``base_url`` is set.
        base_url: the API root of an OpenAI-compatible server (``http://host:8000/v1``); None runs
            ``model`` locally.
        api_key_env: the environment variable that holds the endpoint's API key (read per request,
            never stored in the artifact).
        concurrency, timeout, retries: an endpoint's requests in flight at once, seconds to wait for
            one, and tries per request (timeouts, lost connections, 408/429/5xx; backoff with jitter
            that honours Retry-After).
        cache: keep every endpoint response in ``<cache>/lm_responses.sqlite`` (``VALUEMULCH_CACHE``)
            and never ask for one twice; False asks the endpoint every time.
        revision: the served model's revision or weights-file hash, when known; part of the cache
            key, so changed weights behind the same name are asked again.
        method: ``logprobs`` (next-token probabilities of the letters), ``verbalized`` (the model
            writes JSON percentages, greedy) or ``sampled`` (shares of ``n_samples`` sampled answers).
        steering: ``persona`` (OpinionQA-style "Answer as if ..."), ``few-shot`` (the persona plus the
            community's own answer distributions on the ``shots`` most similar training questions,
            Meister et al.'s few-shot setting; ``_fewshot``) or ``none`` (the unsteered model).
        shots: how many examples ``few-shot`` steering shows.
        permutations: option orders averaged per question (1 = survey order only; refusals such as
            "Refused" stay last; see ``_permute``).
        n_samples, temperature, sample_alpha: the ``sampled`` method's sample count, sampling
            temperature and add-alpha smoothing.
        batch_size: prompts per forward pass of a local model; 0 (the default) groups prompts of
            similar length up to a token budget per pass (``backbones._batching``).
        lora_steps: LoRA fine-tuning steps on the training norms (0 = zero-shot).
        lora_rank, lora_lr, lora_batch_size, lora_max_items: adapter rank, AdamW learning rate,
            examples per step, and how many (community, question) items to train on at most.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda[:N]``.
        backend, workers: ``local`` runs the model in this process; ``ray`` spreads the prompts over
            ``workers`` Ray actors, one loaded model each, a GPU each when the cluster has them
            (``backbones._ray``; needs ``pip install 'valuemulch[ray]'``). Same answers either way.
        seed: seeds the sampled answers, the adapter initialisation and the training batches.
        on_parse_error: ``raise`` (default), or ``uniform``: a reply that cannot be read counts as a
            uniform answer for that option order and is counted in ``parse_fallbacks_``. (A sampled
            answer that names no option is left out of the shares and counted in ``unparsed_samples_``.)

    Every community is covered: one without a known phrasing is named in a generic persona.
    """

    name = "lm"
    description = "A real LLM (SmolLM2 offline, any HF causal LM, or an OpenAI-compatible endpoint) steered by persona; log-prob, verbalized or sampled; optional LoRA fine-tuning."
    parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "model": TEXT,
        "base_url": OPTIONAL_TEXT,
        "api_key_env": TEXT,
        "concurrency": integer(1),
        "timeout": real(above=0),
        "retries": integer(1),
        "cache": BOOLEAN,
        "revision": OPTIONAL_TEXT,
        "method": one_of(*METHODS),
        "steering": one_of(*STEERINGS),
        "shots": integer(1),
        "permutations": integer(1),
        "n_samples": integer(1),
        "temperature": real(above=0),
        "sample_alpha": real(at_least=0),
        "batch_size": integer(0),
        "lora_steps": integer(0),
        "lora_rank": integer(1),
        "lora_lr": real(above=0),
        "lora_batch_size": integer(1),
        "lora_max_items": integer(1),
        "device": TEXT,
        "backend": one_of(*BACKENDS),
        "workers": integer(1),
        "seed": SEED,
        "on_parse_error": one_of("raise", "uniform"),
    }

    def __init__(
        self,
        *,
        model: str = SMOLLM2,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 4,
        timeout: float = 120.0,
        retries: int = 5,
        cache: bool = True,
        revision: str | None = None,
        method: Method = "logprobs",
        steering: Steering = "persona",
        shots: int = 5,
        permutations: int = 2,
        n_samples: int = 20,
        temperature: float = 1.0,
        sample_alpha: float = 0.5,
        batch_size: int = 0,
        lora_steps: int = 0,
        lora_rank: int = 8,
        lora_lr: float = 5e-4,
        lora_batch_size: int = 8,
        lora_max_items: int = 64,
        device: str = "auto",
        backend: str = "local",
        workers: int = 1,
        seed: int = 0,
        on_parse_error: str = "raise",
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout = timeout
        self.retries = retries
        self.cache = cache
        self.revision = revision
        self.method = method
        self.steering = steering
        self.shots = shots
        self.permutations = permutations
        self.n_samples = n_samples
        self.temperature = temperature
        self.sample_alpha = sample_alpha
        self.batch_size = batch_size
        self.lora_steps = lora_steps
        self.lora_rank = lora_rank
        self.lora_lr = lora_lr
        self.lora_batch_size = lora_batch_size
        self.lora_max_items = lora_max_items
        self.device = device
        self.backend = backend
        self.workers = workers
        self.seed = seed
        self.on_parse_error = on_parse_error
        self._lm: CausalLM | None = None  # the backend; with an adapter once LoRA-fitted or loaded

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.lora_steps and self.base_url:
            raise ConfigError("LoRA fine-tuning needs local weights; drop base_url or set lora_steps=0 for an endpoint.")
        if self.backend == "ray" and (self.base_url or self.lora_steps):
            raise ConfigError(
                "backend='ray' spreads a local model's prompts over actors; an endpoint (base_url) has its own concurrency, "
                f"and a LoRA adapter stays in this process. Use backend='local' with base_url={self.base_url!r}, "
                f"lora_steps={self.lora_steps}."
            )
        if self.backend == "local" and self.workers != 1:
            raise ConfigError(
                f"workers={self.workers} needs backend='ray' (the local backend is one process); set both, or workers=1."
            )

    # -- backend ------------------------------------------------------------------------------
    def _base(self, *, cached: bool = True) -> CausalLM:
        """A new backend; ``cached=False`` asks an endpoint past the response cache (a re-query)."""
        if not cached and not self.base_url:
            return self._backend()  # a local model has no response cache to bypass
        if self.base_url:
            return OpenAIChatLM(
                self.base_url,
                self.model,
                api_key_env=self.api_key_env,
                timeout=self.timeout,
                concurrency=self.concurrency,
                retries=Retries(attempts=self.retries),
                cache=ResponseCache() if self.cache and cached and response_caching() else None,
                revision=self.revision,
            )
        if self.backend == "ray":
            return ray_causal_lm(self.model, self.device, workers=self.workers, batch_size=self.batch_size)
        return self._local()

    def cache_stats(self) -> CacheStats | None:
        """This policy's endpoint-cache hits and misses so far (None: a local model, or ``cache=False``)."""
        lm = self._lm
        return lm.cache.stats() if isinstance(lm, OpenAIChatLM) and lm.cache is not None else None

    def _backend(self) -> CausalLM:
        if self._lm is None:
            self._lm = self._base()
        return self._lm

    def _local(self) -> HFCausalLM:
        return HFCausalLM.load(self.model, self.device, batch_size=self.batch_size)

    # -- fit ----------------------------------------------------------------------------------
    def _fit(self, norms: Norms, *, progress: Progress | None, rng: Rng) -> None:
        """Record the communities; with ``lora_steps > 0``, fine-tune an adapter on (a sample of) the norms.

        Every (item, option order) is one training example, so the adapter also learns not to prefer
        letters. ``progress(step, lora_steps)`` reports training. ``rng`` seeds what fitting draws (the
        item sample, the adapter's initialisation, the batches); sampled answers at predict time are
        seeded per prompt by the ``seed`` parameter.
        """
        self._lm = None
        self.communities_ = norms.communities
        self._bank = ShotBank.from_norms(norms, self.shots) if self.steering == "few-shot" else None
        self.shot_bank_ = None if self._bank is None else self._bank.to_state()
        self.model_id_ = (
            OpenAIChatLM(self.base_url, self.model, revision=self.revision).id if self.base_url else model_id(self.model)
        )
        self.parse_fallbacks_ = 0
        self.unparsed_samples_ = 0
        self.lora_losses_: list[float] = []
        if self.lora_steps:
            if not len(norms):
                raise ConfigError("LMPolicy with lora_steps > 0 needs training norms; got none. Fit on a non-empty split.")
            seed = seed_from(rng, self.seed)
            sample = np.random.default_rng(seed)
            items = list(norms)
            if len(items) > self.lora_max_items:
                items = [items[i] for i in sorted(sample.choice(len(items), self.lora_max_items, replace=False))]
            # The adapter learns the letter distribution under the logprobs prompt, whatever the method;
            # the verbalized and sampled methods then read the same adapted model.
            examples = [
                Example(
                    self._prompt(item.community, item.question, order, method="logprobs"),
                    permute(item.distribution, order),
                )
                for item in items
                for order in self._orders(item.question)
            ]
            lm = new_adapter(self._local(), rank=self.lora_rank, seed=seed)
            self.lora_losses_ = train_lora(
                lm,
                examples,
                steps=self.lora_steps,
                lr=self.lora_lr,
                batch_size=self.lora_batch_size,
                seed=seed,
                progress=progress,
            )
            self._lm = lm

    def known_communities(self) -> list[str]:
        self.check_fitted()
        return list(self.communities_)

    def save_files(self, directory: Path) -> None:
        if isinstance(self._lm, HFCausalLM) and self.lora_steps:
            self._lm.model.save_pretrained(str(directory / ADAPTER_DIR), save_embedding_layers=False)  # LoRA never touches them

    def load_files(self, directory: Path) -> None:
        if not self.lora_steps:
            return
        path = directory / ADAPTER_DIR
        if not path.is_dir():
            raise ConfigError(
                f"{directory}: a LoRA-fitted lm policy needs its adapter in {path}; the artifact is incomplete, re-save it."
            )
        self._lm = load_adapter(self._local(), str(path))

    # -- predict ------------------------------------------------------------------------------
    def _orders(self, question: Question) -> list[Order]:
        """The option orders to average; refusals stay last (see ``_permute``)."""
        return option_orders(question.n_options, self.permutations, fixed=[i for i, r in enumerate(question.refusal) if r])

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        bank = state.get("shot_bank_")
        self._bank = None if bank is None else ShotBank.from_state(bank)

    def prompt(self, community: str, question: Question) -> Prompt:
        """The prompt this policy asks for ``community`` on ``question``, in survey order (what a
        report shows; other option orders differ only in the lettering of the asked question)."""
        self.check_fitted()
        return self._prompt(community, question, tuple(range(question.n_options)))

    def _prompt(self, community: str, question: Question, order: Order, method: Method | None = None) -> Prompt:
        shots = self._bank.shots(community, question) if self._bank is not None else []
        return build_prompt(community, question, order, method=method or self.method, steering=self.steering, shots=shots)

    def predict(self, community: str, questions: Sequence[Question]) -> list[np.ndarray]:
        self.check_fitted()
        orders = [self._orders(q) for q in questions]
        shown = iter(self._read([(community, q, o) for q, q_orders in zip(questions, orders, strict=True) for o in q_orders]))
        return [average_orders([next(shown) for _ in q_orders], q_orders) for q_orders in orders]

    def _read(self, jobs: Sequence[tuple[str, Question, Order]]) -> list[np.ndarray]:
        """One distribution over the shown letters per (community, question, order).

        Under an active evaluation log (``_log``), every raw output is recorded with its prompt, or,
        when the log is replayed, read back from it instead of asking the model (except for the log's
        ``live`` items, which are asked again, past any cache).
        """
        prompts = [self._prompt(c, q, o) for c, q, o in jobs]
        letters = [option_letters(q.n_options) for _, q, _ in jobs]
        seeds = [self._seed(c, q, o) for c, q, o in jobs]
        log = active_log()
        keys = [request_key(self._request(p, s)) for p, s in zip(prompts, seeds, strict=True)]
        if log is not None and log.replaying:
            ask = [i for i, (c, q, _) in enumerate(jobs) if log.is_live(c, q.id)]
            raw: list[Any] = [None] * len(jobs)
            for i, (c, q, _) in enumerate(jobs):
                if not log.is_live(c, q.id):
                    raw[i] = self._from_log(log.output(keys[i], community=c, question_id=q.id)["raw"])
            live = self._ask(self._base(cached=False), [prompts[i] for i in ask], [letters[i] for i in ask], [seeds[i] for i in ask])
            for i, r in zip(ask, live, strict=True):
                raw[i] = r
            log.asked_live += len(ask)
        else:  # asked once per run: the tradeoff, the frontier and the population repeat the test's requests
            known = [log.known(k) if log is not None else None for k in keys]
            raw = [None if e is None else self._from_log(e["raw"]) for e in known]
            ask = [i for i, e in enumerate(known) if e is None]
            fresh = self._ask(self._backend(), [prompts[i] for i in ask], [letters[i] for i in ask], [seeds[i] for i in ask])
            for i, r in zip(ask, fresh, strict=True):
                raw[i] = r
        if (stats := self.cache_stats()) is not None:
            logger.info("lm policy: %d prompts; endpoint responses so far: %s", len(prompts), stats)
        out = []
        for i, ((c, q, o), r, x) in enumerate(zip(jobs, raw, letters, strict=True)):
            distribution, error = self._parse(r, x)
            if log is not None and not log.replaying:
                log.record(self._entry(keys[i], c, q, o, prompts[i], r, error))
            out.append(distribution)
        return out

    def _ask(self, lm: CausalLM, prompts: list[Prompt], letters: list[str], seeds: list[int]) -> list[Any]:
        """The backend's raw outputs: letter probabilities, a greedy JSON reply, or sampled replies."""
        if not prompts:
            return []
        if self.method == "logprobs":
            return list(lm.letter_probs(prompts, [len(x) for x in letters]))
        if self.method == "verbalized":
            # '"B": 25, ' is ~6 tokens; small models write 0.000000 (10); generation stops at "}" anyway
            max_tokens = 16 * max(len(x) for x in letters) + 16
            return [r[0] for r in lm.generate(prompts, n=1, temperature=0, max_new_tokens=max_tokens, seeds=seeds, stop=["}"])]
        return list(lm.generate(prompts, n=self.n_samples, temperature=self.temperature, max_new_tokens=SAMPLE_TOKENS, seeds=seeds))

    def _request(self, prompt: Prompt, seed: int) -> dict[str, Any]:
        """What decides a raw output: the model, the method and its settings, the prompt, the seed."""
        request: dict[str, Any] = {
            "model": self.model_id_,
            "method": self.method,
            "messages": [list(m) for m in prompt.messages],
            "prefill": prompt.prefill,
        }
        if self.lora_steps:
            request["lora"] = [self.lora_steps, self.lora_rank, self.lora_lr, self.lora_batch_size, self.lora_max_items, self.seed]
        if self.method == "sampled":
            request.update(n=self.n_samples, temperature=self.temperature, max_tokens=SAMPLE_TOKENS, seed=seed)
        return request

    def _from_log(self, raw: Any) -> Any:
        return np.asarray(raw, dtype=np.float64) if self.method == "logprobs" else raw

    def _entry(
        self, key: str, community: str, question: Question, order: Order, prompt: Prompt, raw: Any, error: str | None
    ) -> dict[str, Any]:
        return {
            "key": key,
            "model": self.model_id_,
            "method": self.method,
            "community": community,
            "question_id": question.id,
            "order": list(order),
            "prompt": {"messages": [list(m) for m in prompt.messages], "prefill": prompt.prefill},
            "raw": raw.tolist() if isinstance(raw, np.ndarray) else raw,
            "parse_error": error,
        }

    def _read_samples(self, answers: list[str], letters: str) -> np.ndarray:
        distribution, unparsed = sampled_distribution(answers, letters, self.sample_alpha)
        self.unparsed_samples_ += unparsed  # answers that named no option are left out of the shares, and counted
        return distribution

    def _parse(self, raw: Any, letters: str) -> tuple[np.ndarray, str | None]:
        """The distribution a raw output gives, and the parse error when it gave none (``uniform``)."""
        read: Callable[[Any, str], np.ndarray]
        if self.method == "logprobs":
            read = letter_distribution
        elif self.method == "verbalized":
            read = parse_verbalized
        else:
            read = self._read_samples
        try:
            return np.asarray(read(raw, letters), dtype=np.float64), None
        except OutputParseError as err:
            if self.on_parse_error == "raise":
                raise
            self.parse_fallbacks_ += 1
            logger.warning("lm policy: unreadable reply scored as uniform (%s)", err)
            return np.full(len(letters), 1.0 / len(letters)), str(err)

    def _seed(self, community: str, question: Question, order: Order) -> int:
        """A seed per prompt, so a sampled answer does not depend on what else is predicted with it."""
        key = f"{self.seed}\x1f{community}\x1f{question.id}\x1f{order}".encode()
        return int.from_bytes(hashlib.sha256(key).digest()[:4], "big")
