"""The "try it" page with a language model, in headless Chromium against a live server: the
form has the prompt and the generate parameters, the text streams in chunk by chunk, and a
bad parameter shows the server's error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from generation_helpers import served, tiny_generator
from serve_helpers import LiveServer
from test_page import browser, open_page  # noqa: F401 (browser: a fixture)

from ladder.generate.stream import SamplingParams
from ladder.serve.page import try_page


@pytest.fixture(scope="module")
def writer() -> Iterator[LiveServer]:
    with LiveServer([], models=[served("writer", max_new_tokens=200)], page=try_page()) as live:
        yield live


@pytest.mark.slow
def test_the_page_streams_a_generation(browser: Any, writer: LiveServer) -> None:  # noqa: F811
    tab = open_page(browser, writer.url + "/")
    page = tab.page
    try:
        page.wait_for_selector("#model option", state="attached")
        assert page.text_content("#predict") == "Generate"
        assert "context 32 tokens" in page.text_content("#info")
        page.fill("#fields textarea", "the quick")
        page.fill("#fields [name=max_tokens]", "60")
        page.fill("#fields [name=seed]", "4")
        with page.expect_request(lambda r: r.method == "POST") as request:
            page.click("#predict")
        assert request.value.url.endswith("/v2/models/writer/generate_stream")
        assert request.value.post_data_json == {
            "text_input": "the quick",
            "parameters": {"max_tokens": 60, "temperature": 1, "seed": 4},
        }
        page.wait_for_function(
            "() => document.getElementById('generation-state').textContent === '(done)'"
        )
        want = tiny_generator().generate("the quick", SamplingParams(max_new_tokens=60, seed=4))
        assert page.text_content("#generated") == "the quick" + want
        # the prompt, then one text node per streamed chunk
        assert page.eval_on_selector("#generated", "e => e.childNodes.length") > 3
        assert page.is_hidden("#error")
    finally:
        page.close()
    assert tab.errors == []
    assert [u for u in tab.requests if not u.startswith((writer.url, "data:"))] == []


@pytest.mark.slow
def test_a_bad_parameter_shows_the_servers_error(browser: Any, writer: LiveServer) -> None:  # noqa: F811
    tab = open_page(browser, writer.url + "/")
    page = tab.page
    try:
        page.wait_for_selector("#model option", state="attached")
        page.fill("#fields textarea", "the")
        page.fill("#fields [name=top_p]", "1.5")
        page.click("#predict")
        page.wait_for_selector("#error:not([hidden])")
        error = page.text_content("#error")
        assert error.startswith("parameters.top_p must be in (0, 1]") and "(HTTP 400)" in error
        assert page.is_hidden("#generation")
    finally:
        page.close()
    assert tab.errors == []
