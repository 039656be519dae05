"""Reading survey data into `Norms`: the canonical format, importers, recorded outputs, testbeds and splits."""

from valuemulch.data._cache import user_cache_dir
from valuemulch.data._canonical import read_csv, read_jsonl, write_csv, write_jsonl
from valuemulch.data._globalopinionqa import read_goqa_csv, read_goqa_json
from valuemulch.data._goqa_download import download_global_opinions
from valuemulch.data._load import DATA_ENV, read_norms, resolve_data_root
from valuemulch.data._opinionqa import read_opinionqa
from valuemulch.data._recorded import RecordedRun, frontier_targets, list_recorded, load_recorded
from valuemulch.data._sources import norms_or_testbed, write_norms
from valuemulch.data._testbeds import SPLITS, TESTBEDS, Split, Testbed, load_testbed, split_of_text

__all__ = [
    "DATA_ENV",
    "SPLITS",
    "TESTBEDS",
    "RecordedRun",
    "Split",
    "Testbed",
    "download_global_opinions",
    "frontier_targets",
    "list_recorded",
    "load_recorded",
    "load_testbed",
    "norms_or_testbed",
    "read_csv",
    "read_goqa_csv",
    "read_goqa_json",
    "read_jsonl",
    "read_norms",
    "read_opinionqa",
    "resolve_data_root",
    "split_of_text",
    "user_cache_dir",
    "write_csv",
    "write_jsonl",
    "write_norms",
]
