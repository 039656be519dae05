"""docs/certificate.md is generated from the record models: no field undocumented, none invented."""

from __future__ import annotations

import re
from pathlib import Path

from valuemulch.certify.schema_doc import documented_models, field_name, render_schema_doc

DOC = Path(__file__).parents[3] / "docs" / "certificate.md"


def test_every_field_has_a_description() -> None:
    missing = [f"{m.__name__}.{n}" for m in documented_models() for n, f in m.model_fields.items() if not f.description]
    assert not missing, f"fields without a docstring or Field(description=...): {missing}"


def test_documented_fields_are_exactly_the_model_fields() -> None:
    """Parsed from the committed page, so a hand edit that invents or drops a field fails too."""
    text = DOC.read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## `(\w+)`\n(.*?)(?=^## |\Z)", text, re.S | re.M))
    models = {m.__name__: m for m in documented_models()}
    assert set(sections) == set(models)
    for name, body in sections.items():
        documented = re.findall(r"^\| `(\w+)` \|", body, re.M)
        assert documented == [field_name(f, models[name]) for f in models[name].model_fields], name


def test_the_page_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render_schema_doc(), (
        "docs/certificate.md is stale: run `python -m valuemulch.certify.schema_doc > docs/certificate.md`"
    )
