"""Fine-tuned MiniLM vs the shipped frozen-MiniLM logistic regression, for the tier-1 semantic layer.

Run by hand:  OMP_NUM_THREADS=1 VALUEMULCH_DATA=../shared/data python benchmarks/bounds_finetune.py [--variants base,...] [--seeds 0]

An experiment, not shipped: the results and why it is not the default are in docs/bounds.md.

Training is the package's (``valuemulch.train.train_detector``, what ``valuemulch bounds train`` runs);
this script only compares variants. Training data: ``training_statements()`` only. The fine-tuned model (mean pooling, L2 normalisation,
linear head) replaces the logistic regression's probability; ``endorsed``, ``names_act``, the contrast
and the rules are the shipped code (``Detector.scores`` is reused unchanged: ``_embed`` and
``_fitted`` are overridden so that ``sigmoid(v @ w + b)`` is the fine-tuned model's output). Settings
(thresholds, contrast, and the variant) are chosen by ``benchmarks/bounds_detector.py``'s ``select``
on dev only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import bounds_detector as bd
from valuemulch.bounds import Detector, measure, probe_set, redline_ids, survey_set, training_statements
from valuemulch.data import resolve_data_root
from valuemulch.train import DetectorConfig, DetectorModel, train_detector

torch.set_num_threads(1)  # scoring too (training runs on DetectorConfig.threads)
OUT = Path(tempfile.gettempdir()) / "valuemulch-bounds-finetune"  # logs and JSON results

# name -> DetectorConfig fields (the defaults are lora8's: `valuemulch bounds train` trains the shipped file)
VARIANTS: dict[str, dict[str, Any]] = {
    # the brief's main run: 4 epochs, lr 3e-5 (encoder), 1e-3 (fresh head), batch 16, balanced BCE
    "base": dict(epochs=4, lr=3e-5, head_lr=1e-3, head_init="zero", catalogue_weight=1.0, lora_r=0),
    # more epochs
    "ep8": dict(epochs=8, lr=3e-5, head_lr=1e-3, head_init="zero", catalogue_weight=1.0, lora_r=0),
    # linear probe then fine-tune: head starts at the shipped logistic regression (l2 0.001)
    "lpft": dict(epochs=4, lr=3e-5, head_lr=1e-4, head_init="lr", catalogue_weight=1.0, lora_r=0),
    # the catalogue's own examples/benign (redlines.toml) weigh 2x the statements.toml extras
    "catw2": dict(epochs=4, lr=3e-5, head_lr=1e-3, head_init="zero", catalogue_weight=2.0, lora_r=0),
    # low-rank adapters (LoRA) on every attention and dense layer, the encoder frozen: the trained
    # part is small enough to ship inside the package
    "lora8": dict(epochs=4, lr=5e-4, head_lr=1e-3, head_init="lr", catalogue_weight=1.0, lora_r=8),
    "lora8-ep8": dict(epochs=8, lr=5e-4, head_lr=1e-3, head_init="lr", catalogue_weight=1.0, lora_r=8),
    "lora16": dict(epochs=4, lr=5e-4, head_lr=1e-3, head_init="lr", catalogue_weight=1.0, lora_r=16),
    "lora16-zero": dict(epochs=6, lr=5e-4, head_lr=1e-3, head_init="zero", catalogue_weight=1.0, lora_r=16),
}


class FineTunedDetector(Detector):
    """The shipped detector with the fine-tuned model's embedding and head in place of the frozen
    encoder and the logistic regression; ``scores`` is inherited unchanged."""

    def __init__(self, model: DetectorModel, tok, **kw) -> None:
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
    results = {}
    for name in args.variants.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            key = f"{name}/s{seed}"
            config = DetectorConfig(**VARIANTS[name], seed=seed, run=f"{name} seed {seed}", out=args.export)
            trained = train_detector(config, on_epoch=lambda e, n, loss, t, key=key: print(
                f"[{key}] epoch {e}/{n} loss {loss:.4f} ({t:.0f}s)", flush=True))  # fmt: skip
            train_s = trained.seconds
            if trained.path is not None:
                print(f"exported to {trained.path} ({trained.path.stat().st_size / 1e6:.2f} MB)", flush=True)
            det = FineTunedDetector(trained.model, trained.tokenizer)
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

    from valuemulch.backbones import minilm_dir

    st = SentenceTransformer(str(minilm_dir()), device="cpu")
    t0 = time.perf_counter()
    st.encode(statements, batch_size=64)
    print(
        f"\nfrozen MiniLM (sentence-transformers, uncached): {(time.perf_counter() - t0) / len(statements) * 1000:.1f}s / 1000 statements"
    )


if __name__ == "__main__":
    main()
