"""The domain nouns: Community, Question, Distribution, NormItem and Norms, and ``pool``.

These are plain, validated containers. Everything else in ValueMulch (importers, splits, policies,
metrics) speaks in these types, so their invariants are checked once, here.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from valuemulch.errors import DataError

#: Options whose text says "no substantive answer". They are flagged, kept in distributions, and
#: removed (with renormalisation) only by metrics that need a scale, such as representativeness.
#: The tail ``(?:\s*\.)?\s*$`` accepts what ``\s*\.?\s*$`` did, without its two adjacent ``\s*``
#: that made a request's option "Refused" + spaces + "x" cost time quadratic in its length.
REFUSAL_PATTERN = re.compile(
    r"^\s*(refused|dk/refused|don'?t know|dk|no answer|dk/ref|don'?t know/refused)(?:\s*\.)?\s*$",
    re.IGNORECASE,
)

#: Distributions are accepted as summing to one within this tolerance before renormalisation is counted.
SUM_TOLERANCE = 1e-6


@lru_cache(maxsize=1 << 16)
def normalise_text(text: str) -> str:
    """Canonical form of a question or option text: NFKC, lower case, single spaces, no edge space.

    Splits and ids hash this form, so that cosmetic differences between sources (curly quotes,
    double spaces, case) never move a question to another split.
    """
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return " ".join(text.lower().split())


def text_hash(text: str) -> str:
    """Hex SHA-256 of the normalised text."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


def is_refusal(option: str) -> bool:
    """Whether an option is a non-answer such as "Refused" or "DK/Refused"."""
    return bool(REFUSAL_PATTERN.match(option))


@dataclass(frozen=True, slots=True)
class Community:
    """A group whose views we model, e.g. ``Britain`` or ``POLPARTY:Democrat``."""

    id: str
    attribute: str | None = None  # "POLPARTY" for "POLPARTY:Democrat"; None for countries

    @classmethod
    def parse(cls, community_id: str) -> Community:
        attribute, sep, _ = community_id.partition(":")
        return cls(community_id, attribute if sep else None)


@dataclass(frozen=True, slots=True)
class Question:
    """A multiple-choice question with its options in survey order.

    ``ordinal[i]`` is the position of option ``i`` on the survey's scale, or None when the option is
    not on the scale (a refusal, "Not sure"). ``ordinal`` itself is None when the survey gives no
    scale. ``refusal[i]`` flags non-answers.
    """

    id: str
    text: str
    options: tuple[str, ...]
    ordinal: tuple[float | None, ...] | None = None
    refusal: tuple[bool, ...] = ()
    source: str = "unknown"

    def __post_init__(self) -> None:
        where = f"question '{self.id}'"
        if not self.id:
            raise DataError(where, field="question_id", expected="a non-empty id", got=self.id, fix="give every question an id")
        if not self.text or not self.text.strip():
            raise DataError(
                where, field="question", expected="non-empty question text", got=self.text, fix="add the question's wording"
            )
        if len(self.options) < 2:
            raise DataError(
                where,
                field="options",
                expected="at least 2 options",
                got=list(self.options),
                fix="list every answer option in survey order",
            )
        if any(not isinstance(o, str) or not o.strip() for o in self.options):
            raise DataError(
                where, field="options", expected="non-empty option strings", got=list(self.options), fix="remove empty options"
            )
        if len(set(self.options)) != len(self.options):
            raise DataError(
                where, field="options", expected="distinct options", got=list(self.options), fix="remove the repeated option"
            )
        if self.ordinal is not None:
            self._check_per_option(
                "ordinal",
                self.ordinal,
                "ordinal positions (one per option, null off the scale)",
                "give one position per option, or null for the whole field when there is no scale",
            )
        if not self.refusal:
            object.__setattr__(self, "refusal", tuple(is_refusal(o) for o in self.options))
        else:
            self._check_per_option("refusal", self.refusal, "flags", "give one flag per option")

    def _check_per_option(self, name: str, values: Sequence[object], what: str, fix: str) -> None:
        """A field with one entry per option must have exactly as many entries as there are options."""
        if len(values) != len(self.options):
            raise DataError(
                f"question '{self.id}'", field=name, expected=f"{len(self.options)} {what}", got=list(values), fix=fix
            )

    @property
    def n_options(self) -> int:
        return len(self.options)

    @property
    def has_scale(self) -> bool:
        """True when at least two options sit at distinct positions of an ordinal scale."""
        if self.ordinal is None:
            return False
        values = {v for v in self.ordinal if v is not None}
        return len(values) >= 2


