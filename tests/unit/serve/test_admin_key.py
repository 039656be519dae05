"""The admin key: shown once, only its hash on disk, never overwritten; the hash file is checked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from valuemulch.errors import ConfigError
from valuemulch.serve import create_admin_key, read_admin_key_hash


def test_only_the_hash_is_written_and_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "admin.sha256"
    key = create_admin_key(out)
    assert key not in out.read_text()
    assert read_admin_key_hash(out) == hashlib.sha256(key.encode()).hexdigest()
    assert create_admin_key(tmp_path / "other") != key


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "admin.sha256"
    out.write_text("keep me\n")
    with pytest.raises(ConfigError, match="exists"):
        create_admin_key(out)
    assert out.read_text() == "keep me\n"


def test_upper_case_hex_is_accepted(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"k").hexdigest()
    (tmp_path / "h").write_text(f"  {digest.upper()}\n")
    assert read_admin_key_hash(tmp_path / "h") == digest


@pytest.mark.parametrize("content", ["", "a" * 63, "g" * 64, "the-key-itself-pasted-by-mistake"])
def test_anything_but_64_hex_digits_is_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / "h").write_text(content)
    with pytest.raises(ConfigError, match="64 hex digits"):
        read_admin_key_hash(tmp_path / "h")
