"""`/v1/decide`, `/v1/distribution`, chat and the errors answer the golden bodies byte for byte.

The golden file was recorded from the code before the service was split, and re-recorded once for
issue 14's new fields (`make_serve_golden.py` says how, and what is normalised); any difference here
is a change of HTTP behaviour.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from make_serve_golden import GOLDEN, REQUESTS, record, start_client

GOLDEN_BODIES: list[dict[str, object]] = json.loads(GOLDEN.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    with start_client(Path(tmp_path_factory.mktemp("golden"))) as (client, home):
        health = client.get("/v1/health").json()
        assert (health["model_id"], health["certificate_id"]) == (home.model_id, home.certificate_id)
        return record(client, home)


def test_the_golden_file_covers_every_request() -> None:
    assert [g["request"] for g in GOLDEN_BODIES] == [f"{m} {p}" for m, p, _, _ in REQUESTS]


@pytest.mark.parametrize("i", range(len(REQUESTS)), ids=[f"{i:02d}-{m} {p}" for i, (m, p, _, _) in enumerate(REQUESTS)])
def test_response_is_the_golden_one_byte_for_byte(recorded: list[dict[str, object]], i: int) -> None:
    assert recorded[i] == GOLDEN_BODIES[i]
