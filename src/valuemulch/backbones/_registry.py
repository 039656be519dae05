"""Encoders by spec: the one place that knows every backbone, above the modules that define them."""

from __future__ import annotations

from functools import cache

from valuemulch.backbones._encoders import MiniLMEncoder, TextEncoder
from valuemulch.backbones._lm_encoder import LMHiddenStateEncoder
from valuemulch.backbones._packaged_models import GemmaJudge, MPNetEncoder
from valuemulch.errors import ConfigError

ENCODER_HELP = (
    "'minilm' (all-MiniLM-L6-v2, the default), 'mpnet' (all-mpnet-base-v2), 'lm:<name>' (an LM's hidden states; "
    "'lm:smollm2', 'lm:gemma3' or a Hugging Face id/path) or 'judge:gemma3' (Gemma 3 270M's yes/no log-odds)"
)


@cache
def make_encoder(spec: str) -> TextEncoder:
    """Build (once per process) the encoder a spec names: see ``ENCODER_HELP``."""
    if spec == "minilm":
        return MiniLMEncoder()
    if spec in ("mpnet", "all-mpnet-base-v2"):
        return MPNetEncoder()
    if spec == "judge:gemma3":
        return GemmaJudge()
    if spec.startswith("lm:") and len(spec) > 3:
        return LMHiddenStateEncoder(spec.removeprefix("lm:"))
    raise ConfigError(f"Unknown encoder '{spec}'. Expected {ENCODER_HELP}.")
