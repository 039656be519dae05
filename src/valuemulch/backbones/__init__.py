"""Frozen pretrained models the policies build on: text encoders, causal LMs, the embedding cache."""

from valuemulch.backbones._causal_lm import LETTERS, SMOLLM2, CausalLM, HFCausalLM, OpenAIChatLM, Prompt, model_id
from valuemulch.backbones._embedding_cache import EmbeddingCache, default_cache_path
from valuemulch.backbones._encoders import MINILM_ID, AdaptedMiniLMEncoder, MiniLMEncoder, TextEncoder, minilm_dir
from valuemulch.backbones._endpoint import ChatEndpoint, EndpointError, Retries
from valuemulch.backbones._lm_encoder import LMHiddenStateEncoder
from valuemulch.backbones._packages import package_dir
from valuemulch.backbones._progress import PromptProgress, showing_prompts
from valuemulch.backbones._ray import BACKENDS, RayCausalLM, ray_causal_lm
from valuemulch.backbones._registry import ENCODER_HELP, make_encoder
from valuemulch.backbones._response_cache import (
    CacheStats,
    CorruptCacheError,
    ResponseCache,
    default_response_cache_path,
    no_response_cache,
    request_key,
    response_caching,
)

__all__ = [
    "BACKENDS",
    "ENCODER_HELP",
    "LETTERS",
    "MINILM_ID",
    "SMOLLM2",
    "AdaptedMiniLMEncoder",
    "CacheStats",
    "CausalLM",
    "ChatEndpoint",
    "CorruptCacheError",
    "EmbeddingCache",
    "EndpointError",
    "HFCausalLM",
    "LMHiddenStateEncoder",
    "MiniLMEncoder",
    "OpenAIChatLM",
    "Prompt",
    "PromptProgress",
    "RayCausalLM",
    "ResponseCache",
    "Retries",
    "TextEncoder",
    "default_cache_path",
    "default_response_cache_path",
    "make_encoder",
    "minilm_dir",
    "model_id",
    "no_response_cache",
    "package_dir",
    "ray_causal_lm",
    "request_key",
    "response_caching",
    "showing_prompts",
]
