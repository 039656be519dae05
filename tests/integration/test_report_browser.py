"""The certificate report in a real browser: headless system Chromium, driven by Selenium.

String checks cannot tell whether an SVG actually draws or whether the page asks the network for
anything; a browser can. CI sets VALUEMULCH_REQUIRE_BROWSER=1 so a missing browser fails the run
instead of skipping the test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import chromium

from valuemulch.certify import Report
from valuemulch.certify._report import render_report

EXAMPLE = Path(__file__).parents[1] / "fixtures" / "certificate_example.json"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium("--window-size=1200,2000") as driver:
        yield driver


def _open(browser: Any, cert: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    """Load the rendered report from a file; return the console messages it produced."""
    path.write_text(render_report(Report.model_validate(cert)), encoding="utf-8")
    browser.get_log("browser")  # drop messages left over from an earlier page
    browser.get(path.as_uri())
    return list(browser.get_log("browser"))


def test_report_renders_in_chromium(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    cert = json.loads(EXAMPLE.read_text())
    logs = _open(browser, cert, tmp_path / "report.html")
    assert browser.title == f"ValueMulch certificate: {cert['model']['label']} on {cert['testbed']['name']}"
    plots = browser.find_elements(By.CSS_SELECTOR, ".plot svg")
    assert len(plots) >= 4
    for svg in plots:
        size = svg.size
        assert svg.is_displayed() and size["width"] > 0 and size["height"] > 0, svg.get_attribute("aria-label")
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0  # nothing fetched
    assert not [entry for entry in logs if entry["level"] == "SEVERE"], logs


def test_report_with_null_sections_renders_in_chromium(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    cert = json.loads(EXAMPLE.read_text())
    cert["evaluation"]["unseen"] = cert["evaluation"]["frontier"] = None
    logs = _open(browser, cert, tmp_path / "report.html")
    assert "Not evaluated" in browser.find_element(By.ID, "unseen").text
    assert not [entry for entry in logs if entry["level"] == "SEVERE"], logs
