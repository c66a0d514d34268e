"""The REST server against real tiny artifacts: Open Inference Protocol routes, JSON and binary
tensors, /v1 records and image files, errors, API key, body limit, metrics, offline pages."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time

import numpy as np
import pytest
import requests
from PIL import Image
from serve_helpers import LiveServer, png

from ladder import load
from ladder.serve.model import ServedModel
from ladder.serve.rest_codec import HEADER_LENGTH
from ladder.serve.tensors import to_raw


def infer(server, name: str, body: dict, **kwargs) -> requests.Response:
    return requests.post(f"{server.url}/v2/models/{name}/infer", json=body, timeout=30, **kwargs)


def table_inputs(rows: list[dict]) -> list[dict]:
    def column(name: str, datatype: str, shape: list[int]) -> dict:
        return {"name": name, "datatype": datatype, "shape": shape, "data": [r[name] for r in rows]}

    n = len(rows)
    return [
        column("size", "FP64", [n]),
        column("weight", "FP32", [n]),
        column("colour", "BYTES", [n, 1]),
    ]


ROWS = [
    {"size": 0.1, "weight": 0.3, "colour": "red"},
    {"size": 2.1, "weight": -1.0, "colour": "green"},
    {"size": 4.0, "weight": 0.0, "colour": "blue"},
]


def test_health_and_metadata(live_server):
    url = live_server.url
    assert requests.get(f"{url}/v2/health/live", timeout=5).json() == {"live": True}
    assert requests.get(f"{url}/v2/health/ready", timeout=5).status_code == 200
    server = requests.get(f"{url}/v2", timeout=5).json()
    assert server["name"] == "ladder" and "binary_tensor_data" in server["extensions"]
    meta = requests.get(f"{url}/v2/models/logreg", timeout=5).json()
    assert meta["versions"] == ["1"] and meta["platform"] == "onnxruntime_onnx"
    assert [i["name"] for i in meta["inputs"]] == ["size", "weight", "colour"]
    assert [i["datatype"] for i in meta["inputs"]] == ["FP64", "FP64", "BYTES"]
    assert meta["outputs"] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
    ]
    assert requests.get(f"{url}/v2/models/cnn/versions/1", timeout=5).json()["inputs"] == [
        {"name": "image", "datatype": "FP32", "shape": [-1, 1, 10, 10]}
    ]
    assert requests.get(f"{url}/v2/models/words/ready", timeout=5).status_code == 200
    assert requests.get(f"{url}/v2/models/words/versions/1/ready", timeout=5).status_code == 200


@pytest.mark.parametrize("name", ["logreg", "mlp"])
def test_tabular_json_inference_matches_the_artifact(live_server, tabular_artifacts, name):
    answer = infer(live_server, name, {"id": "a1", "inputs": table_inputs(ROWS)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_name"] == name and body["model_version"] == "1" and body["id"] == "a1"
    outputs = {o["name"]: o for o in body["outputs"]}
    proba = np.array(outputs["probabilities"]["data"]).reshape(outputs["probabilities"]["shape"])
    expected = load(tabular_artifacts[name]).predict_proba(ROWS)
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    assert outputs["label"]["data"] == list(load(tabular_artifacts[name]).predict(ROWS))


def test_image_binary_tensors_round_trip(live_server, image_artifact):
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, (4, 1, 10, 10)).astype(np.float32)
    images[:2] = 0.9  # bright
    raw = to_raw(images)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "datatype": "FP32",
                    "shape": [4, 1, 10, 10],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
        }
    ).encode()
    answer = requests.post(
        f"{live_server.url}/v2/models/cnn/infer",
        data=header + raw,
        headers={HEADER_LENGTH: str(len(header)), "Content-Type": "application/octet-stream"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    size = int(answer.headers[HEADER_LENGTH])
    meta = json.loads(answer.content[:size])
    (out,) = meta["outputs"]
    assert out["name"] == "probabilities" and out["shape"] == [4, 2]
    proba = np.frombuffer(answer.content[size:], dtype="<f4").reshape(4, 2)
    np.testing.assert_allclose(proba, load(image_artifact).predict_proba(images), atol=1e-5)


def test_text_bytes_and_uint8_images(live_server, text_artifact):
    texts = ["good great fine", "awful poor dull"]
    answer = infer(
        live_server,
        "words",
        {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": texts}]},
    )
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o for o in answer.json()["outputs"]}
    assert outputs["label"]["data"] == list(load(text_artifact).predict(texts))
    pixels = np.full((1, 1, 10, 10), 230, dtype=np.uint8)
    image = {"name": "image", "datatype": "UINT8", "shape": [1, 1, 10, 10]}
    answer = infer(live_server, "cnn", {"inputs": [{**image, "data": pixels.ravel().tolist()}]})
    assert answer.status_code == 200, answer.text


def test_v1_predict_records(live_server, image_artifact):
    answer = requests.post(
        f"{live_server.url}/v1/models/logreg:predict", json={"instances": ROWS}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [p["label"] for p in predictions] == ["cat", "dog", "fox"]
    assert abs(sum(predictions[0]["probabilities"].values()) - 1) < 1e-5
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((10, 10), 250, dtype=np.uint8)).save(buffer, format="PNG")
    png = base64.b64encode(buffer.getvalue()).decode()
    answer = requests.post(
        f"{live_server.url}/v1/models/cnn:predict", json={"instances": [png]}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    expected = load(image_artifact).predict_proba(np.full((1, 1, 10, 10), 250 / 255, np.float32))
    got = answer.json()["predictions"][0]["probabilities"]
    np.testing.assert_allclose([got["bright"], got["dark"]], expected[0], atol=1e-5)
    models = requests.get(f"{live_server.url}/v1/models", timeout=5).json()["models"]
    assert {m["name"]: m["kind"] for m in models} == {
        "logreg": "tabular",
        "mlp": "tabular",
        "cnn": "image",
        "words": "text",
    }


@pytest.mark.parametrize(
    ("name", "body", "status", "fragment"),
    [
        ("nope", {"inputs": []}, 404, "unknown model 'nope'"),
        ("logreg", {"inputs": [{"name": "size"}]}, 400, "input 'size': no data"),
        ("logreg", {"inputs": "x"}, 400, "inputs: expected a non-empty list"),
        ("words", {"inputs": [{"name": "txt", "datatype": "BYTES", "shape": [1], "data": ["a"]}]},
         400, "unknown input(s) 'txt'"),
        ("words", {"inputs": [{"name": "text", "datatype": "FP32", "shape": [1], "data": [1.0]}]},
         400, "expected datatype BYTES"),
        ("cnn", {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 4, 4],
                             "data": [0.0] * 16}]}, 400, "expected shape [-1, 1, 10, 10]"),
        ("cnn", {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 10, 10],
                             "data": [0.0] * 99}]}, 400, "needs 100 elements"),
        ("cnn", {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 10, 10],
                             "data": [3.0] * 100}]}, 400, "[0, 1]"),
        ("logreg", {"inputs": table_inputs(ROWS), "outputs": [{"name": "logits"}]}, 400,
         "unknown output 'logits'"),
    ],
)  # fmt: skip
def test_bad_requests_get_a_clear_error(live_server, name, body, status, fragment):
    answer = infer(live_server, name, body)
    assert answer.status_code == status
    assert fragment in answer.json()["error"]


def test_malformed_bodies(live_server):
    url = f"{live_server.url}/v2/models/logreg/infer"
    answer = requests.post(url, data=b"{not json", timeout=5)
    assert answer.status_code == 400 and "not valid JSON" in answer.json()["error"]
    answer = requests.post(url, data=b"{}", headers={HEADER_LENGTH: "99"}, timeout=5)
    assert answer.status_code == 400 and HEADER_LENGTH in answer.json()["error"]
    answer = requests.post(f"{live_server.url}/v1/models/logreg:predict", json={"x": 1}, timeout=5)
    assert answer.status_code == 400 and "instances" in answer.json()["error"]
    answer = requests.post(
        f"{live_server.url}/v1/models/logreg:predict",
        json={"instances": [{"size": "big"}]},
        timeout=5,
    )
    assert answer.status_code == 400 and "instances[0].size" in answer.json()["error"]
    assert requests.get(f"{live_server.url}/v2/nothing", timeout=5).json() == {"error": "Not Found"}


def sample(url: str, series: str) -> float:
    """The value of one series in the server's /metrics (0 when absent)."""
    for line in requests.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def test_metrics_count_each_request_once_by_code(live_server):
    ok = 'ladder_requests_total{code="200",model="mlp",protocol="rest"}'
    bad = 'ladder_requests_total{code="400",model="mlp",protocol="rest"}'
    batches = 'ladder_batch_size_count{model="mlp"}'
    before = {s: sample(live_server.url, s) for s in (ok, bad, batches)}
    infer(live_server, "mlp", {"inputs": table_inputs(ROWS[:1])})
    infer(live_server, "mlp", {"inputs": [{"name": "size"}]})  # malformed
    infer(
        live_server,
        "mlp",
        {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1]}]},
    )
    after = {s: sample(live_server.url, s) for s in (ok, bad, batches)}
    assert after[ok] - before[ok] == 1
    assert after[bad] - before[bad] == 2
    assert after[batches] - before[batches] == 1
    text = requests.get(f"{live_server.url}/metrics", timeout=5).text
    assert 'ladder_model_ready{model="mlp"} 1.0' in text
    assert 'ladder_inflight_requests{model="mlp"} 0.0' in text
    assert "ladder_queue_duration_seconds_count" in text


