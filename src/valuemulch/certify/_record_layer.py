"""Certificate records of a community layer (`stack`): what it pools, with which weights, and how
its test-split answers were cross-fitted. Split from ``_record`` to keep that module readable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class LayerSummary(_Strict):
    """One fitted community layer, as ``Layer.summary()`` describes it."""

    backbones: list[str]
    """The backbones it pools, by label (``recorded:<run>`` for a replayed frontier run)."""
    choice: str
    """What inner cross-validation chose: ``<pooling>/<objective>/l2=<x>/<shared|shrink=s>`` or ``single:<backbone>``."""
    pooling: str
    """``linear``, ``loglinear`` or ``single`` (the best calibrated backbone alone)."""
    temperatures: dict[str, float]
    """Each backbone's calibration temperature (above 1 flattens its answers, below 1 sharpens them)."""
    weights: dict[str, float]
    """The shared pooling weight of each backbone (they sum to 1); an item a backbone is silent on is pooled over the rest."""
    community_weights: dict[str, dict[str, float]]
    """Per community, its own weights (shrunk towards the shared ones); empty when every community uses the shared weights."""
    items_hash: str
    """Hash of the items and targets the layer was fitted on."""


class CrossFitRecord(_Strict):
    """How the evaluated answers were cross-fitted (``certify --cross-fit K``).

    Recorded frontier runs answer test questions only, so a layer that pools them is fitted on other
    test questions: the seen test questions are split into ``folds`` by a hash of their text (one
    question's items never straddle folds), and each fold is answered by a layer fitted on the other
    folds, with every setting chosen by inner cross-validation inside them. The saved model's own
    layer answers only the bounds probes.
    """

    folds: int
    """The number of folds, K."""
    seed: int
    """The seed of the fold hash (``config.seed``)."""
    fold_of: dict[str, int]
    """Each evaluated question's fold."""
    layers: list[LayerSummary]
    """The layer that answered each fold, fold by fold."""
