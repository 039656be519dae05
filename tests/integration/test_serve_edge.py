"""The service's edge against a real uvicorn on 127.0.0.1: strict types (no bool-to-int, no string-to-
number), options distinct after normalisation, no control characters in texts, and API docs that
work with no network (their assets served by the service itself).

The deployment is the tiny one (`tiny_serve`: a committed fitted encoder and a signed certificate),
served by uvicorn in a thread of this process, so the module starts in seconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from browser import chromium
from serve_helpers import assert_error, uvicorn_thread

from tiny_serve import register, serve_app, tiny_home

START_TIMEOUT_S = 60.0
OK = {"community": "Britain", "question": "Should the library open on Sundays?", "options": ["Yes", "No"]}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tiny_home(Path(tmp_path_factory.mktemp("edge")))
    register(home)
    with uvicorn_thread(serve_app(home)) as url:
        yield url


@pytest.fixture(scope="module")
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=30.0) as c:
        yield c


def _records(client: httpx.Client) -> int:
    return int(client.get("/v1/health").json()["audit_records"])


def _refused(response: httpx.Response, field: str) -> str:
    """A 422 on ``field`` whose message says what was expected, what came and how to fix it."""
    message = str(assert_error(response, 422, field, "invalid_request")["message"])
    assert "expected" in message and "got" in message, message
    return message


# -- strict types -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "extra", "field"),
    [
        ("/v1/decide", {"seed": True}, "seed"),
        ("/v1/decide", {"seed": "5"}, "seed"),
        ("/v1/decide", {"seed": 5.0}, "seed"),
        ("/v1/decide", {"strength": "0.5"}, "strength"),
        ("/v1/decide", {"strength": True}, "strength"),
        ("/v1/decide", {"ordinal": [1, "2"]}, "ordinal.1"),
        ("/v1/decide", {"ordinal": [False, 1]}, "ordinal.0"),
    ],
)
def test_no_bool_or_string_is_read_as_a_number(client: httpx.Client, path: str, extra: dict[str, Any], field: str) -> None:
    before = _records(client)
    message = _refused(client.post(path, json={**OK, **extra}), field)
    assert "Fix: send a JSON" in message, message
    assert _records(client) == before


def test_strict_numbers_in_a_batch_and_in_chat(client: httpx.Client) -> None:
    batch = {"community": "Britain", "questions": [{"question": OK["question"], "options": OK["options"]}]}
    _refused(client.post("/v1/distribution", json={**batch, "strength": "1"}), "strength")
    _refused(
        client.post("/v1/distribution", json={**batch, "questions": [{**batch["questions"][0], "ordinal": [True, 0]}]}),
        "questions.0.ordinal.0",
    )
    chat = {"model": "valuemulch/Britain", "messages": [{"role": "user", "content": "Sundays?\nA. Yes\nB. No"}]}
    for extra, field in [
        ({"seed": True}, "seed"),
        ({"top_logprobs": "2"}, "top_logprobs"),
        ({"logprobs": "true"}, "logprobs"),
        ({"n": True}, "n"),
    ]:
        _refused(client.post("/v1/chat/completions", json={**chat, **extra}), field)


def test_numbers_that_are_numbers_still_pass(client: httpx.Client) -> None:
    r = client.post("/v1/decide", json={**OK, "seed": 5, "strength": 1, "ordinal": [1, 2.5]})
    assert r.status_code == 200, r.text
    chat = {"model": "valuemulch/Britain", "seed": 3, "logprobs": True, "top_logprobs": 2}
    r = client.post("/v1/chat/completions", json={**chat, "messages": [{"role": "user", "content": "Sundays?\nA. Yes\nB. No"}]})
    assert r.status_code == 200, r.text


# -- options distinct after normalisation -----------------------------------------------------------
@pytest.mark.parametrize(
    "twin",
    [
        "Ye\u200bs",  # zero-width space
        "Y\u200des",  # zero-width joiner
        "Y\u200ces",  # zero-width non-joiner
        "Ye\u00ads",  # soft hyphen
        "\ufeffYes",  # byte-order mark
        "Ye\u2060s",  # word joiner
        "\uff39\uff45\uff53",  # full-width (NFKC)
        "Y\u0435s",  # Cyrillic ie, drawn like e
        "YES",  # case
        "Yes\u00a0 ",  # no-break space and a trailing space
    ],
)
def test_options_that_look_the_same_are_duplicates(client: httpx.Client, twin: str) -> None:
    before = _records(client)
    message = _refused(client.post("/v1/decide", json={**OK, "options": ["Yes", twin, "No"]}), "options")
    assert "options must be distinct" in message and "option 1" in message and "option 0" in message, message
    batch = {"community": "Britain", "questions": [{"question": OK["question"], "options": [twin, "Yes"]}]}
    _refused(client.post("/v1/distribution", json=batch), "questions.0.options")
    chat = {"model": "valuemulch/Britain", "messages": [{"role": "user", "content": f"Sundays?\nA. Yes\nB. {twin}"}]}
    assert "options must be distinct" in str(
        assert_error(client.post("/v1/chat/completions", json=chat), 422, "messages")["message"]
    )
    assert _records(client) == before


def test_options_in_other_scripts_stay_distinct(client: httpx.Client) -> None:
    """Look-alike folding maps letters to Latin only inside Latin words or words made wholly of look-alikes;
    a word of another script keeps its letters, so real multilingual options are not merged."""
    for options in (["Да", "Нет"], ["β-blockers", "Nothing"], ["Ja", "Nein", "Weiß nicht"]):
        r = client.post("/v1/decide", json={**OK, "options": options})
        assert r.status_code == 200, (options, r.text)


# -- control characters -----------------------------------------------------------------------------
@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\r", "\x7f", "\x85", "\x9b"])
def test_control_characters_are_refused_in_every_text(client: httpx.Client, char: str) -> None:
    before = _records(client)
    for field, body in [
        ("question", {**OK, "question": f"Should the library{char} open?"}),
        ("options", {**OK, "options": ["Yes", f"No{char}"]}),
        ("community", {**OK, "community": f"Brit{char}ain"}),
    ]:
        r = client.post("/v1/decide", json=body)
        message = _refused(r, field)
        assert "control characters" in message and char not in r.text, message  # refused, and not echoed raw
    assert _records(client) == before


def test_newline_and_tab_are_allowed(client: httpx.Client) -> None:
    r = client.post("/v1/decide", json={**OK, "question": "Should the library\n\topen on Sundays?"})
    assert r.status_code == 200, r.text


# -- offline docs -----------------------------------------------------------------------------------
_ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|\burl\s*:\s*["']([^"']+)["']""", re.IGNORECASE)


def _referenced(page: str) -> list[str]:
    return [a or b for a, b in _ASSET.findall(page)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_nothing_from_another_host(client: httpx.Client, base: str, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.text[:300]
    refs = _referenced(r.text)
    assert any(ref.endswith(".js") for ref in refs), refs
    for ref in refs:
        url = urljoin(base + page, ref)
        assert urlsplit(url).netloc == urlsplit(base).netloc, f"{page} references {ref}, on another host"
        asset = client.get(url)
        assert asset.status_code == 200 and asset.content, (ref, asset.status_code)
    assert "cdn" not in r.text.lower() and "fonts.googleapis" not in r.text, r.text


def test_the_docs_page_renders_in_chromium_with_every_other_host_unreachable(base: str) -> None:
    # No host name resolves but 127.0.0.1: a CDN reference could not load.
    with chromium("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1") as driver:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        driver.get(f"{base}/docs")
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock"))
        paths = {e.text for e in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
        assert "/v1/decide" in paths, paths
        fetched = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert all(urlsplit(u).netloc == urlsplit(base).netloc for u in fetched), fetched
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe
