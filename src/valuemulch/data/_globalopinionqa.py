"""Importers for GlobalOpinionQA (Durmus et al., 2023): country answer distributions as `Norms`.

Three layouts carry the same data:

* the JSON list of the modular-pluralism repo: one object per (country, question), with the question
  wrapped in a prompt (``"Question: ...\\nOptions: A. ... \\nAnswer:"``) and the shares in
  ``gold_distribution``;
* the JSON dict of Meister et al. (``Global_Values/data/data.json``): question text -> one list of
  shares per country, plus ``MC_options`` (a Python list *repr*) and ``countries``;
* the CSV of the Hugging Face dataset ``Anthropic/llm_global_opinions``: columns ``question``,
  ``selections`` (a ``defaultdict(<class 'list'>, {...})`` repr) and ``options`` (a list repr).

None of them gives question ids, so ids are a hash of the normalised text and options
(`question_id_from_content`): the same question meets itself across layouts, and a variant with
other options stays apart. Python reprs are parsed with `ast.literal_eval`, never `eval`, because the
files come from the internet. Reading is all-or-nothing: every record is validated before a `Norms`
is returned, and a malformed one raises `DataError` naming the file, record, field and fix.
"""

from __future__ import annotations

import ast
import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from valuemulch.data._goqa_download import HF_REPO_ID, HF_URL
from valuemulch.errors import DataError
from valuemulch.types import NormItem, Norms, Question, check_distribution, question_id_from_content

__all__ = [
    "ID_PREFIX",
    "SOURCE",
    "GoqaNorms",
    "extract_question_text",
    "looks_like_goqa_csv",
    "looks_like_goqa_json",
    "parse_options",
    "parse_selections",
    "read_goqa_csv",
    "read_goqa_json",
]

SOURCE = "globalopinionqa"
ID_PREFIX = "GOQA"

#: Two records for the same (country, question) whose shares differ by at most this are one record.
DUPLICATE_TOLERANCE = 1e-6
DUPLICATE_REASON = "duplicate record (identical, kept once)"

CSV_REQUIRED = ("question", "selections", "options")
_LIST_REQUIRED = ("question", "options", "attribute", "gold_distribution")
_DICT_META = ("MC_options", "countries")
_SNIFF_BYTES = 1 << 16

_PROMPT = re.compile(r"^\s*Question:[ \t]*(?P<text>.*)\nOptions:", re.DOTALL)
_DEFAULTDICT = re.compile(r"^defaultdict\(\s*<class\s+'list'>\s*,\s*(?P<body>.*)\)$", re.DOTALL)
_LITERAL_ERRORS = (ValueError, SyntaxError, TypeError, MemoryError, RecursionError)


@dataclass
class GoqaNorms(Norms):
    """`Norms` plus how many exact duplicate records were dropped while reading.

    GlobalOpinionQA merges survey waves, so the same (country, question) can appear twice with the
    same shares; that is harmless and only counted, so a user can see the file was not taken as is.
    """

    duplicates: int = 0


@dataclass(frozen=True, slots=True)
class _Raw:
    """One (country, question) record, checked for types but not yet for consistency."""

    where: str
    community: str
    text: str
    options: tuple[str, ...]
    distribution: list[float]
    options_field: str
    distribution_field: str


# --------------------------------------------------------------------------------------------------
# Public readers


def read_goqa_json(path: str | Path) -> GoqaNorms:
    """Read either JSON layout (the modular-pluralism list or the Meister et al. dict), detected by shape."""
    path = _check_file(path)
    data = _load_json(path)
    if isinstance(data, list):
        raws: Iterable[_Raw] = _list_records(data, path)
    elif isinstance(data, dict):
        raws = _dict_records(data, path)
    else:
        raise DataError(
            str(path),
            expected="a JSON list of records or a JSON object keyed by question",
            got=type(data).__name__,
            fix="pass a GlobalOpinionQA JSON file (modular-pluralism list or Global_Values data.json)",
        )
    return _build(raws, path)


