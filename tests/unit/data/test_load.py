"""`read_norms` picks the importer from the path; `resolve_data_root` picks --data, then the env, then the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from valuemulch.data import DATA_ENV, read_norms, resolve_data_root, user_cache_dir
from valuemulch.data._canonical import read_csv, read_jsonl, write_csv, write_jsonl
from valuemulch.data._globalopinionqa import GoqaNorms, read_goqa_csv, read_goqa_json
from valuemulch.data._opinionqa import read_opinionqa
from valuemulch.errors import DataError
from valuemulch.types import NormItem, Norms, Question

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
OPINIONQA = FIXTURES / "opinionqa"
GOQA = FIXTURES / "globalopinionqa"


def _norms() -> Norms:
    rain = Question(id="RAIN", text="Do you like rain?", options=("Yes", "No", "Refused"), ordinal=(1.0, 2.0, None))
    return Norms(
        [
            NormItem("Britain", rain, np.array([0.4, 0.5, 0.1]), 120.0),
            NormItem("S. Korea", rain, np.array([0.6, 0.3, 0.1]), None),
        ]
    )


# --------------------------------------------------------------------------------------------------
# read_norms


def test_opinionqa_folder() -> None:
    norms = read_norms(OPINIONQA)
    assert norms.content_hash() == read_opinionqa(OPINIONQA).content_hash()
    assert {q.source for q in norms.questions.values()} == {"opinionqa"}
    assert norms.skipped  # the OpinionQA importer's bookkeeping came along


def test_one_opinionqa_survey_folder() -> None:
    wave = OPINIONQA / "American_Trends_Panel_W99"
    assert read_norms(wave).content_hash() == read_opinionqa(wave).content_hash()


def test_canonical_jsonl(tmp_path: Path) -> None:
    path = write_jsonl(_norms(), tmp_path / "norms.jsonl")
    norms = read_norms(path)
    assert norms.content_hash() == read_jsonl(path).content_hash() == _norms().content_hash()
    assert not isinstance(norms, GoqaNorms)


@pytest.mark.parametrize("name", ["norms.csv", "NORMS.CSV"])
def test_canonical_csv(tmp_path: Path, name: str) -> None:
    path = write_csv(_norms(), tmp_path / name)
    norms = read_norms(path)
    assert norms.content_hash() == read_csv(path).content_hash() == _norms().content_hash()
    assert not isinstance(norms, GoqaNorms)


@pytest.mark.parametrize("name", ["goqa_list.json", "goqa_dict.json"])
def test_globalopinionqa_json(name: str) -> None:
    norms = read_norms(GOQA / name)
    assert isinstance(norms, GoqaNorms)
    assert norms.content_hash() == read_goqa_json(GOQA / name).content_hash()
    assert {q.source for q in norms.questions.values()} == {"globalopinionqa"}
    assert "Britain" in norms.communities


def test_globalopinionqa_hf_csv() -> None:
    norms = read_norms(GOQA / "global_opinions.csv")
    assert isinstance(norms, GoqaNorms)
    assert norms.content_hash() == read_goqa_csv(GOQA / "global_opinions.csv").content_hash()
    assert {q.source for q in norms.questions.values()} == {"globalopinionqa"}


def test_the_same_question_meets_itself_across_goqa_layouts() -> None:
    from_list = read_norms(GOQA / "goqa_list.json")
    from_csv = read_norms(GOQA / "global_opinions.csv")
    assert set(from_list.questions) & set(from_csv.questions)


@pytest.mark.parametrize("name", ["norms.txt", "norms", "norms.parquet"])
def test_unknown_suffix_raises(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("community,question_id\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_norms(path)
    message = str(info.value)
    assert str(path) in message
    assert "expected one of" in message
    assert "Fix:" in message


def test_json_that_is_not_globalopinionqa_raises(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"hello": "world"}', encoding="utf-8")
    with pytest.raises(DataError, match="Fix:") as info:
        read_norms(path)
    assert str(path) in str(info.value)


def test_missing_path_raises(tmp_path: Path) -> None:
    path = tmp_path / "absent.jsonl"
    with pytest.raises(DataError) as info:
        read_norms(path)
    message = str(info.value)
    assert str(path) in message
    assert "no such path" in message
    assert "Fix:" in message


def test_folder_without_survey_data_raises(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    with pytest.raises(DataError, match="a folder without survey data") as info:
        read_norms(tmp_path)
    assert "Fix:" in str(info.value)


# --------------------------------------------------------------------------------------------------
# resolve_data_root


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Three existing data roots (--data, $VALUEMULCH_DATA, the user cache), with the cache under tmp_path."""
    monkeypatch.delenv("VALUEMULCH_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    paths = {"arg": tmp_path / "arg", "env": tmp_path / "env", "cache": tmp_path / "xdg" / "valuemulch" / "data"}
    for path in paths.values():
        path.mkdir(parents=True)
    monkeypatch.setenv(DATA_ENV, str(paths["env"]))
    return paths


def test_user_cache_dir_follows_xdg(roots: dict[str, Path], tmp_path: Path) -> None:
    assert user_cache_dir() == tmp_path / "xdg" / "valuemulch"


def test_data_argument_wins(roots: dict[str, Path]) -> None:
    assert resolve_data_root(roots["arg"]) == roots["arg"].resolve()
    assert resolve_data_root(str(roots["arg"])) == roots["arg"].resolve()


def test_env_wins_over_the_cache(roots: dict[str, Path]) -> None:
    assert resolve_data_root() == roots["env"].resolve()


@pytest.mark.parametrize("unset", ["delete", "empty"])
def test_cache_is_the_last_resort(roots: dict[str, Path], monkeypatch: pytest.MonkeyPatch, unset: str) -> None:
    if unset == "delete":
        monkeypatch.delenv(DATA_ENV)
    else:
        monkeypatch.setenv(DATA_ENV, "")
    assert resolve_data_root() == roots["cache"].resolve()


def test_relative_data_argument_is_resolved(roots: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(roots["arg"].parent)
    resolved = resolve_data_root("arg")
    assert resolved.is_absolute()
    assert resolved == roots["arg"].resolve()


@pytest.mark.parametrize("which", ["arg", "env", "cache"])
def test_missing_directory_says_how_to_fix(roots: dict[str, Path], monkeypatch: pytest.MonkeyPatch, which: str) -> None:
    missing = roots[which].parent / "gone"
    if which == "cache":
        monkeypatch.delenv(DATA_ENV)
        roots["cache"].rmdir()
        missing = roots["cache"]
    elif which == "env":
        monkeypatch.setenv(DATA_ENV, str(missing))
    with pytest.raises(DataError) as info:
        resolve_data_root(missing if which == "arg" else None)
    message = str(info.value)
    assert str(missing) in message
    assert {"arg": "--data", "env": f"${DATA_ENV}", "cache": "the user cache"}[which] in message
    assert "Fix:" in message
    assert DATA_ENV in message.split("Fix:")[1]
    assert "--data" in message.split("Fix:")[1]


def test_a_file_is_not_a_data_root(roots: dict[str, Path]) -> None:
    a_file = roots["arg"] / "file.txt"
    a_file.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=DATA_ENV):
        resolve_data_root(a_file)


def test_valuemulch_cache_wins_over_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("VALUEMULCH_CACHE", str(tmp_path / "mine"))
    assert user_cache_dir() == tmp_path / "mine"
