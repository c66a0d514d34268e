"""The per-request limits: rows from declared shapes (refused before decoding, on every route),
the derived body limit, image pixels."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import requests
from serve_helpers import LiveServer, peak_rss, reset_peak_rss

from ladder.serve.batcher import BatchSettings
from ladder.serve.limits import (
    MIN_BODY,
    MIN_IMAGE_PIXELS,
    STRING_BYTES,
    LimitError,
    check_rows,
    default_max_body,
    image_pixel_limit,
    request_rows,
)
from ladder.serve.rest_codec import HEADER_LENGTH
from ladder.serve.tensors import to_raw


@pytest.mark.parametrize(
    ("shape", "rows"),
    [([7, 1, 10, 10], 7), ([3], 3), ([], 1), ("3", None), ([True], None), ([2.0], None)],
)
def test_request_rows_is_the_first_dimension(shape, rows):
    assert request_rows(shape) == rows


def test_check_rows_names_the_limit_and_its_option():
    check_rows("input 'x'", 64, 64)
    check_rows("input 'x'", None, 64)  # a malformed shape is the decoder's to refuse
    with pytest.raises(LimitError) as info:
        check_rows("input 'x'", 640, 64)
    message = str(info.value)
    assert "input 'x'" in message and "640 rows" in message
    assert "limit of 64 rows" in message and "--max-request-rows" in message


def test_the_row_limit_defaults_to_the_batch_size():
    assert BatchSettings(max_batch_size=16).max_request_rows == 16
    assert BatchSettings(max_batch_size=16, max_request_rows=100).max_request_rows == 100


def test_the_default_body_limit_follows_rows_and_the_widest_row():
    assert default_max_body([100, 26 * 3], 64) == MIN_BODY  # small rows: the floor
    image = 26 * 3 * 224 * 224  # one 3x224x224 image in JSON
    assert default_max_body([78, image], 64) == 2 * 64 * image
    assert default_max_body([78, image], 8) == 2 * 8 * image
    assert default_max_body([], 64) == MIN_BODY


def test_the_image_pixel_limit_scales_with_the_model_input():
    assert image_pixel_limit(10, 10) == MIN_IMAGE_PIXELS
    assert image_pixel_limit(1024, 1024) == 64 * 1024 * 1024
    assert image_pixel_limit(10, 10) < 9000 * 9000


# ---------------------------------------------------------------------- served


def image_body(rows: int) -> dict:
    """A JSON inference body of `rows` random 1x10x10 images."""
    images = np.random.default_rng(0).uniform(0, 1, (rows, 1, 10, 10)).round(3)
    tensor = {"name": "image", "datatype": "FP32", "shape": [rows, 1, 10, 10]}
    return {"inputs": [{**tensor, "data": images.ravel().tolist()}]}


def binary_images(url: str, rows: int) -> requests.Response:
    """POST `rows` black images as a binary tensor."""
    raw = to_raw(np.zeros((rows, 1, 10, 10), np.float32))
    tensor = {"name": "image", "datatype": "FP32", "shape": [rows, 1, 10, 10]}
    header = json.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": len(raw)}}]})
    return requests.post(
        f"{url}/v2/models/cnn/infer",
        data=header.encode() + raw,
        headers={HEADER_LENGTH: str(len(header))},
        timeout=30,
    )


def test_a_request_over_the_row_limit_is_refused_before_decoding(image_artifact):
    with LiveServer([image_artifact], max_batch_size=4) as server:  # 4 rows a request
        url = server.url
        answers = [
            requests.post(f"{url}/v2/models/cnn/infer", json=image_body(5), timeout=30),
            binary_images(url, 5),
            requests.post(
                f"{url}/v1/models/cnn:predict",
                json={"instances": ["not even an image"] * 5},  # refused before decoding
                timeout=30,
            ),
        ]
        at_limit = requests.post(f"{url}/v2/models/cnn/infer", json=image_body(4), timeout=30)
        assert at_limit.status_code == 200, at_limit.text[:200]
        metrics = requests.get(f"{url}/metrics", timeout=5).text
    for answer in answers:
        assert answer.status_code == 413, answer.text[:200]
        error = answer.json()["error"]
        assert "5 rows is over the limit of 4 rows per request (--max-request-rows)" in error
    assert 'ladder_requests_total{code="413",model="cnn",protocol="rest"} 3.0' in metrics
    assert 'ladder_rejected_requests_total{model="cnn",reason="too_large"} 3.0' in metrics


def test_ten_times_the_row_limit_is_refused_quickly_and_cheaply(image_artifact):
    """The issue's oversized request at test scale: a valid JSON body of 10x the row limit
    (640 images, under the derived body limit) is refused with 413 well within 2 s (a
    generous bound for a loaded 2-core machine: it takes milliseconds), and the process's
    peak resident memory (server and client: one process) grows by under 64 MiB meanwhile
    (the body itself is 0.4 MB; the issue's 51 MB one peaked at 18 GB)."""
    with LiveServer([image_artifact], max_body=None) as server:  # the derived body limit
        rows = 10 * 64  # the default limit: --max-batch-size, 64
        body = json.dumps(image_body(rows)).encode()
        assert len(body) < server.max_body
        baseline = reset_peak_rss()
        started = time.perf_counter()
        answer = requests.post(
            f"{server.url}/v2/models/cnn/infer",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        seconds = time.perf_counter() - started
        grown = peak_rss() - baseline
    assert answer.status_code == 413, answer.text[:200]
    assert f"{rows} rows is over the limit of 64 rows" in answer.json()["error"]
    assert seconds < 2.0
    assert grown < 64 * 2**20, f"peak RSS grew by {grown / 2**20:.0f} MiB"


def test_the_served_body_limit_is_derived_and_can_be_overridden(image_artifact, text_artifact):
    from ladder.serve.server import ServeSettings, max_body
    from ladder.serve.service import InferenceService, load_models

    service = InferenceService(load_models([image_artifact, text_artifact]), BatchSettings())
    assert max_body(ServeSettings([image_artifact]), service) == MIN_BODY  # small rows
    wide = InferenceService(list(service.models.values()), BatchSettings(max_batch_size=2048))
    assert max_body(ServeSettings([image_artifact]), wide) == 2 * 2048 * STRING_BYTES
    assert max_body(ServeSettings([image_artifact], max_body=1000), wide) == 1000
