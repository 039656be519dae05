"""The ``lm`` policy: a real language model in the loop (prompts, extraction, permutations, LoRA)."""

from valuemulch.policies._lm._log import LOG_FILE, EvaluationLog, logging_to
from valuemulch.policies._lm._policy import LMPolicy
from valuemulch.policies._lm._prompts import Method, Steering

__all__ = ["LOG_FILE", "EvaluationLog", "LMPolicy", "Method", "Steering", "logging_to"]
