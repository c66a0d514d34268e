"""The "try it" page: self-contained HTML, and in headless Chromium against a real server on
tiny trained models (tabular, text, image, a regression): forms built from each schema,
predictions shown (a regression's number and interval), server errors shown in the error box,
the API key sent as a Bearer token."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import make_table, write_config, write_images
from test_pipeline_text import write_text_config

from ladder import load
from ladder.runner.ladder import train
from ladder.serve.app import create_app
from ladder.serve.batcher import BatchSettings
from ladder.serve.model import ServedModel
from ladder.serve.page import try_page
from ladder.serve.service import InferenceService, load_models

CHROMIUM = Path("/usr/bin/chromium")
API_KEY = "page-test-key"
ODD_NAME = "animals+q8→copy"  # names of compressed variants hold '+' and '→'
TABLE_LABELS = ["cat", "dog", "fox"]


def test_the_page_is_self_contained_html() -> None:
    page = try_page()
    assert page.lstrip().startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "http://" not in page and "https://" not in page
    assert "alert(" not in page
    assert try_page() is page  # read once


# ---------------------------------------------------------------------- a real server


def train_artifacts(root: Path) -> dict[str, Path]:
    """Artifacts of three tiny models (a few seconds in all): tabular, text and image."""
    (root / "table").mkdir()
    csv = root / "table" / "animals.csv"
    make_table().to_csv(csv, index=False)
    tabular = write_config(
        root / "table", str(csv), [{"name": "lr", "type": "logistic_regression"}]
    )

    (root / "text").mkdir()
    text = write_text_config(root / "text", [{"name": "tfidf", "type": "tfidf_logreg"}])

    (root / "image").mkdir()
    cnn = {"name": "cnn", "type": "cnn", "arch": "simple", "channels": [4], "image_size": 8}
    images = write_config(root / "image", str(write_images(root / "image" / "data")), [cnn])
    return {
        name: train(config, name, out=root / name / "run").artifact
        for name, config in (("lr", tabular), ("tfidf", text), ("cnn", images))
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Site:
    url: str  # open
    keyed_url: str  # the same service behind API_KEY
    regression: Path  # the artifact of the regression model "price"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, regression_artifact: Path) -> Iterator[Site]:
    """Two uvicorn servers (open and keyed) on one service, in a background event loop."""
    import uvicorn

    artifacts = train_artifacts(tmp_path_factory.mktemp("page"))
    models = load_models([*artifacts.values(), regression_artifact])
    models.append(ServedModel(ODD_NAME, artifacts["lr"]))
    service = InferenceService(models, BatchSettings())
    page = try_page()
    apps = [create_app(service, 1 << 20, page=page), create_app(service, 1 << 20, API_KEY, page)]
    ports = [free_port() for _ in apps]
    servers = [
        uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        for app, port in zip(apps, ports, strict=True)
    ]
    failure: list[BaseException] = []

    async def run() -> None:
        await service.start()
        try:
            await asyncio.gather(*(s.serve() for s in servers))
        finally:
            await service.drain()

    def main() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not all(s.started for s in servers):
        assert not failure and thread.is_alive(), f"the server did not start: {failure}"
        assert time.monotonic() < deadline, "the server did not start within 30 s"
        time.sleep(0.05)
    try:
        yield Site(*(f"http://127.0.0.1:{p}/" for p in ports), regression_artifact)
    finally:
        for server in servers:
            server.should_exit = True
        thread.join(timeout=30)
    assert not failure, failure


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Tab:
    """One open page and what it logged: console errors and the URLs it requested."""

    page: Any
    errors: list[str]
    requests: list[str]


def is_error(message: Any) -> bool:
    """A console error other than the browser's own note on an HTTP error answer (the page
    shows those in its error box)."""
    return message.type == "error" and not message.text.startswith("Failed to load resource")


def open_page(browser: Any, url: str) -> Tab:
    page = browser.new_page()
    tab = Tab(page, [], [])
    page.on("console", lambda m: tab.errors.append(m.text) if is_error(m) else None)
    page.on("pageerror", lambda e: tab.errors.append(str(e)))
    page.on("request", lambda r: tab.requests.append(r.url))
    page.on("dialog", lambda d: tab.errors.append(f"dialog: {d.message}"))
    page.goto(url, wait_until="load")
    return tab


@pytest.fixture
def tab(browser: Any, site: Site) -> Iterator[Tab]:
    tab = open_page(browser, site.url)
    tab.page.wait_for_selector("#model option", state="attached")
    yield tab
    tab.page.close()
    assert tab.errors == []
    assert [u for u in tab.requests if not u.startswith((site.url, "data:"))] == []


def choose(tab: Tab, model: str) -> None:
    tab.page.select_option("#model", model)


def predicted(tab: Tab) -> tuple[str, list[str], list[float]]:
    """The shown label, and the listed classes with their percentages, in list order."""
    page = tab.page
    page.wait_for_selector("#result:not([hidden])")
    names = page.eval_on_selector_all("#probabilities .name", "xs => xs.map(x => x.textContent)")
    percents = page.eval_on_selector_all("#probabilities .p", "xs => xs.map(x => x.textContent)")
    return page.text_content("#label"), names, [float(p.rstrip("%")) for p in percents]


def error_text(tab: Tab) -> str:
    tab.page.wait_for_selector("#error:not([hidden])")
    return tab.page.text_content("#error")


@pytest.mark.slow
def test_the_tabular_form_has_the_fields_and_predicts(tab: Tab) -> None:
    page = tab.page
    options = page.eval_on_selector_all("#model option", "xs => xs.map(x => x.value)")
    assert sorted(options) == sorted(["lr", "tfidf", "cnn", "price", ODD_NAME])
    choose(tab, "lr")
    inputs = page.eval_on_selector_all("#fields input", "xs => xs.map(x => [x.name, x.type])")
    assert inputs == [["size", "number"], ["weight", "number"], ["colour", "text"]]
    page.fill("#fields [name=size]", "4.1")
    page.fill("#fields [name=weight]", "0.2")
    page.fill("#fields [name=colour]", "blue")
    page.click("#predict")
    label, names, percents = predicted(tab)
    assert label in TABLE_LABELS and label == names[0]
    assert sorted(names) == TABLE_LABELS
    assert percents == sorted(percents, reverse=True)
    assert sum(percents) == pytest.approx(100, abs=0.3)
    assert page.is_hidden("#error")


@pytest.mark.slow
def test_blank_fields_are_sent_as_null_and_odd_names_are_encoded(tab: Tab) -> None:
    page = tab.page
    choose(tab, ODD_NAME)
    page.fill("#fields [name=size]", "0.1")  # weight and colour left blank
    with page.expect_request(lambda r: r.method == "POST") as request:
        page.click("#predict")
    assert "animals%2Bq8%E2%86%92copy:predict" in request.value.url
    assert request.value.post_data_json == {
        "instances": [{"size": 0.1, "weight": None, "colour": None}]
    }
    # the training table had no missing values, so the model imputes none (README)
    assert error_text(tab).startswith("instances[0].weight: missing")


@pytest.mark.slow
def test_the_text_model_takes_a_textarea(tab: Tab) -> None:
    page = tab.page
    choose(tab, "tfidf")
    assert page.eval_on_selector_all("#fields input", "xs => xs.length") == 0
    page.fill("#fields textarea", "superb wonderful fun film")
    page.click("#predict")
    label, names, _ = predicted(tab)
    assert label == "pos" and sorted(names) == ["neg", "pos"]


@pytest.mark.slow
def test_the_image_model_takes_an_upload(tab: Tab, tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "dark.png"
    Image.fromarray(np.full((12, 12, 3), 30, dtype=np.uint8)).save(path)
    page = tab.page
    choose(tab, "cnn")
    page.set_input_files("#fields input[type=file]", str(path))
    page.wait_for_selector("#preview:not([hidden])")
    with page.expect_request(lambda r: r.method == "POST") as request:
        page.click("#predict")
    instance = request.value.post_data_json["instances"][0]
    assert instance.startswith("data:image/png;base64,")
    label, names, _ = predicted(tab)
    assert label in ("bright", "dark") and sorted(names) == ["bright", "dark"]


@pytest.mark.slow
def test_a_regression_shows_its_number_and_interval(tab: Tab, site: Site) -> None:
    page = tab.page
    choose(tab, "price")
    assert page.text_content("#info") == ("tabular model (mlp); predicts price with a 90% interval")
    row = {"size": 2.5, "weight": -0.5, "colour": "red"}
    for name, value in row.items():
        page.fill(f"#fields [name={name}]", str(value))
    page.click("#predict")
    page.wait_for_selector("#result:not([hidden])")
    (value,), (lower,), (upper,) = load(site.regression).predict_interval([row])
    assert float(page.text_content("#label")) == pytest.approx(value, rel=1e-5)  # 6 digits
    shown = re.fullmatch(r"90% interval: (\S+) to (\S+)", page.text_content("#interval"))
    assert shown is not None and page.is_visible("#interval")
    assert [float(v) for v in shown.groups()] == pytest.approx([lower, upper], rel=1e-5)
    assert page.eval_on_selector_all("#probabilities li", "xs => xs.length") == 0
    choose(tab, "lr")  # a classifier after it: probabilities again, and no interval
    page.fill("#fields [name=size]", "4.1")
    page.fill("#fields [name=weight]", "0.2")
    page.fill("#fields [name=colour]", "blue")
    page.click("#predict")
    label, names, _ = predicted(tab)
    assert label in TABLE_LABELS and sorted(names) == TABLE_LABELS
    assert page.is_hidden("#interval")


@pytest.mark.slow
def test_an_invalid_entry_shows_the_servers_error(tab: Tab, tmp_path: Path) -> None:
    path = tmp_path / "not-an-image.png"
    path.write_text("hello")
    page = tab.page
    choose(tab, "cnn")
    page.click("#predict")  # no file chosen: caught before any request
    assert "Choose an image" in error_text(tab)
    page.set_input_files("#fields input[type=file]", str(path))
    page.click("#predict")
    page.wait_for_function(
        "() => document.getElementById('error').textContent.includes('instances[0]')"
    )
    assert error_text(tab) == "instances[0]: not a base64-encoded PNG/JPEG image (HTTP 400)"
    assert page.is_hidden("#result")


@pytest.mark.slow
def test_the_api_key_is_sent_as_a_bearer_token(browser: Any, site: Site) -> None:
    tab = open_page(browser, site.keyed_url)
    page = tab.page
    try:
        assert "Could not list the models" in error_text(tab)
        assert "(HTTP 401)" in error_text(tab)
        assert page.is_disabled("#predict")
        page.fill("#api-key", API_KEY)
        page.press("#api-key", "Enter")
        page.wait_for_selector("#model option", state="attached")
        assert page.is_hidden("#error")
        choose(tab, "tfidf")
        page.fill("#fields textarea", "awful tedious mess")
        with page.expect_request(lambda r: r.method == "POST") as request:
            page.click("#predict")
        assert request.value.headers["authorization"] == f"Bearer {API_KEY}"
        label, _, _ = predicted(tab)
        assert label == "neg"
    finally:
        page.close()
    assert tab.errors == []
