"""A real, small, deterministic deployment for the service tests: a fitted `encoder` policy, a signed
certificate and a registry entry, built in a temporary directory in well under a second.

``fixtures/serve/tiny-encoder`` is an `EncoderPolicy` fitted on the hand-written
``fixtures/globalopinionqa/goqa_list.json`` (3 communities, 5 questions) by `fit_tiny_model`
(``python tests/tiny_serve.py OUT`` writes it again). It is committed so that the serving tests and
their golden responses do not move when training changes. Its certificate is a minimal one written
here (the fields serving reads), signed with a key made for the test; `certified` chooses its verdict.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
TINY_MODEL = FIXTURES / "serve" / "tiny-encoder"
TINY_NORMS = FIXTURES / "globalopinionqa" / "goqa_list.json"
TESTBED = "tiny"
ONE_MINUS_JSD = {"Britain": 0.81, "India (Current national sample)": 0.77, "S. Korea": 0.79}


def fit_tiny_model(out: Path) -> Path:
    """How ``TINY_MODEL`` was made: a few epochs on three communities' answers to five questions."""
    import torch

    from valuemulch.data import read_norms
    from valuemulch.policies import EncoderPolicy

    torch.set_num_threads(1)
    return EncoderPolicy(epochs=3, hidden=8, seed=0).fit(read_norms(TINY_NORMS)).save(out)


@dataclass(frozen=True)
class TinyHome:
    """Everything a service needs, under ``root``: the model, its signed certificate, keys, registry and audit paths."""

    root: Path
    model_dir: Path
    certificate: Path
    certificate_id: str
    public_key: Path
    registry: Path
    audit: Path
    admin_key: str

    @property
    def admin_key_hash(self) -> str:
        return hashlib.sha256(self.admin_key.encode()).hexdigest()

    @property
    def model_id(self) -> str:
        """The id `Registry.register` gives this certificate."""
        return f"{TESTBED}-encoder-{self.certificate_id[:8]}"


def tiny_home(root: Path, *, certified: bool = True) -> TinyHome:
    """Copy the tiny model under ``root`` and write its certificate, signed by a new key (not registered yet)."""
    from valuemulch.certify._certificate import certificate_id, file_hashes
    from valuemulch.certify._signing import canonical_json, init_keys, sign_document

    model_dir = root / "model"
    shutil.copytree(TINY_MODEL, model_dir)
    keys = init_keys(root / "keys")
    document: dict[str, Any] = {
        "schema": "valuemulch.certificate/1",
        "testbed": {"name": TESTBED},
        "model": {"dir": str(model_dir.resolve()), "policy": "encoder", "files": file_hashes(model_dir)},
        "evaluation": {"seen": {"per_community": {c: {"one_minus_jsd": v} for c, v in ONE_MINUS_JSD.items()}}},
        "verdict": {"certified": certified, "rules": []},
    }
    document["certificate_id"] = certificate_id(document, canonical_json)
    signed = sign_document(document, keys.private)
    path = root / "certificate" / "certificate.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(signed, indent=1), encoding="utf-8")
    return TinyHome(
        root=root,
        model_dir=model_dir,
        certificate=path,
        certificate_id=document["certificate_id"],
        public_key=keys.public,
        registry=root / "registry.sqlite",
        audit=root / "audit.sqlite",
        admin_key="tiny-admin-key",
    )


if __name__ == "__main__":
    print(fit_tiny_model(Path(sys.argv[1])))
