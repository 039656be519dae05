"""GlobalOpinionQA importers: three layouts, stable content ids, clear errors, and an offline download."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from valuemulch.data._globalopinionqa import (
    GoqaNorms,
    extract_question_text,
    looks_like_goqa_csv,
    looks_like_goqa_json,
    parse_selections,
    read_goqa_csv,
    read_goqa_json,
)
from valuemulch.data._goqa_download import download_global_opinions
from valuemulch.errors import DataError
from valuemulch.types import question_id_from_content

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "globalopinionqa"
LIST_JSON = FIXTURES / "goqa_list.json"
DICT_JSON = FIXTURES / "goqa_dict.json"
HF_CSV = FIXTURES / "global_opinions.csv"

TREES = "Should cities plant more trees along main roads?"
TREES_OPTIONS = ("Yes", "No", "DK/Refused")
BUS = "Would you, personally, ride a self-driving bus?"
STREETS = "Which matters more for our country's future, quieter streets or faster trains?"
HEADER = "question,selections,options,source\n"


def _qid(norms: GoqaNorms, text: str, options: tuple[str, ...]) -> str:
    matches = [q.id for q in norms.questions.values() if q.text == text and q.options == options]
    assert len(matches) == 1, matches
    return matches[0]


def _write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def _list_record(**overrides: object) -> dict[str, object]:
    record: dict[str, object] = {
        "question": "Question: Do you like rain?\nOptions: A. Yes B. No\nAnswer:",
        "options": ["Yes", "No"],
        "attribute": "Britain",
        "gold_distribution": [0.4, 0.6],
        "pred_distribution": None,
        "id": 1,
    }
    record.update(overrides)
    return record


# --------------------------------------------------------------------------------------------------
# Valid files


def test_list_format_reads_all_records() -> None:
    norms = read_goqa_json(LIST_JSON)
    assert isinstance(norms, GoqaNorms)
    assert len(norms) == 8  # 9 records, one exact duplicate
    assert norms.duplicates == 1
    assert getattr(norms, "skipped", {"duplicate record (identical, kept once)": 1}) == {
        "duplicate record (identical, kept once)": 1
    }
    assert norms.renormalised == 1  # the record summing to 0.99
    assert norms.communities == ["Britain", "India (Current national sample)", "S. Korea"]
    trees = norms.get("S. Korea", question_id_from_content("GOQA", TREES, TREES_OPTIONS))
    assert trees is not None
    q = trees.question
    assert q.text == TREES
    assert q.options == TREES_OPTIONS
    assert q.ordinal is None
    assert q.refusal == (False, False, True)
    assert q.source == "globalopinionqa"
    assert trees.n is None
    np.testing.assert_allclose(trees.distribution, [0.71, 0.25, 0.04])


def test_list_format_keeps_zero_mass_of_merged_variants() -> None:
    norms = read_goqa_json(LIST_JSON)
    item = norms.get("S. Korea", _qid_any(norms, STREETS))
    assert item is not None
    np.testing.assert_allclose(item.distribution, [0.0, 0.0, 0.3, 0.6, 0.1])


def _qid_any(norms: GoqaNorms, text: str) -> str:
    return next(q.id for q in norms.questions.values() if q.text == text)


def test_list_format_prompt_without_question_shape_is_used_as_is() -> None:
    norms = read_goqa_json(LIST_JSON)
    assert any(q.text == "Is a four-day working week a good idea?" for q in norms.questions.values())


def test_dict_format_reads_meister_layout() -> None:
    norms = read_goqa_json(DICT_JSON)
    assert len(norms) == 4
    assert norms.duplicates == 0
    laundry = _qid_any(norms, "Is it acceptable to hang laundry outside in the city?")
    assert norms.questions[laundry].options == ("Yes", "No", "Don't know")
    assert norms.questions[laundry].refusal == (False, False, True)
    assert norms.get("India (Current national sample)", laundry) is not None


def test_csv_format_reads_hf_schema() -> None:
    norms = read_goqa_csv(HF_CSV)
    assert len(norms) == 7
    assert norms.communities == ["Britain", "India (Current national sample)", "S. Korea"]
    bus = _qid_any(norms, BUS)
    assert norms.questions[bus].options == ("Yes, definitely", "Yes, probably", "No")
    item = norms.get("Britain", bus)
    assert item is not None
    np.testing.assert_allclose(item.distribution, [0.2, 0.35, 0.45])


def test_ids_are_stable_and_equal_across_formats() -> None:
    expected = question_id_from_content("GOQA", TREES, TREES_OPTIONS)
    assert expected == "GOQA_cf671b7e90c4"  # pinned: a change here moves questions between splits
    for norms in (read_goqa_json(LIST_JSON), read_goqa_json(DICT_JSON), read_goqa_csv(HF_CSV)):
        assert _qid(norms, TREES, TREES_OPTIONS) == expected
        item = norms.get("Britain", expected)
        assert item is not None
        np.testing.assert_allclose(item.distribution, [0.62, 0.3, 0.08])
    # Reading twice gives the same content.
    assert read_goqa_csv(HF_CSV).content_hash() == read_goqa_csv(HF_CSV).content_hash()
    streets_json = _qid_any(read_goqa_json(LIST_JSON), STREETS)
    assert streets_json == _qid_any(read_goqa_csv(HF_CSV), STREETS)


def test_same_text_other_options_gets_other_id() -> None:
    norms = read_goqa_json(LIST_JSON)
    three = _qid(norms, TREES, TREES_OPTIONS)
    two = _qid(norms, TREES, ("Yes", "No"))
    assert three != two
    assert norms.get("Britain", three) is not None and norms.get("Britain", two) is not None


def test_extract_question_text() -> None:
    assert extract_question_text("Question: Is it? \nOptions: A. Yes B. No\nAnswer:") == "Is it?"
    assert extract_question_text("  Just a question?  ") == "Just a question?"
    assert extract_question_text("Question: Two\nlines?\nOptions: A. x B. y\nAnswer:") == "Two\nlines?"


def test_parse_selections_variants() -> None:
    wrapped = parse_selections("defaultdict(<class 'list'>, {'Belgium': [0.12, 0.88], 'France': [0.3, 0.7]})", "x")
    assert wrapped == {"Belgium": [0.12, 0.88], "France": [0.3, 0.7]}
    assert parse_selections("{'Belgium': [1, 0]}", "x") == {"Belgium": [1.0, 0.0]}


# --------------------------------------------------------------------------------------------------
# Sniffers


def test_sniffers(tmp_path: Path) -> None:
    assert looks_like_goqa_json(LIST_JSON)
    assert looks_like_goqa_json(DICT_JSON)
    assert not looks_like_goqa_json(HF_CSV)
    assert looks_like_goqa_csv(HF_CSV)
    assert not looks_like_goqa_csv(LIST_JSON)
    assert not looks_like_goqa_csv(DICT_JSON)
    canonical = _write(
        tmp_path,
        "norms.jsonl",
        json.dumps({"community": "Britain", "question_id": "Q1", "question": "q", "options": ["a", "b"], "distribution": [1, 0]})
        + "\n",
    )
    assert not looks_like_goqa_json(canonical)
    canonical_csv = _write(tmp_path, "norms.csv", "community,question_id,question,options,distribution\n")
    assert not looks_like_goqa_csv(canonical_csv)
    assert not looks_like_goqa_json(tmp_path / "missing.json")
    assert not looks_like_goqa_csv(tmp_path)


# --------------------------------------------------------------------------------------------------
# Malformed inputs


def test_bad_selections_string(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "bad.csv", HEADER + "\"Q?\",\"defaultdict(<class 'list'>, {'Belgium': [0.1, 0.9]\",\"['Yes', 'No']\",GAS\n"
    )
    with pytest.raises(DataError) as info:
        read_goqa_csv(path)
    err = info.value
    assert err.where == f"{path}:2"
    assert err.field == "selections"
    assert "Fix:" in str(err)


def test_selections_must_not_be_code(tmp_path: Path) -> None:
    path = _write(tmp_path, "evil.csv", HEADER + "\"Q?\",\"__import__('os').getcwd()\",\"['Yes', 'No']\",GAS\n")
    with pytest.raises(DataError, match="selections"):
        read_goqa_csv(path)
    path = _write(
        tmp_path, "evil2.csv", HEADER + "\"Q?\",\"defaultdict(<class 'list'>, {'B': [len('ab'), 0]})\",\"['Yes', 'No']\",GAS\n"
    )
    with pytest.raises(DataError, match="selections"):
        read_goqa_csv(path)


def test_bad_options_repr(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.csv", HEADER + "\"Q?\",\"{'Belgium': [0.1, 0.9]}\",\"['Yes', 'No'\",GAS\n")
    with pytest.raises(DataError) as info:
        read_goqa_csv(path)
    assert info.value.field == "options"


def test_csv_length_mismatch_names_line_and_country(tmp_path: Path) -> None:
    rows = (
        "\"Q1?\",\"{'Belgium': [0.1, 0.9]}\",\"['Yes', 'No']\",GAS\n"
        "\"Q2?\",\"{'France': [0.1, 0.2, 0.7]}\",\"['Yes', 'No']\",GAS\n"
    )
    path = _write(tmp_path, "bad.csv", HEADER + rows)
    with pytest.raises(DataError) as info:
        read_goqa_csv(path)
    assert info.value.where == f"{path}:3"
    assert info.value.field == "selections['France']"
    assert "2 values, one per option" in str(info.value)


def test_missing_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.csv", "question,options,source\n\"Q?\",\"['Yes', 'No']\",GAS\n")
    with pytest.raises(DataError) as info:
        read_goqa_csv(path)
    assert info.value.where == f"{path}:1"
    assert info.value.field == "selections"


def test_list_length_mismatch(tmp_path: Path) -> None:
    records = [_list_record(), _list_record(attribute="France", gold_distribution=[0.2, 0.3, 0.5])]
    path = _write(tmp_path, "bad.json", json.dumps(records))
    with pytest.raises(DataError) as info:
        read_goqa_json(path)
    assert info.value.where == f"{path} record 1"
    assert info.value.field == "gold_distribution"
    assert "2 values" in str(info.value)


def test_negative_mass(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.json", json.dumps([_list_record(gold_distribution=[-0.1, 1.1])]))
    with pytest.raises(DataError, match="non-negative mass") as info:
        read_goqa_json(path)
    assert info.value.where == f"{path} record 0"
    path = _write(tmp_path, "bad.csv", HEADER + "\"Q?\",\"{'Belgium': [0.5, -0.5]}\",\"['Yes', 'No']\",GAS\n")
    with pytest.raises(DataError, match="non-negative mass"):
        read_goqa_csv(path)


def test_bad_json(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.json", '[{"question": "Question: x\\nOptions: A. a\\nAnswer:",\n "options": ["a", "b"],,}]')
    with pytest.raises(DataError, match="valid JSON") as info:
        read_goqa_json(path)
    assert info.value.where.startswith(f"{path}:2:")


def test_missing_and_mistyped_fields(tmp_path: Path) -> None:
    record = _list_record()
    del record["attribute"]
    path = _write(tmp_path, "bad.json", json.dumps([record]))
    with pytest.raises(DataError) as info:
        read_goqa_json(path)
    assert info.value.field == "attribute"
    path = _write(tmp_path, "bad.json", json.dumps([_list_record(gold_distribution=["0.4", "0.6"])]))
    with pytest.raises(DataError, match="list of numbers"):
        read_goqa_json(path)
    path = _write(tmp_path, "bad.json", json.dumps([_list_record(options=["Yes", "Yes"])]))
    with pytest.raises(DataError, match="distinct options") as info:
        read_goqa_json(path)
    assert info.value.where == f"{path} record 0"
    path = _write(tmp_path, "bad.json", json.dumps("not a list"))
    with pytest.raises(DataError, match="JSON list"):
        read_goqa_json(path)


def test_dict_format_errors(tmp_path: Path) -> None:
    bad_repr = {"Q?": {"Britain": [0.5, 0.5], "MC_options": "['Yes', 'No'", "countries": ["Britain"]}}
    path = _write(tmp_path, "bad.json", json.dumps(bad_repr))
    with pytest.raises(DataError) as info:
        read_goqa_json(path)
    assert info.value.field == "MC_options"
    code = {"Q?": {"Britain": [0.5, 0.5], "MC_options": "__import__('os').listdir('.')", "countries": ["Britain"]}}
    path = _write(tmp_path, "bad.json", json.dumps(code))
    with pytest.raises(DataError, match="MC_options"):
        read_goqa_json(path)
    mismatch = {"Q?": {"Britain": [0.5, 0.5], "MC_options": "['Yes', 'No']", "countries": ["Britain", "Japan"]}}
    path = _write(tmp_path, "bad.json", json.dumps(mismatch))
    with pytest.raises(DataError) as info:
        read_goqa_json(path)
    assert info.value.field == "countries"
    short = {"A?": {"Japan": [1.0, 0.0], "MC_options": "['Yes', 'No']"}, "Q?": {"Britain": [1.0], "MC_options": "['Yes', 'No']"}}
    path = _write(tmp_path, "bad.json", json.dumps(short))
    with pytest.raises(DataError) as info:
        read_goqa_json(path)
    assert info.value.where == f"{path} record 1 country 'Britain'"
    assert info.value.field == "Britain"


def test_conflicting_duplicates_name_both_records(tmp_path: Path) -> None:
    records = [_list_record(), _list_record(id=2, attribute="France"), _list_record(id=3, gold_distribution=[0.5, 0.5])]
    path = _write(tmp_path, "dup.json", json.dumps(records))
    with pytest.raises(DataError) as info:
        read_goqa_json(path)
    assert info.value.where == f"{path} record 2"
    assert f"{path} record 0" in str(info.value)


def test_agreeing_duplicates_are_counted(tmp_path: Path) -> None:
    records = [_list_record(), _list_record(id=2, gold_distribution=[0.4 + 1e-9, 0.6 - 1e-9])]
    norms = read_goqa_json(_write(tmp_path, "dup.json", json.dumps(records)))
    assert len(norms) == 1
    assert norms.duplicates == 1


def test_csv_duplicate_rows_conflict(tmp_path: Path) -> None:
    rows = "\"Q?\",\"{'Belgium': [0.1, 0.9]}\",\"['Yes', 'No']\",GAS\n\"q?\",\"{'Belgium': [0.2, 0.8]}\",\"['yes', 'no']\",GAS\n"
    path = _write(tmp_path, "dup.csv", HEADER + rows)
    with pytest.raises(DataError) as info:
        read_goqa_csv(path)
    assert info.value.where == f"{path}:3"
    assert f"{path}:2" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_goqa_csv(tmp_path / "absent.csv")


# --------------------------------------------------------------------------------------------------
# Download


def test_download_offline_raises_one_line_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError) as info:
        download_global_opinions(cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "\n" not in message
    assert "failed" in message
    assert "https://huggingface.co/datasets/Anthropic/llm_global_opinions" in message
    assert "--norms PATH/global_opinions.csv" in message
    assert info.value.__cause__ is None


def test_download_connection_error_becomes_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def refuse(**kwargs: object) -> str:
        raise ConnectionError("Name or service not known\nmore detail")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    with pytest.raises(DataError, match="could not be reached") as info:
        download_global_opinions(cache_dir=tmp_path)
    assert "\n" not in str(info.value)


def test_download_returns_hub_path_and_uses_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    seen: dict[str, object] = {}

    def fake(**kwargs: object) -> str:
        seen.update(kwargs)
        return str(HF_CSV)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("VALUEMULCH_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake)
    assert download_global_opinions() == HF_CSV
    assert seen["repo_id"] == "Anthropic/llm_global_opinions"
    assert seen["repo_type"] == "dataset"
    assert seen["filename"] == "data/global_opinions.csv"
    assert seen["cache_dir"] == tmp_path / "valuemulch" / "hf"
    assert seen["local_files_only"] is False


# --------------------------------------------------------------------------------------------------
# Real data


@pytest.mark.data
def test_real_shared_files() -> None:
    root = os.environ.get("VALUEMULCH_DATA")
    small = Path(root) / "modular_pluralism" / "input" / "distributional_test_globalopinionqa_small.json" if root else None
    if small is None or not small.is_file():
        pytest.skip("set VALUEMULCH_DATA to the shared data directory")
    norms = read_goqa_json(small)
    assert len(norms) == 4504
    assert "Britain" in norms.communities
    assert looks_like_goqa_json(small)
    meister = Path(root) / "distributional_alignment" / "Global_Values" / "data" / "data.json"
    if meister.is_file():
        assert looks_like_goqa_json(meister)
        assert len(read_goqa_json(meister)) > 0
