"""Frozen pretrained models the policies build on: text encoders, causal LMs, the embedding cache."""

from valuemulch.backbones._embedding_cache import EmbeddingCache, default_cache_path
from valuemulch.backbones._encoders import (
    ENCODER_HELP,
    MINILM_ID,
    AdaptedMiniLMEncoder,
    MiniLMEncoder,
    TextEncoder,
    make_encoder,
    package_dir,
)

__all__ = [
    "ENCODER_HELP",
    "MINILM_ID",
    "AdaptedMiniLMEncoder",
    "EmbeddingCache",
    "MiniLMEncoder",
    "TextEncoder",
    "default_cache_path",
    "make_encoder",
    "package_dir",
]