def test_api_key_and_body_limit(tabular_artifacts, monkeypatch):
    artifacts = [tabular_artifacts["logreg"]]
    with LiveServer(artifacts, api_key="s3cret", max_body=2048) as server:
        assert requests.get(f"{server.url}/v2/health/ready", timeout=5).status_code == 200
        assert requests.get(f"{server.url}/metrics", timeout=5).status_code == 200
        denied = requests.get(f"{server.url}/v2/models/logreg", timeout=5)
        assert denied.status_code == 401 and "API key" in denied.json()["error"]
        wrong = {"Authorization": "Bearer nope"}
        assert requests.get(f"{server.url}/v2", headers=wrong, timeout=5).status_code == 401
        auth = {"Authorization": "Bearer s3cret"}
        body = {"inputs": table_inputs(ROWS)}
        assert infer(server, "logreg", body, headers=auth).status_code == 200
        big = {
            "inputs": [{"name": "size", "datatype": "FP64", "shape": [500], "data": [1.0] * 500}]
        }
        answer = infer(server, "logreg", big, headers=auth)
        assert answer.status_code == 413 and "limit" in answer.json()["error"]
        text = requests.get(f"{server.url}/metrics", timeout=5).text
        assert 'ladder_rejected_requests_total{model="logreg",reason="unauthorized"} 1.0' in text
        assert 'ladder_rejected_requests_total{model="logreg",reason="too_large"} 1.0' in text


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(tabular_artifacts, scheme):
    with LiveServer([tabular_artifacts["logreg"]], api_key="s3cret") as server:
        good = {"Authorization": f"{scheme} s3cret"}
        assert requests.get(f"{server.url}/v2/models/logreg", headers=good, timeout=5).ok
        assert infer(server, "logreg", {"inputs": table_inputs(ROWS)}, headers=good).ok
        wrong = {"Authorization": f"{scheme} s3cretx"}
        assert infer(server, "logreg", {"inputs": []}, headers=wrong).status_code == 401


