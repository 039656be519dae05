"""What a user asks to evaluate or certify, checked and completed with defaults before any work starts.

The command line fills these in; scripts can too. Each check names the option, what it allows and
what it got, and runs before data or models load, so a typo fails in a second, not after a minute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from valuemulch.certify._config import CertifyConfig
from valuemulch.certify._evaluate import Evaluation, Refusals, evaluate
from valuemulch.certify._rules import default_policy_file
from valuemulch.certify._signing import PRIVATE_FILE, default_key_dir
from valuemulch.certify._testbed_eval import CommunitySet, ItemSet, evaluate_on_testbed
from valuemulch.data import SPLITS, Split, load_testbed, read_norms, resolve_data_root
from valuemulch.errors import ConfigError
from valuemulch.policies import Policy


@dataclass(frozen=True)
class EvaluateConfig:
    """One evaluation: a named policy or a saved model, on a testbed split or on a data file.

    Attributes:
        testbed: testbed name (exactly one of ``testbed`` and ``norms``).
        policy: policy name (exactly one of ``policy`` and ``model``).
        model: a saved policy directory.
        norms: evaluate on this data (any supported format); needs ``model``.
        split: ``train``, ``dev`` or ``test``.
        items: ``all``, or ``frontier``: only the items recorded frontier outputs cover.
        communities: ``seen``, ``unseen`` or ``all`` communities of the testbed.
        refusals: ``keep`` scores the full distribution; ``drop`` removes refusal options and renormalises.
        n_boot: bootstrap resamples for the CIs.
        seed: seed of the bootstrap.
        data: data directory (else ``$VALUEMULCH_DATA``, else the user cache); read only for a testbed.
        params: hyper-parameters of a named policy (``--set key=value``).
        cross_fit: K folds of the evaluated questions, each predicted by a layer fitted on the others.
    """

    testbed: str | None = None
    policy: str | None = None
    model: Path | None = None
    norms: Path | None = None
    split: str = "test"
    items: str = "all"
    communities: str = "seen"
    refusals: str = "keep"
    n_boot: int = 1000
    seed: int = 0
    data: Path | None = None
    params: dict[str, Any] = field(default_factory=dict)
    cross_fit: int | None = None

    def __post_init__(self) -> None:
        if (self.policy is None) == (self.model is None):
            raise ConfigError("Give exactly one of --policy NAME or --model DIR.")
        if (self.testbed is None) == (self.norms is None):
            raise ConfigError("Give exactly one of --testbed NAME or --norms PATH.")
        if self.split not in SPLITS:
            raise ConfigError(f"--split must be one of {list(SPLITS)}, got '{self.split}'.")
        if self.items not in ("all", "frontier"):
            raise ConfigError(f"--items must be 'all' or 'frontier', got '{self.items}'.")
        if self.communities not in ("seen", "unseen", "all"):
            raise ConfigError(f"--communities must be seen, unseen or all, got '{self.communities}'.")
        if self.refusals not in ("keep", "drop"):
            raise ConfigError(f"--refusals must be 'keep' or 'drop', got '{self.refusals}'.")
        if self.params and self.policy is None:
            raise ConfigError(
                "--set sets a named policy's hyper-parameters; a saved --model DIR keeps the ones it was trained with."
            )
        if self.cross_fit is not None and (self.cross_fit < 2 or self.testbed is None):
            raise ConfigError(
                f"--cross-fit takes K >= 2 folds and a --testbed; got K={self.cross_fit}, testbed {self.testbed!r}."
            )
        if self.norms is not None and self.model is None:
            raise ConfigError("--norms evaluates a saved model: pass --model DIR (named baselines need a testbed to fit on).")


def run_evaluation(config: EvaluateConfig, progress: Callable[[str], None] | None = None) -> Evaluation:
    """Evaluate as ``config`` says: a saved model on a data file, or any policy on a testbed split
    (a named policy is built and fitted the honest way for its kind, see `evaluate_on_testbed`)."""
    refusals = cast(Refusals, config.refusals)
    loaded = Policy.load(config.model) if config.model is not None else None
    if config.norms is not None:
        assert loaded is not None  # checked by EvaluateConfig
        result = evaluate(
            loaded,
            read_norms(config.norms),
            n_boot=config.n_boot,
            seed=config.seed,
            policy_label=str(config.model),
            refusals=refusals,
        )
        result.context = {"norms": str(config.norms), "refusals": config.refusals, "n_boot": config.n_boot, "seed": config.seed}
        return result
    testbed = load_testbed(str(config.testbed), resolve_data_root(config.data))
    return evaluate_on_testbed(
        loaded if loaded is not None else str(config.policy),
        testbed,
        split=cast(Split, config.split),
        items=cast(ItemSet, config.items),
        communities=cast(CommunitySet, config.communities),
        n_boot=config.n_boot,
        seed=config.seed,
        refusals=refusals,
        params=config.params,
        cross_fit=config.cross_fit,
        progress=progress,
    )


def certify_config(
    model_dir: Path,
    *,
    testbed: str | None = None,
    policy_file: Path | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    adapt_k: int = 10,
    cross_fit: int | None = None,
    questions: int | None = None,
    communities: int | None = None,
) -> CertifyConfig:
    """The certification of ``model_dir``: on the testbed it was trained on unless told otherwise,
    by the shipped rules unless given a rules file.

    Raises:
        ConfigError: no testbed given and the model's provenance names none.
    """
    if testbed is None:
        testbed = str(Policy.read_provenance(model_dir).get("trained_on", {}).get("testbed") or "")
        if not testbed:
            raise ConfigError(f"{model_dir} does not say which testbed it was trained on; pass --testbed.")
    return CertifyConfig(
        testbed=testbed, policy_file=str(policy_file or default_policy_file()), n_boot=n_boot, seed=seed, adapt_k=adapt_k,
        cross_fit=cross_fit, questions=questions, communities=communities,
    )


def default_signing_key() -> Path:
    """The private key `valuemulch keys init` writes (``$VALUEMULCH_KEYS`` or the user config)."""
    return default_key_dir() / PRIVATE_FILE
