"""Ed25519 signatures on certificates, checked against keys the verifier chose to trust.

A certificate embeds its signer's public key so a reader can tell *who* signed it, but that key is
never what makes it valid: anyone can sign with a fresh key. Verification looks the signer's key id
up among the *trusted* keys and checks the signature with that trusted key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from valuemulch.errors import ConfigError
from valuemulch.settings import Settings, env_name

KEYS_ENV = env_name("keys")
PRIVATE_FILE = "signing.key"
PUBLIC_FILE = "signing.pub"
ALGORITHM = "ed25519"
_INIT_HINT = "`valuemulch keys init` creates one"


def default_key_dir() -> Path:
    """``$VALUEMULCH_KEYS``, else ``$XDG_CONFIG_HOME/valuemulch/keys`` (``~/.config/valuemulch/keys`` by default)."""
    return Settings().keys


def _nonfinite_path(value: Any, path: str = "$") -> str | None:
    """Where the first NaN or infinity sits (``$.evaluation.kl.mean``), so the error can point at it."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if isinstance(value, dict):
        for k, v in value.items():
            if (found := _nonfinite_path(v, f"{path}.{k}")) is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            if (found := _nonfinite_path(v, f"{path}[{i}]")) is not None:
                return found
    return None


def canonical_json(document: dict[str, Any]) -> bytes:
    """The exact bytes that are signed: sorted keys, no spaces, UTF-8, so key order and whitespace don't matter."""
    try:
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as e:
        where = _nonfinite_path(document) or "a value"
        raise ConfigError(
            f"Cannot sign a document containing NaN or infinity (at {where}): JSON has no such numbers. "
            "Fix: write a metric that cannot be computed as null."
        ) from e
    except TypeError as e:
        raise ConfigError(
            f"Cannot sign the document: expected only JSON values (dict with string keys, list, str, number, bool, null), "
            f"but {e}. Fix: convert the value to one of those before signing."
        ) from e
    return text.encode("utf-8")


@dataclass(frozen=True)
class KeyPair:
    """Where ``init_keys`` wrote the key pair, and the id certificates signed with it will carry."""

    private: Path
    public: Path
    key_id: str