EXTERNAL = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.I)


def test_no_page_loads_anything_from_another_host(live_server):
    """Offline, a page that loads its scripts from a CDN is blank (Swagger UI did)."""
    url = live_server.url
    schema = requests.get(f"{url}/openapi.json", timeout=5).json()
    paths = {"/", "/docs", "/redoc", "/docs/oauth2-redirect"}
    paths |= {p for p, item in schema["paths"].items() if "get" in item and "{" not in p}
    pages = 0
    for path in sorted(paths):
        answer = requests.get(f"{url}{path}", timeout=5)  # redirects followed
        if answer.headers.get("content-type", "").startswith("text/html"):
            pages += 1
            assert EXTERNAL.search(answer.text) is None, f"{path} loads from another host"
    assert pages >= 1
    docs = requests.get(f"{url}/docs", timeout=5, allow_redirects=False)
    assert docs.status_code == 307 and docs.headers["location"] == "/"


def test_an_image_file_far_over_the_model_input_is_a_400_naming_its_size(live_server):
    huge = base64.b64encode(png(9000, 9000)).decode()
    answer = requests.post(
        f"{live_server.url}/v1/models/cnn:predict", json={"instances": [huge]}, timeout=30
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert "9000x9000 pixels" in error and "limit of 4,194,304 pixels" in error


def test_health_answers_while_an_image_decodes(live_server, monkeypatch):
    """Decoding runs in a worker thread: the event loop keeps answering. The decode here
    blocks for 2 s; health must answer within 1 s (milliseconds, in fact; 1 s is generous
    for a loaded 2-core machine). Decoding on the event loop stalled it for the whole
    decode."""
    decoding = threading.Event()
    real = ServedModel._decode_image

    def slow(*args):
        decoding.set()
        time.sleep(2.0)  # a big image, as the event loop would feel it
        return real(*args)

    monkeypatch.setattr(ServedModel, "_decode_image", staticmethod(slow))
    buffer = io.BytesIO()
    Image.fromarray(np.full((10, 10), 250, dtype=np.uint8)).save(buffer, format="PNG")
    png_text = base64.b64encode(buffer.getvalue()).decode()
    answers: list[requests.Response] = []

    def predict() -> None:
        url = f"{live_server.url}/v1/models/cnn:predict"
        answers.append(requests.post(url, json={"instances": [png_text]}, timeout=30))

    worker = threading.Thread(target=predict)
    worker.start()
    assert decoding.wait(10)
    started = time.perf_counter()
    live = requests.get(f"{live_server.url}/v2/health/live", timeout=10)
    seconds = time.perf_counter() - started
    worker.join(30)
    assert live.status_code == 200 and seconds < 1.0, f"health took {seconds:.2f} s"
    assert answers[0].status_code == 200, answers[0].text
