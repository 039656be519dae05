"""The CPU default: a frozen sentence encoder feeding a community-conditioned scorer over options.

Each option of a question becomes a feature vector (the question's embedding, the option's
embedding, their product, and where the option sits on the answer scale); a small MLP turns it into
a hidden vector ``h``. A community is a learned vector ``c``; the option's logit is
``w·h + (U c)·h``, so every community shares what the text says and differs by a low-rank head.
Because options are scored one by one from their text, any number of options and option texts never
seen before work. Onboarding a new community fits only its ``c`` from a few answers (``adapt``),
with a pull towards the mean community so that five answers cannot run away with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import nn

from valuemulch.backbones import ENCODER_HELP, EmbeddingCache, make_encoder
from valuemulch.errors import ConfigError
from valuemulch.policies._base import BOOLEAN, SEED, TEXT, Constraint, Policy, Progress, Rng, integer, real, register, seed_from
from valuemulch.policies._baselines import OptionTextPriorPolicy
from valuemulch.types import NormItem, Norms, Question

WEIGHTS_FILE = "weights.safetensors"
N_POSITION_FEATURES = 8


def position_features(question: Question) -> np.ndarray:
    """Where each option sits: its place among the substantive answers, the ends, refusal, the scale."""
    k = question.n_options
    refusal = np.asarray(question.refusal, dtype=bool)
    substantive = np.flatnonzero(~refusal)
    n_sub = max(len(substantive), 1)
    rank = np.zeros(k)
    rank[substantive] = np.arange(len(substantive)) / max(n_sub - 1, 1)
    scale = rank.copy()
    on_scale = np.zeros(k)
    if question.has_scale and question.ordinal is not None:
        values = [v for v in question.ordinal if v is not None]
        lo, hi = min(values), max(values)
        for i, v in enumerate(question.ordinal):
            if v is not None:
                scale[i] = (v - lo) / (hi - lo)
                on_scale[i] = 1.0
    first = np.zeros(k)
    last = np.zeros(k)
    if len(substantive):
        first[substantive[0]] = 1.0
        last[substantive[-1]] = 1.0
    feats = np.stack(
        [rank, first, last, refusal.astype(float), scale, on_scale, np.full(k, 1.0 / n_sub), np.full(k, np.log(n_sub) / 3.0)],
        axis=1,
    )
    return feats.astype(np.float32)


class _Scorer(nn.Module):
    def __init__(self, in_dim: int, hidden: int, n_communities: int, community_dim: int, dropout: float) -> None:
        super().__init__()
        self.item = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(in_dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.GELU(),
        )
        self.population = nn.Linear(hidden, 1)
        self.communities = nn.Embedding(n_communities, community_dim)
        nn.init.normal_(self.communities.weight, std=0.01)
        self.up = nn.Linear(community_dim, hidden, bias=False)

    def hidden_states(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.item(x)
        return h, self.population(h).squeeze(-1)

    @staticmethod
    def logits(
        h: torch.Tensor, shared: torch.Tensor, heads: torch.Tensor, mask: torch.Tensor, offset: torch.Tensor
    ) -> torch.Tensor:
        """Log-probabilities ``[questions, communities, options]`` for the community ``heads``;
        ``offset`` (same shape) holds the log option-text prior the network corrects, or zeros."""
        logits = offset + shared[:, None, :] + torch.einsum("qkh,ch->qck", h, heads)
        return torch.log_softmax(logits.masked_fill(~mask[:, None, :], float("-inf")), dim=-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, columns: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        h, shared = self.hidden_states(x)
        return self.logits(h, shared, self.up(self.communities.weight[columns]), mask, offset)


def _kl(target: torch.Tensor, log_pred: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean over weighted items of KL(target || pred); padded options carry zero target mass."""
    terms = torch.where(target > 0, target * (torch.log(target.clamp_min(1e-12)) - log_pred), torch.zeros_like(target))
    per_item = terms.sum(-1)
    return (per_item * weight).sum() / weight.sum().clamp_min(1.0)


