"""The ``lm`` policy: a real language model in the loop (prompts, extraction, permutations, LoRA)."""

from valuemulch.policies._lm._policy import LMPolicy
from valuemulch.policies._lm._prompts import Method, Steering

__all__ = ["LMPolicy", "Method", "Steering"]