def key_id(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the raw 32-byte key: short enough to read, stable across formats."""
    return hashlib.sha256(public_key.public_bytes_raw()).hexdigest()[:16]


def _private_pem(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the first byte (O_EXCL: never clobber, never briefly world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have taken bits away from a public key that should be readable
        os.write(fd, data)
    finally:
        os.close(fd)


def _write_temp(directory: Path, data: bytes, mode: int) -> Path:
    """A new file in ``directory`` (mkstemp creates it 0600), for ``os.replace`` over the real one."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=".signing-", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    os.close(fd)
    return Path(name)


def init_keys(directory: Path | None = None, *, force: bool = False) -> KeyPair:
    """Create a signing key pair in ``directory`` (default: ``default_key_dir()``).

    Refuses to replace an existing key unless ``force``: certificates signed with the old key stay
    valid for whoever trusts it, but new ones would carry a new key id that verifiers must be given.
    """
    directory = Path(directory) if directory is not None else default_key_dir()
    private_path, public_path = directory / PRIVATE_FILE, directory / PUBLIC_FILE
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
        directory.chmod(0o700)
    elif not directory.is_dir():
        raise ConfigError(
            f"Key directory {directory} is a file, expected a directory. Fix: remove it or set ${KEYS_ENV} elsewhere."
        )
    if not force:
        for existing in (private_path, public_path):
            if existing.exists():
                raise ConfigError(
                    f"{existing} already exists; refusing to overwrite a signing key. Fix: keep using it, or pass "
                    "--force to replace it (certificates already signed stay valid for whoever trusts the old key, "
                    "but new certificates will carry a new key id)."
                )

    private_key = Ed25519PrivateKey.generate()
    private_pem, public_pem = _private_pem(private_key), _public_pem(private_key.public_key())
    if force:
        # Both files are ready before either is swapped in, so a failure leaves the old pair whole.
        tmp_private = _write_temp(directory, private_pem, 0o600)
        try:
            tmp_public = _write_temp(directory, public_pem, 0o644)
        except BaseException:
            tmp_private.unlink()
            raise
        os.replace(tmp_private, private_path)
        os.replace(tmp_public, public_path)
    else:
        _write_new(private_path, private_pem, 0o600)
        try:
            _write_new(public_path, public_pem, 0o644)
        except BaseException:
            private_path.unlink()  # a private key without its public half would block the next `keys init`
            raise
    return KeyPair(private=private_path, public=public_path, key_id=key_id(private_key.public_key()))


def _read_key_file(path: Path, kind: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"No {kind} at {path}. Fix: {_INIT_HINT}, or pass the right path.") from None
    except OSError as e:
        raise ConfigError(f"Cannot read the {kind} at {path}: {e.strerror}. Fix: check the path and its permissions.") from None


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Load a signing key, refusing one that other users could read (a leaked key signs anything)."""
    path = Path(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise ConfigError(f"No signing key at {path}. Fix: {_INIT_HINT}, or pass the right path.") from None
    if os.name == "posix" and mode & 0o077:
        raise ConfigError(
            f"Signing key {path} is readable by other users (mode {mode:04o}); expected 0600. Fix: chmod 600 {path}"
        )
    data = _read_key_file(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise ConfigError(
            f"{path} is not an unencrypted Ed25519 private key in PEM (PKCS8) format ({e}). Fix: {_INIT_HINT}."
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} holds a {type(key).__name__}, expected an Ed25519 private key. Fix: {_INIT_HINT}.")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Load a PEM (SubjectPublicKeyInfo) Ed25519 public key, e.g. a ``signing.pub`` a signer handed out."""
    path = Path(path)
    data = _read_key_file(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise ConfigError(
            f"{path} is not an Ed25519 public key in PEM format ({e}). Fix: pass the signer's signing.pub."
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(
            f"{path} holds a {type(key).__name__}, expected an Ed25519 public key. Fix: pass the signer's signing.pub."
        )
    return key


def _b64decode(s: object, what: str) -> bytes:
    if not isinstance(s, str):
        raise ConfigError(f"The {what} must be a base64 string, got {type(s).__name__}. Fix: re-sign the certificate.")
    try:
        return base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ConfigError(f"The {what} is not valid base64: {s[:60]!r}. Fix: re-sign the certificate.") from None


def public_key_from_b64(s: str) -> Ed25519PublicKey:
    """The key embedded in a signature block (base64 of the raw 32 bytes)."""
    raw = _b64decode(s, "public key")
    if len(raw) != 32:
        raise ConfigError(f"An Ed25519 public key is 32 bytes, got {len(raw)}. Fix: re-sign the certificate.")
    return Ed25519PublicKey.from_public_bytes(raw)


def _unsigned(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "signature"}


def sign_document(document: dict[str, Any], private_key_path: Path) -> dict[str, Any]:
    """A copy of ``document`` with a ``signature`` block over the canonical JSON of everything else.

    An existing signature is dropped first, so re-signing a certificate replaces rather than nests.
    """
    private_key = load_private_key(private_key_path)
    body = _unsigned(document)
    public_key = private_key.public_key()
    signature = private_key.sign(canonical_json(body))
    return {
        **body,
        "signature": {
            "algorithm": ALGORITHM,
            "key_id": key_id(public_key),
            "public_key": base64.b64encode(public_key.public_bytes_raw()).decode("ascii"),
            "value": base64.b64encode(signature).decode("ascii"),
        },
    }


def verify_document(document: dict[str, Any], trusted: Sequence[Ed25519PublicKey]) -> tuple[bool, str]:
    """Whether ``document`` was signed by one of the ``trusted`` keys and not changed since, with a readable reason.

    The signature is checked with the trusted key whose id matches, never with the key the document
    embeds: that one only says who claims to have signed.
    """
    block = document.get("signature")
    if block is None:
        return False, "not signed: the document has no 'signature' block"
    if not isinstance(block, dict):
        return False, f"malformed signature: expected an object, got {type(block).__name__}"
    algorithm = block.get("algorithm")
    if algorithm != ALGORITHM:
        return False, f"unsupported signature algorithm {algorithm!r}; only {ALGORITHM!r} is supported"
    embedded_b64 = block.get("public_key")
    if not isinstance(embedded_b64, str):
        return False, f"malformed signature: 'public_key' must be a base64 string, got {type(embedded_b64).__name__}"
    try:
        value = _b64decode(block.get("value"), "signature value")
        embedded = public_key_from_b64(embedded_b64)
    except ConfigError as e:
        return False, f"malformed signature: {e}"
    signer = key_id(embedded)
    if block.get("key_id") != signer:
        return False, f"malformed signature: key_id {block.get('key_id')!r} does not match the embedded public key ({signer})"

    by_id = {key_id(k): k for k in trusted}
    if signer not in by_id:
        listed = ", ".join(sorted(by_id)) or "none"
        return False, (
            f"signed by key {signer} which is not trusted (trusted: {listed}); "
            "pass --key with the signer's public key if you trust it"
        )
    try:
        by_id[signer].verify(value, canonical_json(_unsigned(document)))
    except InvalidSignature:
        return False, f"signature by key {signer} does not match the content: the document was changed after it was signed"
    except ConfigError as e:
        return False, f"cannot check the signature: {e}"
    return True, f"signed by trusted key {signer}"


def trusted_keys(paths: Sequence[Path] = (), *, key_dir: Path | None = None) -> list[Ed25519PublicKey]:
    """The keys a verifier trusts: the given public key files, else the own ``signing.pub`` in
    ``key_dir`` (default: this machine's key directory) if any."""
    if paths:
        return [load_public_key(Path(p)) for p in paths]
    own = (key_dir or default_key_dir()) / PUBLIC_FILE
    return [load_public_key(own)] if own.exists() else []
