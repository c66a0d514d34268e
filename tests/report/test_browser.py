"""The report in headless Chromium: no console errors, no network requests, sortable table."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_html import MODELS, make_run

from ladder.report import render_report

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[2] / "test-artifacts" / "report.png"

pytestmark = pytest.mark.slow


def model_order(page) -> list[str]:
    return page.eval_on_selector_all(
        "#leaderboard tbody tr", "rows => rows.map(r => r.cells[0].textContent)"
    )


def test_report_in_headless_chromium(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    report = render_report(make_run(tmp_path / "run"))
    url = report.as_uri()
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url, wait_until="load")

            assert model_order(page) == MODELS
            page.click("#leaderboard th:has-text('model')")
            assert model_order(page) == sorted(MODELS)
            page.click("#leaderboard th:has-text('accuracy') >> nth=0")
            assert model_order(page) == ["mlp", "forest", "broken"]  # ascending, blanks last
            page.click("#leaderboard th:has-text('accuracy') >> nth=0")
            assert model_order(page) == ["forest", "mlp", "broken"]  # descending
            assert page.get_attribute("#leaderboard th >> nth=2", "aria-sort") == "descending"

            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert errors == []
    external = [u for u in requests if u != url and not u.startswith("data:")]
    assert external == []
    assert SCREENSHOT.stat().st_size > 10_000