@dataclass(frozen=True, slots=True)
class NormItem:
    """One community's answer distribution on one question (the training signal and ground truth)."""

    community: str
    question: Question
    distribution: np.ndarray
    n: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.community, self.question.id)


class Distribution:
    """A probability distribution over a question's options, validated once, by one rule.

    The rule: one value per option, every value finite and non-negative, and the values sum to 1
    within ``SUM_TOLERANCE``. With ``renormalise=True`` the caller asks for any positive mass to be
    rescaled first (``renormalised`` then says whether the sum was off by more than the tolerance,
    so loaders can count it); without it, a sum off by more than the tolerance is an error. Every
    check in ValueMulch that a distribution is valid (loaders, evaluation, bounds) is this one.

    ``probs`` is float64: the values as given when no renormalisation was asked for (so the
    numbers never move), else the values divided by their sum.
    """

    __slots__ = ("probs", "renormalised")

    def __init__(
        self,
        values: Sequence[float] | np.ndarray,
        options: Question | int,
        *,
        renormalise: bool = False,
        where: str = "distribution",
    ) -> None:
        n_options = options.n_options if isinstance(options, Question) else options
        arr = _as_vector(values, n_options, where)
        total = float(arr.sum())
        if renormalise:
            if total <= 0:
                raise DataError(
                    where,
                    field="distribution",
                    expected="some positive mass",
                    got=arr.tolist(),
                    fix="drop the item or give its real shares",
                )
            arr = arr / total
        elif abs(total - 1.0) > SUM_TOLERANCE:
            raise DataError(
                where,
                field="distribution",
                expected=f"values summing to 1 (within {SUM_TOLERANCE:g})",
                got=arr.tolist(),
                fix="divide the values by their sum, or pass renormalise=True where rescaling is intended",
            )
        self.probs: np.ndarray = arr
        self.renormalised: bool = renormalise and abs(total - 1.0) > SUM_TOLERANCE

    def __len__(self) -> int:
        return len(self.probs)

    def __repr__(self) -> str:
        return f"Distribution({self.probs.tolist()})"


