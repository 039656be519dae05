"""`norms_or_testbed` (exactly one input, labelled) and `write_norms` (the format the suffix names)."""

from __future__ import annotations

from pathlib import Path

import pytest

from valuemulch.data import norms_or_testbed, read_csv, read_jsonl, read_norms, write_norms
from valuemulch.errors import ConfigError

FIXTURES = Path(__file__).parents[2] / "fixtures"


@pytest.mark.parametrize("given", [(None, None), (FIXTURES / "opinionqa", "us-32")])
def test_exactly_one_source(given: tuple[Path | None, str | None]) -> None:
    with pytest.raises(ConfigError, match="exactly one of --norms PATH or --testbed NAME"):
        norms_or_testbed(*given)


def test_a_path_needs_no_data_directory(tmp_path: Path) -> None:
    source, norms = norms_or_testbed(FIXTURES / "opinionqa", None, tmp_path / "no-such-data")
    assert source == str(FIXTURES / "opinionqa") and len(norms) == len(read_norms(FIXTURES / "opinionqa"))


@pytest.mark.data
def test_a_testbed_whole_or_one_split(data_root: Path, us32) -> None:  # type: ignore[no-untyped-def]
    source, norms = norms_or_testbed(None, "us-32", data_root)
    assert source == "testbed:us-32" and norms.content_hash() == us32.norms.content_hash()
    source, train = norms_or_testbed(None, "us-32", data_root, split="train")
    assert source == "testbed:us-32/train" and train.content_hash() == us32.items("train", "all").content_hash()


@pytest.mark.parametrize("suffix, reader", [(".jsonl", read_jsonl), (".CSV", read_csv)])
def test_write_norms_by_suffix(tmp_path: Path, suffix: str, reader) -> None:  # type: ignore[no-untyped-def]
    norms = read_norms(FIXTURES / "opinionqa")
    written = write_norms(norms, tmp_path / f"out{suffix}")
    assert written == tmp_path / f"out{suffix}"
    assert reader(written).content_hash() == norms.content_hash()


def test_write_norms_refuses_other_suffixes_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.jsonl or \.csv, got 'x\.parquet'"):
        write_norms(read_norms(FIXTURES / "opinionqa"), tmp_path / "x.parquet")
    assert not any(tmp_path.iterdir())
