"""Hyper-parameters of the ``lm`` method (a real LLM steered by persona) and of its run on a testbed."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from valuemulch.policies import Method, Steering
from valuemulch.train._base import _PolicyConfig


class LMConfig(_PolicyConfig):
    """Fit (record the communities, optionally LoRA-tune) the LM policy; defaults are LMPolicy's own."""

    model: str = Field(
        "smollm2",
        description="'smollm2' (SmolLM2-135M-Instruct, offline), a Hugging Face id or path, or the model an endpoint serves when base_url is set.",
    )
    base_url: str | None = Field(
        None, description="API root of an OpenAI-compatible server (http://host:8000/v1); unset runs the model locally."
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="Environment variable holding the endpoint's API key (read per request, never stored)."
    )
    concurrency: int = Field(4, ge=1, description="An endpoint's requests in flight at once.")
    timeout: float = Field(120.0, gt=0, description="Seconds to wait for one endpoint response.")
    retries: int = Field(
        5, ge=1, description="Tries per endpoint request (timeouts, lost connections, 408/429/5xx; honours Retry-After)."
    )
    cache: bool = Field(
        True,
        description="Keep endpoint responses in <cache>/lm_responses.sqlite and never ask for one twice (False: always ask).",
    )
    revision: str | None = Field(
        None, description="The served model's revision or weights hash, when known; part of the response cache's key."
    )
    method: Method = Field(
        "logprobs",
        description="logprobs (next-token probabilities of the letters), verbalized (JSON percentages, greedy) or sampled (shares of n_samples answers).",
    )
    steering: Steering = Field(
        "persona",
        description='persona (OpinionQA-style "Answer as if ..."), few-shot (the persona plus the community\'s own answers '
        "on the `shots` most similar train questions) or none (the unsteered model).",
    )
    shots: int = Field(5, ge=1, description="Examples that few-shot steering shows.")
    permutations: int = Field(2, ge=1, description="Option orders averaged per question (1 = survey order only).")
    n_samples: int = Field(20, ge=1, description="The sampled method's answers per question.")
    temperature: float = Field(1.0, gt=0, description="The sampled method's sampling temperature.")
    sample_alpha: float = Field(0.5, ge=0, description="The sampled method's add-alpha smoothing.")
    batch_size: int = Field(
        0, ge=0, description="Prompts per forward pass; 0 sizes batches to a token budget (1,024 on CPU, 65,536 on GPU)."
    )
    lora_steps: int = Field(0, ge=0, description="LoRA fine-tuning steps on the training norms (0 = zero-shot).")
    lora_rank: int = Field(8, ge=1, description="LoRA adapter rank.")
    lora_lr: float = Field(5e-4, gt=0, description="LoRA AdamW learning rate.")
    lora_batch_size: int = Field(8, ge=1, description="LoRA examples per step.")
    lora_max_items: int = Field(64, ge=1, description="LoRA: at most this many (community, question) items to train on.")
    device: str = Field("auto", description="auto (CUDA when present), cpu or cuda[:N].")
    backend: Literal["local", "ray"] = Field(
        "local",
        description="local (this process) or ray (prompts spread over `workers` Ray actors, one model each, a GPU each when "
        "present; pip install 'valuemulch[ray]'). Same answers either way.",
    )
    workers: int = Field(1, ge=1, description="Ray actors (loaded models) with backend=ray; 1 with backend=local.")
    on_parse_error: Literal["raise", "uniform"] = Field(
        "raise", description="raise, or uniform: a reply that cannot be read counts as a uniform answer for that option order."
    )

    @model_validator(mode="after")
    def _lora_needs_weights(self) -> Self:
        if self.lora_steps and self.base_url:
            raise ValueError(
                f"lora_steps=0 when base_url is set (LoRA needs local weights); got lora_steps={self.lora_steps} "
                f"and base_url={self.base_url!r}"
            )
        return self

    @model_validator(mode="after")
    def _backend_fits(self) -> Self:
        if self.backend == "local" and self.workers != 1:
            raise ValueError(f"backend='ray' for workers > 1 (the local backend is one process); got workers={self.workers}")
        if self.backend == "ray" and (self.base_url or self.lora_steps):
            raise ValueError(
                "backend='local' with base_url or lora_steps (Ray spreads a local base model's prompts); "
                f"got base_url={self.base_url!r} and lora_steps={self.lora_steps}"
            )
        return self