def read_goqa_csv(path: str | Path) -> GoqaNorms:
    """Read the Hugging Face ``Anthropic/llm_global_opinions`` CSV (question, selections, options[, source])."""
    path = _check_file(path)
    return _build(_csv_records(path), path)


def looks_like_goqa_json(path: str | Path) -> bool:
    """Cheap sniff from the first bytes: is this one of the GlobalOpinionQA JSON layouts?

    Never raises, so the automatic importer selection can try it on any path.
    """
    head = _head(path)
    if head is None:
        return False
    if head.startswith("["):
        return all(f'"{key}"' in head for key in _LIST_REQUIRED)
    if head.startswith("{"):
        return '"MC_options"' in head
    return False


def looks_like_goqa_csv(path: str | Path) -> bool:
    """Cheap sniff of the header row: does it have the Hugging Face GlobalOpinionQA columns?"""
    head = _head(path)
    if head is None:
        return False
    try:
        header = next(csv.reader([head.splitlines()[0]]), [])
    except (csv.Error, IndexError):
        return False
    return set(CSV_REQUIRED) <= {cell.strip() for cell in header}


# --------------------------------------------------------------------------------------------------
# Parsing helpers (public where other importers or tests reuse them)


def extract_question_text(prompt: str) -> str:
    """The question inside a ``"Question: ...\\nOptions: ...\\nAnswer:"`` prompt, else the prompt stripped.

    The last ``\\nOptions:`` ends the question, since option lists never contain it.
    """
    match = _PROMPT.match(prompt)
    if match is None:
        return prompt.strip()
    text = match.group("text")
    return text.strip()


def parse_options(cell: Any, where: str, field: str = "options") -> tuple[str, ...]:
    """Options given as a Python list repr (``"['Yes', 'No']"``) or an actual list of strings."""
    value = cell
    if isinstance(cell, str):
        try:
            value = ast.literal_eval(cell.strip())
        except _LITERAL_ERRORS:
            raise DataError(
                where,
                field=field,
                expected="a list literal of strings, e.g. ['Yes', 'No']",
                got=cell,
                fix="repair the quoting of the options",
            ) from None
    if not isinstance(value, (list, tuple)) or not all(isinstance(o, str) for o in value):
        raise DataError(
            where, field=field, expected="a list of option strings", got=cell, fix="write the options as ['Yes', 'No']"
        )
    return tuple(value)


def parse_selections(cell: str, where: str) -> dict[str, list[float]]:
    """The ``selections`` cell: ``defaultdict(<class 'list'>, {country: [shares]})`` or a plain ``{...}``.

    The ``defaultdict`` wrapper is stripped by pattern and only the dict literal is evaluated.
    """
    fix = "write selections as defaultdict(<class 'list'>, {'Country': [0.2, 0.8]}) or {'Country': [0.2, 0.8]}"
    text = cell.strip()
    match = _DEFAULTDICT.match(text)
    body = match.group("body").strip() if match else text
    if not body.startswith("{"):
        raise DataError(where, field="selections", expected="a dict literal of country -> shares", got=cell, fix=fix)
    try:
        value = ast.literal_eval(body)
    except _LITERAL_ERRORS:
        raise DataError(
            where, field="selections", expected="a valid dict literal of country -> shares", got=cell, fix=fix
        ) from None
    if not isinstance(value, dict):
        raise DataError(where, field="selections", expected="a dict literal of country -> shares", got=cell, fix=fix)
    if not value:
        raise DataError(
            where, field="selections", expected="at least one country", got=cell, fix="drop the row or add its countries"
        )
    out: dict[str, list[float]] = {}
    for country, shares in value.items():
        community = _community(country, where, "selections")
        out[community] = _numbers(shares, where, f"selections['{community}']")
    return out


