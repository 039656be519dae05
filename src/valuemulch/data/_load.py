"""Where data lives, and reading any supported format from a path with the importer chosen for it."""

from __future__ import annotations

from pathlib import Path

from valuemulch.data._canonical import read_csv, read_jsonl
from valuemulch.data._globalopinionqa import looks_like_goqa_csv, looks_like_goqa_json, read_goqa_csv, read_goqa_json
from valuemulch.data._opinionqa import is_opinionqa_dir, read_opinionqa
from valuemulch.errors import DataError
from valuemulch.settings import Settings, env_name
from valuemulch.types import Norms

DATA_ENV = env_name("data")


def resolve_data_root(data: str | Path | None = None) -> Path:
    """``--data DIR``, else ``$VALUEMULCH_DATA``, else the user cache; an actionable error when none exists."""
    if data is not None:  # the flag wins, and an unrelated bad VALUEMULCH_* variable cannot stop it
        chosen, how = Path(data), "--data"
    elif (settings := Settings()).data is not None:
        chosen, how = settings.data, f"${DATA_ENV}"
    else:
        chosen, how = settings.cache / "data", "the user cache"
    if not chosen.is_dir():
        raise DataError(
            f"data directory {chosen} (from {how})",
            expected="a directory holding the survey data (opinionqa/, modular_pluralism/, distributional_alignment/)",
            got="no such directory",
            fix=f"pass --data DIR or set {DATA_ENV}=DIR, e.g. {DATA_ENV}=../shared/data",
        )
    return chosen.resolve()


def read_norms(path: str | Path) -> Norms:
    """Read norms from a path, choosing the importer from what is there.

    A folder of OpinionQA surveys; a GlobalOpinionQA JSON list, Meister ``data.json`` or Hugging Face
    CSV; or the canonical JSONL/CSV.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(str(path), expected="a data file or folder", got="no such path", fix="check the --norms path")
    if path.is_dir():
        if is_opinionqa_dir(path):
            return read_opinionqa(path)
        raise DataError(
            str(path),
            expected="an OpinionQA folder (American_Trends_Panel_W*/ with info.csv and <ATTR>_data.json), or a file",
            got="a folder without survey data",
            fix="point --norms at the OpinionQA folder or at a .jsonl/.csv/.json file",
        )
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return read_jsonl(path)
    if suffix == ".json" and looks_like_goqa_json(path):
        return read_goqa_json(path)
    if suffix == ".csv":
        return read_goqa_csv(path) if looks_like_goqa_csv(path) else read_csv(path)
    raise DataError(
        str(path),
        expected="one of: OpinionQA folder, GlobalOpinionQA .json or .csv, canonical .jsonl or .csv",
        got=f"a '{suffix or 'extensionless'}' file",
        fix="convert the data to the canonical JSONL described in docs/data.md",
    )
