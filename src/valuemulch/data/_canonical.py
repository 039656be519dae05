"""The canonical interchange format: JSONL (one item per line) and an equivalent CSV.

One record::

    {"community": "POLPARTY:Democrat", "question_id": "SAFECRIME_W26", "question": "...",
     "options": ["...", ...], "ordinal": [1, 2, 3, 4, null] | null, "distribution": [...],
     "n": 1492 | null, "source": "opinionqa"}

Required keys: community, question_id, question, options, distribution. Optional: ordinal, n,
source, refusal (one boolean per option; inferred from option text when absent). Any other key is
an error, so typos fail loudly. In the CSV form, list-valued cells hold JSON (``["Yes", "No"]``).

Reading is all-or-nothing: the whole file is validated before a `Norms` is returned.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from valuemulch.errors import DataError
from valuemulch.filemodes import private_dir
from valuemulch.types import NormItem, Norms, Question, check_distribution, normalise_text

REQUIRED = ("community", "question_id", "question", "options", "distribution")
OPTIONAL = ("ordinal", "n", "source", "refusal")
FIELDS = REQUIRED + OPTIONAL


def _record_to_item(record: Any, where: str, questions: dict[str, Question]) -> tuple[NormItem, bool]:
    if not isinstance(record, dict):
        raise DataError(where, expected="a JSON object", got=type(record).__name__, fix="write one {...} object per line")
    unknown = sorted(set(record) - set(FIELDS))
    if unknown:
        raise DataError(
            where, field=unknown[0], expected=f"only the keys {list(FIELDS)}", got=unknown, fix="remove or rename the unknown key"
        )
    for key in REQUIRED:
        if key not in record or record[key] is None:
            raise DataError(where, field=key, expected="a value", got=None, fix=f"add '{key}' to the record")
    for key in ("community", "question_id", "question"):
        if not isinstance(record[key], str) or not record[key].strip():
            raise DataError(where, field=key, expected="a non-empty string", got=record[key], fix=f"write '{key}' as text")
    options = record["options"]
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise DataError(where, field="options", expected="a list of strings", got=options, fix='write options as ["Yes", "No"]')
    if not options:
        raise DataError(where, field="options", expected="at least 2 options", got=options, fix="list the answer options")
    ordinal = record.get("ordinal")
    if ordinal is not None:
        if not isinstance(ordinal, list) or not all(v is None or (_is_number(v) and math.isfinite(v)) for v in ordinal):
            raise DataError(
                where, field="ordinal", expected="a list of numbers or nulls, or null", got=ordinal, fix="e.g. [1, 2, 3, null]"
            )
        if len(ordinal) != len(options):
            raise DataError(
                where,
                field="ordinal",
                expected=f"{len(options)} positions, one per option",
                got=ordinal,
                fix="give null for options off the scale (e.g. Refused), or null for the whole field",
            )
    refusal = record.get("refusal")
    if refusal is not None and (not isinstance(refusal, list) or not all(isinstance(v, bool) for v in refusal)):
        raise DataError(where, field="refusal", expected="a list of booleans", got=refusal, fix="e.g. [false, false, true]")
    n = record.get("n")
    if n is not None and (not _is_number(n) or not math.isfinite(n) or n < 0):
        raise DataError(
            where, field="n", expected="a non-negative number of respondents, or null", got=n, fix="write n as a number"
        )
    source = record.get("source", "jsonl")
    if not isinstance(source, str):
        raise DataError(where, field="source", expected="a string", got=source, fix='e.g. "opinionqa"')
    try:
        question = Question(
            id=record["question_id"],
            text=record["question"],
            options=tuple(options),
            ordinal=tuple(None if v is None else float(v) for v in ordinal) if ordinal is not None else None,
            refusal=tuple(refusal) if refusal else (),
            source=source,
        )
    except DataError as err:  # re-anchor the message at the file position
        raise DataError(where, field=err.field, expected=err.expected, got=err.got, fix=err.fix) from None
    question = questions.setdefault(question.id, question)
    distribution, renormalised = check_distribution(record["distribution"], len(options), where)
    item = NormItem(record["community"], _same_question(question, record, where), distribution, None if n is None else float(n))
    return item, renormalised


def _same_question(known: Question, record: dict[str, Any], where: str) -> Question:
    if list(known.options) != record["options"]:
        raise DataError(
            where,
            field="options",
            expected=f"the options given earlier for question '{known.id}': {list(known.options)}",
            got=record["options"],
            fix="use one question_id per distinct option list",
        )
    if normalise_text(known.text) != normalise_text(record["question"]):
        raise DataError(
            where,
            field="question",
            expected=f"the text given earlier for question '{known.id}': {known.text!r}",
            got=record["question"],
            fix="use one question_id per distinct question text",
        )
    ordinal = record.get("ordinal")
    known_ordinal = list(known.ordinal) if known.ordinal is not None else None
    if known_ordinal != ordinal:
        raise DataError(
            where,
            field="ordinal",
            expected=f"the ordinal given earlier for question '{known.id}': {known_ordinal}",
            got=ordinal,
            fix="give every line of a question the same ordinal",
        )
    return known


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _build(records: Iterable[tuple[str, Any]], source: str) -> Norms:
    questions: dict[str, Question] = {}
    items: list[NormItem] = []
    seen: dict[tuple[str, str], str] = {}
    renormalised = 0
    for where, record in records:
        item, fixed = _record_to_item(record, where, questions)
        if item.key in seen:
            raise DataError(
                where,
                expected="one record per (community, question_id)",
                # only the line number: `got` is cut at 120 characters, and a long path would hide it
                got=f"a second record for {item.key}, first at line {seen[item.key].rpartition(':')[2]}",
                fix="remove the duplicate or give the question variant its own question_id",
            )
        seen[item.key] = where
        renormalised += fixed
        items.append(item)
    norms = Norms(items, source=source)
    norms.renormalised = renormalised
    return norms


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(str(path), expected="an existing file", got="no such file", fix="check the path, or pass --norms/--data")
    if not path.is_file():
        raise DataError(str(path), expected="a file", got="a directory", fix="point at the .jsonl or .csv file itself")


def read_jsonl(path: str | Path) -> Norms:
    """Read and validate a canonical JSONL file; raise `DataError` at the first problem."""
    path = Path(path)
    _check_file(path)

    def records() -> Iterator[tuple[str, Any]]:
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    yield where, json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(
                        where, expected="one JSON object per line", got=line.strip(), fix=f"repair the JSON ({err.msg})"
                    ) from None

    return _build(records(), source=str(path))


def read_csv(path: str | Path) -> Norms:
    """Read the CSV form of the canonical format (list cells as JSON)."""
    path = Path(path)
    _check_file(path)

    def records() -> Iterator[tuple[str, Any]]:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            unknown = sorted(set(reader.fieldnames or []) - set(FIELDS))
            if unknown:
                raise DataError(
                    f"{path}:1",
                    field=unknown[0],
                    expected=f"columns among {list(FIELDS)}",
                    got=unknown,
                    fix="rename or drop the column",
                )
            for row in reader:
                where = f"{path}:{reader.line_num}"  # the physical line (blank lines and quoted newlines count)
                if None in row:  # surplus cells: check before parsing, or a shifted cell is blamed instead
                    n_cells = len(row) - 1 + len(row[None] or [])
                    expected = f"{len(reader.fieldnames or [])} cells"
                    raise DataError(where, expected=expected, got=n_cells, fix="quote cells that hold commas")
                record: dict[str, Any] = {key: _parse_cell(key, cell, where) for key, cell in row.items()}
                yield where, record

    return _build(records(), source=str(path))


def _parse_cell(key: str, cell: str | None, where: str) -> Any:
    if cell is None or cell == "":
        return None
    if key in ("options", "ordinal", "distribution", "refusal"):
        try:
            return json.loads(cell)
        except json.JSONDecodeError:
            raise DataError(
                where, field=key, expected="a JSON list in the cell", got=cell, fix='write e.g. ["Yes", "No"]'
            ) from None
    if key == "n":
        try:
            return float(cell)
        except ValueError:
            raise DataError(where, field="n", expected="a number or an empty cell", got=cell, fix="write n as digits") from None
    return cell


def item_to_record(item: NormItem) -> dict[str, Any]:
    q = item.question
    return {
        "community": item.community,
        "question_id": q.id,
        "question": q.text,
        "options": list(q.options),
        "ordinal": list(q.ordinal) if q.ordinal is not None else None,
        "distribution": [float(x) for x in item.distribution],
        "n": item.n,
        "source": q.source,
        "refusal": list(q.refusal),
    }


def _atomic_write(path: Path, write: Any) -> None:
    """Write through a temporary file and rename, so a failure never leaves half a file; the file is
    owner-only (mkstemp's 600) and so is each directory made for it (700)."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(norms: Iterable[NormItem], path: str | Path) -> Path:
    path = Path(path)
    records = [item_to_record(i) for i in norms]
    _atomic_write(path, lambda fh: fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


def write_csv(norms: Iterable[NormItem], path: str | Path) -> Path:
    path = Path(path)
    records = [item_to_record(i) for i in norms]

    def write(fh: Any) -> None:
        writer = csv.DictWriter(fh, fieldnames=list(FIELDS))
        writer.writeheader()
        for r in records:
            writer.writerow({k: json.dumps(v) if isinstance(v, list) else ("" if v is None else v) for k, v in r.items()})

    _atomic_write(path, write)
    return path