def _targets(
    norms: Sequence[NormItem], question_ids: list[str], communities: list[str], k_max: int
) -> tuple[np.ndarray, np.ndarray]:
    """``targets [questions, communities, max options]`` and which items exist (weight 1) or not (0)."""
    q_index = {q: i for i, q in enumerate(question_ids)}
    c_index = {c: i for i, c in enumerate(communities)}
    targets = np.zeros((len(question_ids), len(communities), k_max), dtype=np.float32)
    weight = np.zeros((len(question_ids), len(communities)), dtype=np.float32)
    for item in norms:
        qi, ci = q_index[item.question.id], c_index[item.community]
        targets[qi, ci, : item.question.n_options] = item.distribution
        weight[qi, ci] = 1.0
    return targets, weight


@register
class EncoderPolicy(Policy):
    """Frozen sentence encoder + community-conditioned option scorer, trained with KL on human distributions."""

    name = "encoder"
    description = "Frozen sentence encoder + community-conditioned option scorer trained with KL (CPU default); supports adapt."
    supports_adapt = True
    parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "encoder": TEXT,
        "joint": BOOLEAN,
        "prior_offset": BOOLEAN,
        "hidden": integer(1),
        "community_dim": integer(1),
        "dropout": real(at_least=0, below=1),
        "epochs": integer(1),
        "batch_questions": integer(1),
        "lr": real(above=0),
        "weight_decay": real(at_least=0),
        "adapt_steps": integer(0),
        "adapt_lr": real(above=0),
        "adapt_prior": real(at_least=0),
        "seed": SEED,
    }

    def __init__(
        self,
        *,
        encoder: str = "minilm",
        joint: bool = True,
        prior_offset: bool = False,
        hidden: int = 256,
        community_dim: int = 16,
        dropout: float = 0.1,
        epochs: int = 40,
        batch_questions: int = 32,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        adapt_steps: int = 50,
        adapt_lr: float = 0.05,
        adapt_prior: float = 10.0,
        seed: int = 0,
    ) -> None:
        self.encoder = encoder
        self.joint = joint
        self.prior_offset = prior_offset
        self.hidden = hidden
        self.community_dim = community_dim
        self.dropout = dropout
        self.epochs = epochs
        self.batch_questions = batch_questions
        self.lr = lr
        self.weight_decay = weight_decay
        self.adapt_steps = adapt_steps
        self.adapt_lr = adapt_lr
        self.adapt_prior = adapt_prior
        self.seed = seed
        self._net: _Scorer | None = None
        self._cache: EmbeddingCache | None = None

    # -- features ---------------------------------------------------------------------------
    @property
    def embeddings(self) -> EmbeddingCache:
        if self._cache is None:
            self._cache = EmbeddingCache(make_encoder(self.encoder))
        return self._cache

    def _features(self, questions: Sequence[Question]) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [questions, max options, features]`` and the option mask."""
        texts = [q.text for q in questions]
        options = [o for q in questions for o in q.options]
        joint = [f"{q.text} {o}" for q in questions for o in q.options] if self.joint else []
        vectors = self.embeddings.embed(texts + options + joint)
        q_vecs, o_vecs = vectors[: len(texts)], vectors[len(texts) : len(texts) + len(options)]
        j_vecs = vectors[len(texts) + len(options) :]
        k_max = max(q.n_options for q in questions)
        dim = q_vecs.shape[1]
        blocks = 4 if self.joint else 3
        x = np.zeros((len(questions), k_max, blocks * dim + N_POSITION_FEATURES), dtype=np.float32)
        mask = np.zeros((len(questions), k_max), dtype=bool)
        start = 0
        for i, q in enumerate(questions):
            k = q.n_options
            o = o_vecs[start : start + k]
            x[i, :k, :dim] = q_vecs[i]
            x[i, :k, dim : 2 * dim] = o
            x[i, :k, 2 * dim : 3 * dim] = o * q_vecs[i]
            if self.joint:
                x[i, :k, 3 * dim : 4 * dim] = j_vecs[start : start + k]
            x[i, :k, blocks * dim :] = position_features(q)
            mask[i, :k] = True
            start += k
        return torch.from_numpy(x), torch.from_numpy(mask)

    def _offset(self, questions: Sequence[Question], communities: list[str], k_max: int) -> torch.Tensor:
        """Log option-text prior ``[questions, communities, max options]`` (zeros when switched off).

        Starting from the prior makes the network learn only what the text adds to "what share
        does an option worded like this usually get"; a community the prior has not seen (an
        onboarded one) gets the pooled prior.
        """
        offset = np.zeros((len(questions), len(communities), k_max), dtype=np.float32)
        if not self.prior_offset:
            return torch.from_numpy(offset)
        prior = OptionTextPriorPolicy()
        prior.set_state(self.prior_)
        for c, community in enumerate(communities):
            for i, p in enumerate(prior.predict(community, questions)):
                offset[i, c, : len(p)] = np.log(p)
        return torch.from_numpy(offset)

    # -- training ---------------------------------------------------------------------------
    def _fit(self, norms: Norms, *, progress: Progress | None, rng: Rng) -> None:
        if not len(norms):
            raise ConfigError("encoder policy: fit needs at least one item; the norms given are empty.")
        seed = seed_from(rng, self.seed)
        # Initialisation and dropout (and loading the encoder) draw from torch's global CPU generator,
        # which nn.Linear and nn.Dropout take no argument for: fork_rng gives this fit its own, seeded,
        # and puts the caller's state back afterwards, so nothing global is seeded or consumed.
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            self._train(norms, torch.Generator().manual_seed(seed), progress)

    def _train(self, norms: Norms, generator: torch.Generator, progress: Progress | None) -> None:
        questions = sorted(norms.questions.values(), key=lambda q: q.id)
        communities = norms.communities
        k_max = max(q.n_options for q in questions)
        targets, weight = _targets(list(norms), [q.id for q in questions], communities, k_max)
        self.prior_ = OptionTextPriorPolicy().fit(norms).state() if self.prior_offset else {}
        x, mask = self._features(questions)
        offset = self._offset(questions, communities, x.shape[1])
        t_targets, t_weight = torch.from_numpy(targets), torch.from_numpy(weight)
        net = _Scorer(x.shape[2], self.hidden, len(communities), self.community_dim, self.dropout)
        optimiser = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        everyone = torch.arange(len(communities))
        losses = []
        for epoch in range(self.epochs):
            net.train()
            order = torch.randperm(len(questions), generator=generator)
            total = 0.0
            for start in range(0, len(questions), self.batch_questions):
                rows = order[start : start + self.batch_questions]
                loss = _kl(t_targets[rows], net(x[rows], mask[rows], everyone, offset[rows]), t_weight[rows])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(rows)
            losses.append(total / len(questions))
            if progress is not None:
                progress(epoch + 1, self.epochs)
        net.eval()
        self._net = net
        self.communities_ = communities
        self.adapted_: dict[str, dict[str, Any]] = {}
        self.encoder_id_ = self.embeddings.encoder.id
        self.train_loss_ = losses

    # -- onboarding -------------------------------------------------------------------------
    def adapt(self, community: str, norms: Norms, *, k: int = 20, seed: int = 0, progress: Progress | None = None) -> Self:
        """Fit a new community's vector from ``k`` of its answered questions; nothing else moves.

        The ``k`` questions are drawn with ``seed`` from the community's items in ``norms`` and
        recorded, so that an evaluation on the same norms can skip them.
        """
        net = self._require_net()
        if community in self.communities_:
            raise ConfigError(
                f"Community '{community}' is already known to this model; adapt onboards a new community "
                f"(known: {len(self.communities_)} communities)."
            )
        own = sorted((i for i in norms if i.community == community), key=lambda i: i.question.id)
        if not own:
            found = norms.communities
            raise ConfigError(
                f"No items for community '{community}' in the norms given (they hold {found[:8]}{' ...' if len(found) > 8 else ''}); "
                "pass --community with one of those ids."
            )
        if k < 1 or k > len(own):
            raise ConfigError(f"--k must be between 1 and {len(own)} (the answered questions of '{community}'), got {k}.")
        rng = np.random.default_rng(seed)
        chosen = [own[i] for i in sorted(rng.choice(len(own), size=k, replace=False))]
        # Nothing below draws random numbers (the net is in eval mode; Adam is deterministic).
        questions = [i.question for i in chosen]
        x, mask = self._features(questions)
        offset = self._offset(questions, [community], x.shape[1])
        targets, _ = _targets(chosen, [q.id for q in questions], [community], x.shape[1])
        t_targets, t_weight = torch.from_numpy(targets), torch.ones((k, 1))
        with torch.no_grad():
            prior = net.communities.weight.mean(0, keepdim=True)
            h, shared = net.hidden_states(x)
        vector = nn.Parameter(prior.clone())
        optimiser = torch.optim.Adam([vector], lr=self.adapt_lr)
        loss = torch.tensor(0.0)
        for step in range(self.adapt_steps):
            log_pred = net.logits(h, shared, net.up(vector), mask, offset)
            loss = _kl(t_targets, log_pred, t_weight) + self.adapt_prior * ((vector - prior) ** 2).sum() / k
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if progress is not None:
                progress(step + 1, self.adapt_steps)
        with torch.no_grad():
            net.communities.weight = nn.Parameter(torch.cat([net.communities.weight, vector.detach()]))
        self.communities_ = [*self.communities_, community]
        self.adapted_ = {
            **self.adapted_,
            community: {"k": k, "seed": seed, "questions": [q.id for q in questions], "final_loss": float(loss.detach())},
        }
        return self

    # -- prediction -------------------------------------------------------------------------
    def _require_net(self) -> _Scorer:
        self.check_fitted()
        if self._net is None:
            raise ConfigError("encoder policy: the state is set but the weights are missing; load it with Policy.load(DIR).")
        return self._net

    def known_communities(self) -> list[str]:
        self.check_fitted()
        return list(self.communities_)

    def covers(self, community: str, question: Question) -> bool:
        return self.uncovered_reason(community, question) is None

    def uncovered_reason(self, community: str, question: Question) -> str | None:
        if community not in self.communities_:
            return "community unknown to the model (onboard it with `valuemulch adapt`)"
        if community in self.adapted_ and question.id in set(self.adapted_[community]["questions"]):
            return "used to adapt the model to its community"
        return None

    def predict(self, community: str, questions: Sequence[Question]) -> list[np.ndarray]:
        self._require_net()
        if community not in self.communities_:
            raise ConfigError(
                f"Community '{community}' is unknown to this model (it knows {len(self.communities_)}); "
                "onboard it with `valuemulch adapt --community ...`."
            )
        return self.predict_communities([community], questions)[community]

    def predict_communities(self, communities: Sequence[str], questions: Sequence[Question]) -> dict[str, list[np.ndarray]]:
        """One forward pass for many communities: the features and hidden states are shared."""
        net = self._require_net()
        unknown = [c for c in communities if c not in self.communities_]
        if unknown:
            raise ConfigError(f"Communities {unknown[:5]} are unknown to this model (it knows {len(self.communities_)}).")
        if not questions or not communities:
            return {c: [] for c in communities}
        x, mask = self._features(questions)
        columns = torch.tensor([self.communities_.index(c) for c in communities])
        offset = self._offset(questions, list(communities), x.shape[1])
        with torch.no_grad():
            log_pred = net(x, mask, columns, offset).double()
        out: dict[str, list[np.ndarray]] = {}
        for j, c in enumerate(communities):
            rows = []
            for i, q in enumerate(questions):
                p = torch.exp(log_pred[i, j, : q.n_options]).numpy()
                rows.append(p / p.sum())
            out[c] = rows
        return out

    # -- persistence ------------------------------------------------------------------------
    def save_files(self, directory: Path) -> None:
        from safetensors.torch import save_file

        net = self._require_net()
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(directory / WEIGHTS_FILE))

    def load_files(self, directory: Path) -> None:
        from safetensors.torch import load_file

        path = directory / WEIGHTS_FILE
        if not path.is_file():
            raise ConfigError(f"{directory}: {WEIGHTS_FILE} is missing; the artifact is incomplete, train it again.")
        encoder = make_encoder(self.encoder)
        if encoder.id != self.encoder_id_:
            raise ConfigError(
                f"{directory}: trained with encoder '{self.encoder_id_}', but '{self.encoder}' now gives '{encoder.id}'. "
                f"Install the encoder it was trained with ({ENCODER_HELP})."
            )
        weights = load_file(str(path))
        net = _Scorer(weights["item.1.weight"].shape[1], self.hidden, len(self.communities_), self.community_dim, self.dropout)
        net.load_state_dict(weights)
        net.eval()
        self._net = net