def _community(value: Any, where: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(
            where, field=field, expected="a non-empty country name", got=value, fix="name the country, e.g. 'Britain'"
        )
    return value


def _numbers(value: Any, where: str, field: str) -> list[float]:
    """A list of real numbers; strings and booleans are refused, though numpy would coerce them."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise DataError(
            where, field=field, expected="a list of numbers", got=value, fix="write the shares as numbers, e.g. [0.2, 0.8]"
        )
    return [float(v) for v in value]


# --------------------------------------------------------------------------------------------------
# Layout readers: each yields _Raw records


def _list_records(data: list[Any], path: Path) -> Iterator[_Raw]:
    if not data:
        raise DataError(str(path), expected="at least one record", got="an empty list", fix="pass the full GlobalOpinionQA file")
    for index, record in enumerate(data):
        where = f"{path} record {index}"
        if not isinstance(record, dict):
            raise DataError(where, expected="a JSON object", got=type(record).__name__, fix="write one {...} object per record")
        for key in _LIST_REQUIRED:
            if record.get(key) is None:
                raise DataError(where, field=key, expected="a value", got=None, fix=f"add '{key}' to the record")
        prompt = record["question"]
        if not isinstance(prompt, str):
            raise DataError(where, field="question", expected="a string", got=prompt, fix="write the question as text")
        yield _Raw(
            where=where,
            community=_community(record["attribute"], where, "attribute"),
            text=extract_question_text(prompt),
            options=parse_options(record["options"], where),
            distribution=_numbers(record["gold_distribution"], where, "gold_distribution"),
            options_field="options",
            distribution_field="gold_distribution",
        )


def _dict_records(data: dict[str, Any], path: Path) -> Iterator[_Raw]:
    if not data:
        raise DataError(str(path), expected="at least one question", got="an empty object", fix="pass the full data.json")
    for index, (text, entry) in enumerate(data.items()):
        where = f"{path} record {index}"
        if not isinstance(entry, dict):
            raise DataError(
                where,
                expected="an object of country -> shares plus 'MC_options'",
                got=type(entry).__name__,
                fix="see Global_Values data.json",
            )
        if entry.get("MC_options") is None:
            raise DataError(
                where, field="MC_options", expected="a value", got=None, fix="add the option list repr under 'MC_options'"
            )
        options = parse_options(entry["MC_options"], where, "MC_options")
        countries = [key for key in entry if key not in _DICT_META]
        listed = entry.get("countries")
        if listed is not None:
            if not isinstance(listed, list) or not all(isinstance(c, str) for c in listed):
                raise DataError(
                    where, field="countries", expected="a list of country names", got=listed, fix="list the countries as strings"
                )
            if sorted(listed) != sorted(countries):
                raise DataError(
                    where,
                    field="countries",
                    expected=f"the countries that have shares ({sorted(countries)})",
                    got=listed,
                    fix="make 'countries' list exactly the countries given shares",
                )
        if not countries:
            raise DataError(
                where, expected="at least one country", got=list(entry), fix="add the countries' shares or drop the question"
            )
        for country in countries:
            yield _Raw(
                where=f"{where} country '{country}'",
                community=_community(country, where, "countries"),
                text=text.strip(),
                options=options,
                distribution=_numbers(entry[country], where, country),
                options_field="MC_options",
                distribution_field=country,
            )


def _csv_records(path: Path) -> Iterator[_Raw]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path}:1", expected="a header row", got="an empty file", fix=f"pass the CSV from {HF_URL}")
            header = [cell.strip() for cell in header]
            missing = [c for c in CSV_REQUIRED if c not in header]
            if missing:
                raise DataError(
                    f"{path}:1",
                    field=missing[0],
                    expected=f"the columns {list(CSV_REQUIRED)} of {HF_REPO_ID}",
                    got=header,
                    fix=f"pass the CSV from {HF_URL}, or convert your file to the canonical format",
                )
            col = {name: header.index(name) for name in CSV_REQUIRED}
            line = reader.line_num
            for row in reader:
                start, line = line + 1, reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                where = f"{path}:{start}"
                if len(row) != len(header):
                    raise DataError(where, expected=f"{len(header)} cells", got=len(row), fix="quote cells that contain commas")
                text = row[col["question"]].strip()
                if not text:
                    raise DataError(
                        where, field="question", expected="non-empty question text", got=text, fix="add the question's wording"
                    )
                options = parse_options(row[col["options"]], where)
                for community, shares in parse_selections(row[col["selections"]], where).items():
                    yield _Raw(where, community, text, options, shares, "options", f"selections['{community}']")
    except csv.Error as err:
        raise DataError(str(path), expected="well-formed CSV", got=str(err), fix="repair the quoting of the file") from None
    except UnicodeDecodeError as err:
        raise DataError(str(path), expected="UTF-8 text", got=err.reason, fix="save the file as UTF-8") from None


# --------------------------------------------------------------------------------------------------
# Shared building and file helpers


def _build(raws: Iterable[_Raw], path: Path) -> GoqaNorms:
    """Validate every record, drop agreeing duplicates, and only then build the `Norms`."""
    questions: dict[str, Question] = {}
    seen: dict[tuple[str, str], tuple[NormItem, str]] = {}
    items: list[NormItem] = []
    renormalised = duplicates = 0
    for raw in raws:
        qid = question_id_from_content(ID_PREFIX, raw.text, raw.options)
        question = questions.get(qid)
        if question is None:
            try:
                question = Question(id=qid, text=raw.text, options=raw.options, ordinal=None, source=SOURCE)
            except DataError as err:  # re-anchor at the record, in the source's own field names
                field = raw.options_field if err.field == "options" else err.field
                raise DataError(raw.where, field=field, expected=err.expected, got=err.got, fix=err.fix) from None
            questions[qid] = question
        try:
            distribution, fixed = check_distribution(raw.distribution, question.n_options, raw.where)
        except DataError as err:
            raise DataError(raw.where, field=raw.distribution_field, expected=err.expected, got=err.got, fix=err.fix) from None
        key = (raw.community, qid)
        if key in seen:
            first, first_where = seen[key]
            if float(np.max(np.abs(first.distribution - distribution))) <= DUPLICATE_TOLERANCE:
                duplicates += 1
                continue
            raise DataError(
                raw.where,
                field=raw.distribution_field,
                expected=f"the same shares as the earlier record for '{raw.community}' on this question ({first_where})",
                got=[float(x) for x in distribution],
                fix="remove the wrong one of the two records",
            )
        item = NormItem(raw.community, question, distribution, None)
        seen[key] = (item, raw.where)
        items.append(item)
        renormalised += fixed
    if not items:
        raise DataError(
            str(path), expected="at least one country distribution", got="none", fix="pass the full GlobalOpinionQA file"
        )
    norms = GoqaNorms(items, source=str(path), duplicates=duplicates)
    norms.renormalised = renormalised
    skipped = getattr(norms, "skipped", None)  # Norms' per-reason count of records not loaded, where it exists
    if duplicates and isinstance(skipped, dict):
        skipped[DUPLICATE_REASON] = skipped.get(DUPLICATE_REASON, 0) + duplicates
    return norms


def _check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(str(path), expected="an existing file", got="no such file", fix="check the path, or pass --norms")
    if not path.is_file():
        raise DataError(str(path), expected="a file", got="a directory", fix="point at the .json or .csv file itself")
    return path


def _load_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8-sig") as fh:
            return json.load(fh)
    except json.JSONDecodeError as err:
        raise DataError(
            f"{path}:{err.lineno}:{err.colno}", expected="valid JSON", got=err.msg, fix="repair the JSON at that position"
        ) from None
    except UnicodeDecodeError as err:
        raise DataError(str(path), expected="UTF-8 text", got=err.reason, fix="save the file as UTF-8") from None


def _head(path: str | Path) -> str | None:
    """The first bytes of a file as text without a BOM or leading space, or None when unreadable."""
    try:
        with Path(path).open("rb") as fh:
            raw = fh.read(_SNIFF_BYTES)
    except OSError:
        return None
    return raw.decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