def _as_vector(values: Sequence[float] | np.ndarray, n_options: int, where: str) -> np.ndarray:
    """``values`` as a float64 vector of ``n_options`` finite, non-negative numbers, or a DataError."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(
            where,
            field="distribution",
            expected="a list of numbers",
            got=values,
            fix="write the distribution as numbers, e.g. [0.2, 0.8]",
        ) from None
    if arr.ndim != 1 or arr.shape[0] != n_options:
        raise DataError(
            where,
            field="distribution",
            expected=f"{n_options} values, one per option",
            got=np.atleast_1d(arr).tolist(),
            fix="give one probability per option, in the order of 'options'",
        )
    if not np.all(np.isfinite(arr)):
        raise DataError(
            where, field="distribution", expected="finite numbers", got=arr.tolist(), fix="replace NaN/inf by a real share"
        )
    if np.any(arr < 0):
        raise DataError(
            where, field="distribution", expected="non-negative mass", got=arr.tolist(), fix="shares cannot be negative"
        )
    return arr


def check_distribution(values: Sequence[float] | np.ndarray, n_options: int, where: str) -> tuple[np.ndarray, bool]:
    """What loaders keep of an input distribution: the normalised values and whether they needed it.

    Non-negative mass that does not sum to one is renormalised (the caller counts it); negative,
    NaN, infinite or all-zero mass is an error (``Distribution``'s rule, with renormalisation).
    """
    checked = Distribution(values, n_options, renormalise=True, where=where)
    return checked.probs, checked.renormalised


def pool(
    distributions: Sequence[np.ndarray] | Sequence[Sequence[float]], counts: Sequence[float | None] | None = None
) -> np.ndarray:
    """The population's answer from its groups' answers: their mean, weighted by respondents.

    ``counts[i]`` is group i's number of respondents; a group without one (None or 0) weighs 1, and
    so does every group when ``counts`` is None. Pooling the groups of one attribute (every age
    band) with their counts then gives the whole population.
    """
    if not len(distributions):
        raise DataError("pool", field="distributions", expected="at least one distribution", got=[], fix="pool a non-empty set")
    arr = np.asarray(distributions, dtype=np.float64)
    if counts is not None:
        if len(counts) != len(arr):  # broadcasting would silently take one count for every group
            raise ValueError(f"pool: {len(counts)} counts for {len(arr)} distributions")
        arr = arr * np.asarray([c if c else 1.0 for c in counts], dtype=np.float64)[:, None]
    total = arr.sum(axis=0)
    return np.asarray(total / total.sum())


@dataclass
class Norms:
    """Many communities' distributions over many questions, with at most one item per (community, question).

    Questions are shared: the same id always means the same text and options.
    """

    items: list[NormItem] = field(default_factory=list)
    renormalised: int = 0  # how many input distributions did not sum to one and were rescaled
    source: str = ""
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count of input records not loaded

    def __post_init__(self) -> None:
        self._index: dict[tuple[str, str], NormItem] = {}
        self._questions: dict[str, Question] = {}
        for item in self.items:
            self._check_and_index(item)

    def _check_and_index(self, item: NormItem) -> None:
        if item.key in self._index:
            raise DataError(
                f"{self.source or 'norms'}: community '{item.community}', question '{item.question.id}'",
                expected="one item per (community, question)",
                got="a duplicate",
                fix="remove or merge the repeated item",
            )
        known = self._questions.get(item.question.id)
        if known is not None and (
            known.options != item.question.options or normalise_text(known.text) != normalise_text(item.question.text)
        ):
            raise DataError(
                f"{self.source or 'norms'}: question '{item.question.id}'",
                field="options" if known.options != item.question.options else "question",
                expected=f"the same text and options as its first occurrence ({list(known.options)})",
                got=list(item.question.options) if known.options != item.question.options else item.question.text,
                fix="give different question variants different question_id values",
            )
        self._questions.setdefault(item.question.id, item.question)
        self._index[item.key] = item

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[NormItem]:
        return iter(self.items)

    def get(self, community: str, question_id: str) -> NormItem | None:
        return self._index.get((community, question_id))

    @property
    def questions(self) -> dict[str, Question]:
        return dict(self._questions)

    @property
    def communities(self) -> list[str]:
        return sorted({item.community for item in self.items})

    def filter(self, *, communities: Iterable[str] | None = None, question_ids: Iterable[str] | None = None) -> Norms:
        """A new Norms with only the given communities and/or questions."""
        keep_c = set(communities) if communities is not None else None
        keep_q = set(question_ids) if question_ids is not None else None
        kept = [
            item
            for item in self.items
            if (keep_c is None or item.community in keep_c) and (keep_q is None or item.question.id in keep_q)
        ]
        return Norms(kept, source=self.source)

    def merged(self, other: Norms, *, tolerance: float = 1e-6) -> Norms:
        """Union of two Norms. An item present in both is kept once if the distributions agree.

        Sources overlap (a question can sit in a wave file and in a curated set); disagreeing copies
        are an error rather than a silent choice.
        """
        items = list(self.items)
        duplicates = 0
        for item in other.items:
            mine = self.get(*item.key)
            if mine is None:
                items.append(item)
                continue
            if mine.question.n_options != item.question.n_options or not np.allclose(
                mine.distribution, item.distribution, atol=tolerance
            ):
                raise DataError(
                    f"{other.source}: community '{item.community}', question '{item.question.id}'",
                    field="distribution",
                    expected=f"the same distribution as in {self.source or 'the other source'} ({np.round(mine.distribution, 4).tolist()})",
                    got=np.round(item.distribution, 4).tolist(),
                    fix="load one of the two sources, or give the variant its own question_id",
                )
            duplicates += 1
        out = Norms(items, source=" + ".join(s for s in (self.source, other.source) if s))
        out.renormalised = self.renormalised + other.renormalised
        skipped = Counter(self.skipped) + Counter(other.skipped)
        skipped["duplicate across sources (identical, kept once)"] += duplicates
        out.skipped = dict(+skipped)  # unary + drops zero counts
        return out

    def by_question(self) -> dict[str, list[NormItem]]:
        out: dict[str, list[NormItem]] = {}
        for item in self.items:
            out.setdefault(item.question.id, []).append(item)
        return out

    def content_hash(self) -> str:
        """SHA-256 over items in a canonical order: equal data gives an equal hash, whatever the file order."""
        h = hashlib.sha256()
        for item in sorted(self.items, key=lambda i: i.key):
            q = item.question
            h.update(repr((item.community, q.id, normalise_text(q.text), q.options, q.ordinal, item.n)).encode())
            h.update(np.round(item.distribution, 12).tobytes())
        return h.hexdigest()


def question_id_from_content(prefix: str, text: str, options: Sequence[str]) -> str:
    """A stable id for sources without one (GlobalOpinionQA): a hash of the normalised text and options.

    Two sources that carry the same question with the same options get the same id, so their items
    meet; a variant with other options gets another id.
    """
    payload = "\x1f".join([normalise_text(text), *(normalise_text(o) for o in options)])
    return f"{prefix}_{hashlib.sha256(payload.encode('utf-8')).hexdigest()[:12]}"
