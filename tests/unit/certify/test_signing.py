"""Certificate signatures: keys on disk with safe modes, tamper detection, and trust that the document cannot grant itself."""

from __future__ import annotations

import base64
import copy
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import valuemulch.certify._signing as _signing
from valuemulch.certify._signing import (
    KEYS_ENV,
    canonical_json,
    default_key_dir,
    init_keys,
    key_id,
    load_private_key,
    load_public_key,
    public_key_from_b64,
    sign_document,
    trusted_keys,
    verify_document,
)
from valuemulch.errors import ConfigError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """A umask of 0 so file modes come from our code alone, not from the umask hiding a mistake."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def keys_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "keys"
    monkeypatch.setenv(KEYS_ENV, str(directory))
    return directory


def _certificate() -> dict[str, Any]:
    return {
        "schema": "valuemulch.certificate/2",
        "model": {"label": "encoder", "files": {"policy.json": "ab" * 32}},
        "evaluation": {"seen": {"metrics": {"one_minus_jsd": {"mean": 0.787, "ci": [0.772, 0.802], "n": 5164}}}},
        "verdict": {"certified": True, "rules": []},
        "note": "Zürich, 東京",  # non-ASCII must survive signing as UTF-8
    }


# -- key directory and files --------------------------------------------------------------------


def test_default_key_dir_follows_env_then_xdg_then_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(KEYS_ENV, str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_key_dir() == tmp_path / "explicit"
    monkeypatch.delenv(KEYS_ENV)
    assert default_key_dir() == tmp_path / "xdg" / "valuemulch" / "keys"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_key_dir() == tmp_path / "home" / ".config" / "valuemulch" / "keys"


def test_init_keys_writes_private_0600_public_0644_in_dir_0700(keys_dir: Path, permissive_umask: None) -> None:
    pair = init_keys()
    assert pair.private == keys_dir / "signing.key"
    assert pair.public == keys_dir / "signing.pub"
    assert _mode(keys_dir) == 0o700
    assert _mode(pair.private) == 0o600
    assert _mode(pair.public) == 0o644
    assert pair.private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pair.public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    public = load_public_key(pair.public)
    assert pair.key_id == key_id(public)
    assert len(pair.key_id) == 16 and int(pair.key_id, 16) >= 0
    assert key_id(load_private_key(pair.private).public_key()) == pair.key_id


def test_public_key_stays_readable_under_a_strict_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        pair = init_keys(tmp_path)
    finally:
        os.umask(old)
    assert _mode(pair.public) == 0o644  # verifiers on the same machine can read it
    assert _mode(pair.private) == 0o600


def test_init_keys_refuses_to_overwrite_and_force_replaces(tmp_path: Path, permissive_umask: None) -> None:
    first = init_keys(tmp_path)
    before = first.private.read_bytes()
    with pytest.raises(ConfigError, match=r"signing\.key already exists.*--force.*new key id"):
        init_keys(tmp_path)
    assert first.private.read_bytes() == before

    second = init_keys(tmp_path, force=True)
    assert second.key_id != first.key_id
    assert first.private.read_bytes() != before
    assert _mode(second.private) == 0o600
    assert _mode(second.public) == 0o644
    assert key_id(load_public_key(second.public)) == second.key_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signing.key", "signing.pub"]  # no temp files left


def test_init_keys_refuses_when_only_a_stale_public_key_exists(tmp_path: Path) -> None:
    (tmp_path / "signing.pub").write_text("old")
    with pytest.raises(ConfigError, match=r"signing\.pub already exists"):
        init_keys(tmp_path)
    assert not (tmp_path / "signing.key").exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_loading_a_key_others_can_read_fails_with_chmod_hint(tmp_path: Path, mode: int) -> None:
    pair = init_keys(tmp_path)
    pair.private.chmod(mode)
    with pytest.raises(ConfigError, match=rf"chmod 600 {pair.private}"):
        load_private_key(pair.private)
    with pytest.raises(ConfigError, match="chmod 600"):
        sign_document(_certificate(), pair.private)


def test_missing_or_foreign_key_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="valuemulch keys init"):
        load_private_key(tmp_path / "nope.key")
    with pytest.raises(ConfigError, match="valuemulch keys init"):
        load_public_key(tmp_path / "nope.pub")
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key")
    garbage.chmod(0o600)
    with pytest.raises(ConfigError, match="Ed25519"):
        load_private_key(garbage)
    with pytest.raises(ConfigError, match="Ed25519"):
        load_public_key(garbage)


def test_public_key_from_b64_rejects_bad_input(tmp_path: Path) -> None:
    pair = init_keys(tmp_path)
    raw = load_public_key(pair.public).public_bytes_raw()
    assert key_id(public_key_from_b64(base64.b64encode(raw).decode())) == pair.key_id
    with pytest.raises(ConfigError, match="base64"):
        public_key_from_b64("not base64!!")
    with pytest.raises(ConfigError, match="32 bytes"):
        public_key_from_b64(base64.b64encode(raw[:16]).decode())


# -- canonical form -----------------------------------------------------------------------------


def test_canonical_json_ignores_key_order_and_is_compact_utf8() -> None:
    a = {"b": 1, "a": {"y": [1, 2.5], "x": "é"}}
    b = {"a": {"x": "é", "y": [1, 2.5]}, "b": 1}
    assert canonical_json(a) == canonical_json(b) == '{"a":{"x":"é","y":[1,2.5]},"b":1}'.encode()
    assert canonical_json(a) != canonical_json({"b": 1, "a": {"y": [2.5, 1], "x": "é"}})  # list order matters


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_canonical_json_rejects_non_finite_numbers_and_says_where(bad: float) -> None:
    with pytest.raises(ConfigError, match=r"NaN or infinity \(at \$\.evaluation\.kl\[1\]\).*null"):
        canonical_json({"evaluation": {"kl": [0.1, bad]}})


# -- signing and verifying ----------------------------------------------------------------------


def test_sign_then_verify_round_trip_through_json(keys_dir: Path) -> None:
    pair = init_keys()
    document = _certificate()
    signed = sign_document(document, pair.private)
    assert document == _certificate()  # the input is not modified
    block = signed["signature"]
    assert block["algorithm"] == "ed25519"
    assert block["key_id"] == pair.key_id
    assert {k: v for k, v in signed.items() if k != "signature"} == document

    # What a verifier sees: the file re-read, keys in another order.
    reread = json.loads(json.dumps(dict(reversed(list(signed.items()))), indent=2, ensure_ascii=True))
    ok, reason = verify_document(reread, trusted_keys())
    assert ok, reason
    assert reason == f"signed by trusted key {pair.key_id}"


def test_resigning_replaces_the_old_signature(tmp_path: Path) -> None:
    a, b = init_keys(tmp_path / "a"), init_keys(tmp_path / "b")
    resigned = sign_document(sign_document(_certificate(), a.private), b.private)
    assert resigned["signature"]["key_id"] == b.key_id
    assert verify_document(resigned, [load_public_key(b.public)])[0]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: d["evaluation"]["seen"]["metrics"]["one_minus_jsd"].__setitem__("mean", 0.9),
        lambda d: d["verdict"].__setitem__("certified", False),
        lambda d: d.__setitem__("extra", 1),
        lambda d: d.pop("note"),
    ],
    ids=["metric-edited", "verdict-flipped", "key-added", "key-removed"],
)
def test_a_document_changed_after_signing_fails(keys_dir: Path, tamper: Any) -> None:
    pair = init_keys()
    signed = sign_document(_certificate(), pair.private)
    assert verify_document(signed, trusted_keys())[0]
    changed = copy.deepcopy(signed)
    tamper(changed)
    ok, reason = verify_document(changed, trusted_keys())
    assert not ok
    assert "changed after it was signed" in reason and pair.key_id in reason


def test_a_document_signed_by_another_key_is_not_trusted_until_that_key_is(tmp_path: Path) -> None:
    mine, theirs = init_keys(tmp_path / "mine"), init_keys(tmp_path / "theirs")
    signed = sign_document(_certificate(), theirs.private)  # embeds their public key, which is valid for it

    ok, reason = verify_document(signed, trusted_keys([mine.public]))
    assert not ok
    assert f"signed by key {theirs.key_id} which is not trusted (trusted: {mine.key_id})" in reason
    assert "--key" in reason

    ok, reason = verify_document(signed, [])
    assert not ok and "trusted: none" in reason

    ok, reason = verify_document(signed, trusted_keys([mine.public, theirs.public]))
    assert ok and theirs.key_id in reason


def test_claiming_a_trusted_key_does_not_help_a_forger(tmp_path: Path) -> None:
    mine, theirs = init_keys(tmp_path / "mine"), init_keys(tmp_path / "theirs")
    forged = sign_document(_certificate(), theirs.private)
    mine_b64 = base64.b64encode(load_public_key(mine.public).public_bytes_raw()).decode()

    # Swap in my key id and key: the signature is checked with my trusted key and fails.
    forged["signature"].update(key_id=mine.key_id, public_key=mine_b64)
    ok, reason = verify_document(forged, trusted_keys([mine.public]))
    assert not ok and "does not match the content" in reason

    # Claim my key id but keep their key: the block contradicts itself.
    forged = sign_document(_certificate(), theirs.private)
    forged["signature"]["key_id"] = mine.key_id
    ok, reason = verify_document(forged, trusted_keys([mine.public]))
    assert not ok and "does not match the embedded public key" in reason


def test_verification_uses_the_trusted_key_even_when_key_ids_collide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 64-bit key id can collide; a forger whose key shares a trusted id must still fail."""
    mine, theirs = init_keys(tmp_path / "mine"), init_keys(tmp_path / "theirs")
    forged = sign_document(_certificate(), theirs.private)
    monkeypatch.setattr(_signing, "key_id", lambda public_key: "0" * 16)  # every key now has the same id
    forged["signature"]["key_id"] = "0" * 16
    ok, reason = verify_document(forged, trusted_keys([mine.public]))
    assert not ok and "does not match the content" in reason


