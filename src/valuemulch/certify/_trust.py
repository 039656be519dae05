"""What ``verify`` may read, and in which order: nothing in a certificate is acted on before its
signature holds and its schema validates, and every path it reads stays inside the certificate's
directory or the model directory the user named.

A certificate is attacker-controlled input until proven otherwise: its ``model.dir``, file names and
settings steer which files get opened and hashed, so they are used only once a trusted key vouches
for them, and even then only inside the directories the user pointed ``verify`` at.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from valuemulch.certify._record import SCHEMA, Report
from valuemulch.errors import ConfigError

#: A certificate is a few hundred KB; anything far larger is not one, and is not read into memory.
MAX_CERTIFICATE_BYTES = 64 * 1024 * 1024
_FIX = "Fix: pass the certificate.json that `certify` wrote, unedited (an edited one must be signed again)."
#: For a file a trusted key signed that this version cannot read: re-signing would not help.
_FIX_SIGNED = "Fix: verify it with the valuemulch version that wrote it, or certify the model again."


def _short(value: Any) -> str:
    """``list ['a', 'b']``: the type that came, then a clipped repr, for "expected X, got Y" messages."""
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{type(value).__name__} {shown}"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique: with duplicates, readers disagree on which value counts."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice in one object")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_document(cert_path: Path) -> dict[str, Any]:
    """The certificate's JSON object, parsed strictly (no duplicate keys, no NaN), or one clear error."""
    if cert_path.is_dir():
        raise ConfigError(
            f"{cert_path}: expected the certificate file, got a directory. Fix: pass {cert_path / 'certificate.json'}."
        )
    try:
        size = cert_path.stat().st_size
        if size > MAX_CERTIFICATE_BYTES:
            raise ConfigError(f"{cert_path}: expected a certificate of at most {MAX_CERTIFICATE_BYTES} bytes, got {size}. {_FIX}")
        text = cert_path.read_bytes().decode("utf-8")
    except OSError as err:
        raise ConfigError(f"{cert_path}: cannot read it ({err.strerror}). Fix: check the path and its permissions.") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{cert_path}: expected UTF-8 JSON, got bytes that are not UTF-8 ({err.reason}). {_FIX}") from None
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"{cert_path}: expected JSON, got a syntax error at line {err.lineno} column {err.colno} ({err.msg}). {_FIX}"
        ) from None
    except ValueError as err:
        raise ConfigError(f"{cert_path}: expected strict JSON, got a document where {err}. {_FIX}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{cert_path}: expected a JSON object, got {_short(document)}. {_FIX}")
    return document


def validate_report(document: dict[str, Any], cert_path: Path) -> Report:
    """The signed document as a `Report`, types checked strictly; a schema problem is one line naming
    the field, what was expected and what came."""
    schema = document.get("schema")
    if schema != SCHEMA:
        raise ConfigError(
            f"{cert_path}: unknown certificate schema {schema!r}; this valuemulch reads {SCHEMA} only. {_FIX_SIGNED}"
        )
    try:  # strict, from JSON: "7" is no integer and true no number, as the signer's JSON types them
        return Report.model_validate_json(json.dumps(document), strict=True)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the document"
        if first["type"] == "missing":
            detail = f"{where}: expected a value, got none (the field is missing)"
        elif first["type"] == "extra_forbidden":
            detail = f"{where}: expected no such field, got {_short(first['input'])}"
        else:
            expected = first["msg"].removeprefix("Input should be ").removeprefix("Value error, ")
            detail = f"{where}: expected {expected}, got {_short(first['input'])}"
        more = f" ({err.error_count()} problems in all)" if err.error_count() > 1 else ""
        raise ConfigError(f"{cert_path}: signed, but not a valid {SCHEMA} certificate: {detail}{more}. {_FIX_SIGNED}") from None


def confined(path: Path, root: Path) -> bool:
    """Whether ``path``, with every link followed, lies inside ``root`` (also resolved)."""
    return path.resolve().is_relative_to(root.resolve())


def recorded_model_dir(recorded: str, cert_path: Path) -> tuple[Path | None, str]:
    """The signed ``model.dir``, followed only inside the run directory that holds the certificate's
    directory (``certify`` and ``pipeline`` write ``RUN/model`` beside ``RUN/certificate``); otherwise
    None and the reason, which tells the user to name the model with ``--model``."""
    run_dir = cert_path.resolve().parent.parent
    candidate = Path(recorded) if Path(recorded).is_absolute() else run_dir / recorded
    if run_dir == Path(run_dir.anchor):
        return None, (
            f"model: the certificate names {recorded}, and {cert_path} sits too near the filesystem root to tell its "
            "run directory; not read. Fix: pass --model with the certified model's directory"
        )
    if not confined(candidate, run_dir):
        return None, (
            f"model: the certificate names {recorded}, outside {run_dir} (the directory holding the certificate's folder); "
            "not read. Fix: pass --model with the certified model's directory"
        )
    return candidate, ""


def confined_hashes(directory: Path) -> tuple[dict[str, str], list[str]]:
    """SHA-256 of every file under ``directory`` by relative path, like ``file_hashes``, but a link
    that leads outside ``directory`` is listed (second value), never opened."""
    root = directory.resolve()
    hashes: dict[str, str] = {}
    outside: list[str] = []
    for path in sorted(directory.rglob("*")):
        name = path.relative_to(directory).as_posix()
        if not confined(path, root):
            outside.append(name)
        elif path.is_file():
            hashes[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes, outside
