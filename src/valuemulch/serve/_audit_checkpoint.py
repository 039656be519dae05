"""Signed checkpoints: records in the audit chain that carry its head and length, signed with the service's key.

A hash chain with no key can be cut or rewritten from any point on and still verify. A checkpoint is
a record like any other (so deleting one leaves a gap, and editing one breaks the next link), whose
``answer`` holds the hash of the record before it (the head), the number of records before it, and
an Ed25519 signature over both by the key that signs this machine's certificates. Everything up to a
checkpoint that verifies with a trusted key is then fixed: rewriting it changes the head. Records
after the last checkpoint are covered by no signature; `verify_chain` counts them as at risk.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from valuemulch.certify import canonical_json, key_id

CHECKPOINT_ENDPOINT = "audit:checkpoint"  # never a route: routes are paths
CHECKPOINT_SCHEMA = "valuemulch.audit-checkpoint/1"
CHECKPOINT_EVERY = 1000  # the default interval, in records (`ServeSettings.audit_checkpoint_every`)
# Signed bytes start with this line, so a checkpoint signature is never a valid certificate signature
# (those sign a JSON object) although the same key makes both.
_DOMAIN = b"valuemulch audit checkpoint v1\n"
_FIELDS = ("count", "every", "head", "key_id", "reason", "schema", "signature")


def signed_bytes(checkpoint: dict[str, Any]) -> bytes:
    """What the signature covers: the domain line, then the canonical JSON of every field but the signature."""
    return _DOMAIN + canonical_json({k: v for k, v in checkpoint.items() if k != "signature"})


def make_checkpoint(key: Ed25519PrivateKey, *, count: int, head: str, every: int, reason: str) -> dict[str, Any]:
    """The ``answer`` of a checkpoint record that follows ``count`` records, the last of which hashes to ``head``."""
    checkpoint: dict[str, Any] = {
        "schema": CHECKPOINT_SCHEMA,
        "count": count,
        "head": head,
        "every": every,
        "reason": reason,
        "key_id": key_id(key.public_key()),
    }
    checkpoint["signature"] = base64.b64encode(key.sign(signed_bytes(checkpoint))).decode("ascii")
    return {"checkpoint": checkpoint}


def checkpoint_fields(seq: int, prev_hash: str, answer: dict[str, Any]) -> dict[str, Any]:
    """The columns of the checkpoint record at ``seq``: only ``answer`` says anything."""
    return {
        "seq": seq,
        "request_hash": "",
        "community": "",
        "model_id": "",
        "certificate_id": None,
        "certified": False,
        "endpoint": CHECKPOINT_ENDPOINT,
        "bounds": {},
        "answer": answer,
        "prev_hash": prev_hash,
    }


def checkpoint_problem(seq: int, prev_hash: str, answer: Any, trusted: dict[str, Ed25519PublicKey]) -> tuple[str | None, int]:
    """Why the checkpoint record at ``seq`` does not hold (None when it does), and the interval it states."""
    checkpoint = answer.get("checkpoint") if isinstance(answer, dict) else None
    if not isinstance(checkpoint, dict) or tuple(sorted(checkpoint)) != _FIELDS or set(answer) != {"checkpoint"}:
        return f"checkpoint is malformed (expected the fields {', '.join(_FIELDS)})", 0
    every = checkpoint["every"] if type(checkpoint["every"]) is int else 0
    if checkpoint["schema"] != CHECKPOINT_SCHEMA:
        return f"checkpoint has schema {checkpoint['schema']!r}, expected {CHECKPOINT_SCHEMA!r}", every
    if checkpoint["count"] != seq - 1 or type(checkpoint["count"]) is not int:
        return f"checkpoint says it follows {checkpoint['count']!r} records, but it is record {seq}", every
    if checkpoint["head"] != prev_hash:
        return "checkpoint's head is not the hash of the record before it", every
    public = trusted.get(checkpoint["key_id"]) if isinstance(checkpoint["key_id"], str) else None
    if public is None:
        listed = ", ".join(sorted(trusted)) or "none"
        return (
            f"checkpoint signed by key {checkpoint['key_id']!r}, which is not trusted (trusted: {listed}); "
            "pass --key with the service's signing.pub",
            every,
        )
    try:
        signature = base64.b64decode(str(checkpoint["signature"]).encode("ascii"), validate=True)
        public.verify(signature, signed_bytes(checkpoint))
    except (InvalidSignature, binascii.Error, UnicodeEncodeError, ValueError):
        return f"checkpoint's signature by key {checkpoint['key_id']} does not match its content (forged?)", every
    return None, every


def trusted_by_id(keys: list[Ed25519PublicKey]) -> dict[str, Ed25519PublicKey]:
    return {key_id(k): k for k in keys}