def test_unsigned_malformed_and_foreign_algorithm_documents_fail(keys_dir: Path) -> None:
    pair = init_keys()
    trusted = trusted_keys()
    ok, reason = verify_document(_certificate(), trusted)
    assert not ok and "no 'signature' block" in reason

    signed = sign_document(_certificate(), pair.private)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"algorithm": "rsa"}, "unsupported signature algorithm 'rsa'"),
        ({"value": "%%%not-base64"}, "not valid base64"),
        ({"public_key": "%%%"}, "not valid base64"),
        ({"public_key": None}, "'public_key' must be a base64 string"),
        ({"value": 42}, "must be a base64 string"),
    ]
    for change, expected in cases:
        broken = copy.deepcopy(signed)
        broken["signature"].update(change)
        ok, reason = verify_document(broken, trusted)
        assert not ok and expected in reason, (change, reason)
    ok, reason = verify_document({**signed, "signature": "abc"}, trusted)
    assert not ok and "malformed signature" in reason


def test_trusted_keys_defaults_to_own_public_key_or_nothing(keys_dir: Path) -> None:
    assert trusted_keys() == []
    pair = init_keys()
    assert [key_id(k) for k in trusted_keys()] == [pair.key_id]
    other = init_keys(keys_dir.parent / "other")
    assert [key_id(k) for k in trusted_keys([other.public])] == [other.key_id]
