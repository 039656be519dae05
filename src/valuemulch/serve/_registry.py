"""The local model registry: one SQLite file listing trained models, their certificates and status.

Deployment reads only from here, so that what serves is always a model whose certificate was
checked when it was registered. ``VALUEMULCH_REGISTRY`` overrides the location (tests, CI); the file
is created owner-only (600, in a 700 directory).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from valuemulch.certify import canonical_json, certificate_id, trusted_keys, verify_document
from valuemulch.errors import ConfigError
from valuemulch.filemodes import private_file, private_sqlite_sidecars
from valuemulch.settings import Settings

STATUSES = ("registered", "promoted", "retired")


@dataclass(frozen=True)
class Entry:
    id: str
    model_dir: str
    certificate: str
    certificate_id: str
    certified: bool
    testbed: str
    policy: str
    status: str
    registered: str

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _entry(row: tuple[Any, ...]) -> Entry:
    return Entry(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6], row[7], row[8])


def checked_certificate(
    path: Path, expected_id: str, trusted_key_files: Sequence[Path], *, key_dir: Path | None = None
) -> dict[str, Any]:
    """The certificate a registry entry points to, refused unless its id matches its content and it is
    signed by a trusted key (``trusted_key_files``, else the own key in ``key_dir``, see `trusted_keys`):
    the registry's `certified` flag alone is not evidence."""
    try:
        certificate = json.loads(path.read_text(encoding="utf-8"))
        certificate["model"]["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path}: cannot read the model's certificate ({err}); register the model again.") from None
    if certificate.get("certificate_id") != expected_id or certificate_id(certificate, canonical_json) != expected_id:
        raise ConfigError(
            f"{path}: the certificate's content does not match id {expected_id} recorded in the registry; it was changed."
        )
    ok, reason = verify_document(certificate, trusted_keys(trusted_key_files, key_dir=key_dir))
    if not ok:
        raise ConfigError(f"{path}: {reason}. Pass --key with the signer's public key, or certify the model again with your key.")
    return certificate


def signed_verdict(certificate: dict[str, Any]) -> bool:
    """Whether a checked certificate says CERTIFIED; anything but a literal ``true`` is not."""
    verdict = certificate.get("verdict")
    return isinstance(verdict, dict) and verdict.get("certified") is True


class Registry:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else Settings().registry

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        created = private_file(self.path)  # owner-only, before SQLite opens it (its -wal and -shm follow)
        con = sqlite3.connect(self.path, timeout=30)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            if created:
                private_sqlite_sidecars(self.path)
            con.execute(
                "CREATE TABLE IF NOT EXISTS models (id TEXT PRIMARY KEY, model_dir TEXT NOT NULL, certificate TEXT NOT NULL,"
                " certificate_id TEXT NOT NULL, certified INTEGER NOT NULL, testbed TEXT NOT NULL, policy TEXT NOT NULL,"
                " status TEXT NOT NULL, registered TEXT NOT NULL)"
            )
            with con:
                yield con
        finally:
            con.close()

    def register(self, certificate_path: str | Path, trusted: Sequence[Path] = ()) -> Entry:
        """Add the model a certificate describes, once its signature (by a trusted key: your own by
        default) and id are checked; idempotent for the same certificate."""
        path = Path(certificate_path).resolve()
        try:
            cert = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ConfigError(
                f"{path}: cannot read the certificate ({err}); pass the certificate.json that `certify` wrote."
            ) from None
        ok, reason = verify_document(cert, trusted_keys(trusted or []))
        if not ok or certificate_id(cert, canonical_json) != cert.get("certificate_id"):
            raise ConfigError(f"{path}: not registered: {reason if not ok else 'its id does not match its content'}.")
        entry = Entry(
            id=f"{cert['testbed']['name']}-{cert['model']['policy']}-{cert['certificate_id'][:8]}",
            model_dir=cert["model"]["dir"],
            certificate=str(path),
            certificate_id=cert["certificate_id"],
            certified=bool(cert["verdict"]["certified"]),
            testbed=cert["testbed"]["name"],
            policy=cert["model"]["policy"],
            status="registered",
            registered=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        with self._connect() as con:
            known = con.execute("SELECT * FROM models WHERE id = ?", (entry.id,)).fetchone()
            if known is not None:
                return _entry(known)
            con.execute("INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (*entry.__dict__.values(),))
        return entry

    def list(self) -> list[Entry]:
        with self._connect() as con:
            rows = con.execute("SELECT * FROM models ORDER BY registered, id").fetchall()
        return [_entry(r) for r in rows]

    def get(self, model_id: str) -> Entry:
        for entry in self.list():
            if entry.id == model_id:
                return entry
        raise ConfigError(f"No model '{model_id}' in the registry {self.path}; `valuemulch registry list` shows the ids.")

    def promote(
        self, model_id: str, *, allow_uncertified: bool = False, trusted: Sequence[Path] = (), key_dir: Path | None = None
    ) -> Entry:
        """Make ``model_id`` the one `serve` answers with; the previously promoted model steps back.

        Unless ``allow_uncertified``, its certificate must be signed by a ``trusted`` key (by default
        the own key in ``key_dir``, this machine's key directory unless given) and say CERTIFIED.
        """
        entry = self.get(model_id)
        if entry.status == "retired":
            raise ConfigError(f"Model '{model_id}' is retired; register a new certificate for it to serve again.")
        if not allow_uncertified:
            # The verdict is the signed certificate's; the `certified` column is a cache anyone can edit.
            checked = checked_certificate(Path(entry.certificate), entry.certificate_id, trusted, key_dir=key_dir)
            certified = signed_verdict(checked)
            if not certified:
                raise ConfigError(
                    f"Model '{model_id}' is not certified (see {entry.certificate}); only certified models are promoted. "
                    "For development, pass --allow-uncertified: every answer is then marked uncertified."
                )
        with self._connect() as con:
            if not allow_uncertified:
                con.execute("UPDATE models SET certified = 1 WHERE id = ?", (model_id,))  # refresh the cache
            con.execute("UPDATE models SET status = 'registered' WHERE status = 'promoted'")
            con.execute("UPDATE models SET status = 'promoted' WHERE id = ?", (model_id,))
        return self.get(model_id)

    def retire(self, model_id: str) -> Entry:
        """Take a model out of service for good (its rows stay, for the audit trail)."""
        self.get(model_id)
        with self._connect() as con:
            con.execute("UPDATE models SET status = 'retired' WHERE id = ?", (model_id,))
        return self.get(model_id)

    def promoted(self) -> Entry | None:
        return next((e for e in self.list() if e.status == "promoted"), None)

    def find_by_dir(self, model_dir: str | Path) -> Entry | None:
        wanted = str(Path(model_dir).resolve())
        return next((e for e in reversed(self.list()) if str(Path(e.model_dir).resolve()) == wanted), None)
