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
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


def tiny_home(root: Path, *, certified: bool = True, signer: TinyHome | None = None) -> TinyHome:
    """Copy the tiny model under ``root`` and write its certificate (not registered yet), signed by a new
    key, or else by ``signer``'s key, in which case the home shares ``signer``'s registry and audit log."""
    from valuemulch.certify._certificate import file_hashes
    from valuemulch.certify._provenance import certificate_id
    from valuemulch.certify._signing import canonical_json, init_keys, sign_document

    model_dir = root / "model"
    shutil.copytree(TINY_MODEL, model_dir)
    if signer is None:
        pair = init_keys(root / "keys")
        private, public, registry, audit = pair.private, pair.public, root / "registry.sqlite", root / "audit.sqlite"
    else:
        private, public = signer.public_key.with_suffix(".key"), signer.public_key
        registry, audit = signer.registry, signer.audit
    document: dict[str, Any] = {
        "schema": "valuemulch.certificate/1",
        "testbed": {"name": TESTBED},
        "model": {"dir": str(model_dir.resolve()), "policy": "encoder", "files": file_hashes(model_dir)},
        "evaluation": {"seen": {"per_community": {c: {"one_minus_jsd": v} for c, v in ONE_MINUS_JSD.items()}}},
        "verdict": {"certified": certified, "rules": []},
    }
    document["certificate_id"] = certificate_id(document, canonical_json)
    signed = sign_document(document, private)
    path = root / "certificate" / "certificate.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(signed, indent=1), encoding="utf-8")
    return TinyHome(
        root=root,
        model_dir=model_dir,
        certificate=path,
        certificate_id=document["certificate_id"],
        public_key=public,
        registry=registry,
        audit=audit,
        admin_key="tiny-admin-key",
    )


def registry_of(home: TinyHome) -> Any:
    """The home's `Registry`."""
    try:
        from valuemulch.serve import Registry
    except ImportError:  # the code before serve/ (ed425b9), for the golden file and for checking old defects
        from valuemulch.deploy import Registry  # type: ignore[no-redef]
    return Registry(home.registry)


def register(home: TinyHome, *, promote: bool = True) -> None:
    """Register the home's certificate (trusting its key) and promote the model, as the pipeline and the CLI do."""
    registry = registry_of(home)
    registry.register(home.certificate, trusted=[home.public_key])
    if promote:
        registry.promote(home.model_id, allow_uncertified=True)


def serve_app(
    home: TinyHome,
    *,
    model: str | None = None,
    allow_uncertified: bool = False,
    guard_url: str | None = None,
    workers: int | None = None,
    serve_settings: dict[str, Any] | None = None,
    **limits: Any,
) -> Any:
    """The FastAPI app `valuemulch serve` would run for ``home``: its audit log, registry and admin key,
    trusting the home's signing key; ``limits`` override `Limits` fields, ``serve_settings`` `ServeSettings`
    fields; ``guard_url`` adds a guard."""
    try:
        from valuemulch.serve import load_deployment
        from valuemulch.serve.app import create_app
        from valuemulch.settings import Limits, ServeSettings, Settings
    except ImportError:  # the code before serve/ (ed425b9): one ServiceConfig, and create_app loads the model
        from valuemulch.deploy._service import Limits as OldLimits
        from valuemulch.deploy._service import ServiceConfig, create_app

        config = ServiceConfig(
            model=model,
            registry=home.registry,
            audit=home.audit,
            admin_key_hash=home.admin_key_hash,
            allow_uncertified=allow_uncertified,
            trusted_keys=[home.public_key],
            limits=OldLimits(**limits),
        )
        return create_app(config)  # type: ignore[call-arg]
    guard: dict[str, Any] = {"guard_url": guard_url, "guard_model": "guard"} if guard_url else {}
    if workers is not None:
        guard["workers"] = workers
    guard.update(serve_settings or {})
    serve = ServeSettings(
        model=model,
        admin_key_hash=home.admin_key_hash,
        allow_uncertified=allow_uncertified,
        trusted_keys=(home.public_key,),
        **guard,
    )
    keys = home.public_key.parent  # the home's signing key also signs its audit log's checkpoints
    # no rate limit unless a test sets one: in-process clients all come from one address
    limits = {"rate_per_minute": None, **limits}
    settings = Settings(registry=home.registry, audit=home.audit, keys=keys, serve=serve, limits=Limits(**limits))
    return create_app(settings, load_deployment(settings, model))


@contextmanager
def ready_client(app: Any, timeout: float = 120.0) -> Iterator[Any]:
    """A `TestClient` on ``app`` once ``/v1/health`` says ready: the service loads its models in the
    background after start and answers 503 until then, as a real client would see."""
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        deadline = time.monotonic() + timeout
        while (health := client.get("/v1/health")).status_code != 200:
            if time.monotonic() > deadline or health.json().get("status") == "failed":
                raise AssertionError(f"the service did not become ready within {timeout:.0f} s: {health.text}")
            time.sleep(0.05)
        yield client


if __name__ == "__main__":
    print(fit_tiny_model(Path(sys.argv[1])))
