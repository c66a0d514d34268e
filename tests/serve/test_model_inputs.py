"""ServedModel's input checks: the library's missing-value policy and finiteness check on REST
v2 tensors (JSON and binary), /v1 instances and gRPC (which share `rows_from_tensors`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from helpers import make_table, write_config
from serve_helpers import LiveServer

from ladder import load
from ladder.serve.model import InputError, ServedModel

ROWS = [
    {"size": 0.1, "weight": 0.3, "colour": "red"},
    {"size": 4.0, "weight": -1.0, "colour": "blue"},
]


@pytest.fixture(scope="module")
def gappy_artifact(tmp_path_factory) -> Path:
    """logreg on the animals table with a few weights missing: only 'weight' may be missing."""
    from ladder.runner.ladder import train

    tmp = tmp_path_factory.mktemp("serve_gaps")
    frame = make_table()
    frame.loc[[2, 5, 8], "weight"] = np.nan
    frame.to_csv(tmp / "gaps.csv", index=False)
    config = write_config(
        tmp, str(tmp / "gaps.csv"), [{"name": "gaps", "type": "logistic_regression"}]
    )
    train(config, "gaps", out=tmp / "run")
    return tmp / "run/models/gaps/artifact"


@pytest.fixture(scope="module")
def gappy_server(gappy_artifact) -> Iterator[LiveServer]:
    with LiveServer([gappy_artifact]) as live:
        yield live


def tensors(rows: list[dict]) -> dict[str, np.ndarray]:
    colour = np.empty(len(rows), dtype=object)
    colour[:] = [None if r["colour"] is None else r["colour"].encode() for r in rows]
    return {
        "size": np.array([r["size"] for r in rows], dtype=np.float64),
        "weight": np.array([r["weight"] for r in rows], dtype=np.float64),
        "colour": colour,
    }


def refused(call, *args) -> str:
    with pytest.raises(InputError) as info:
        call(*args)
    return str(info.value)


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("size", np.nan, "input 'size'[1]: missing ('size' had no missing values in the training"),
        ("colour", None, "input 'colour'[1]: missing"),
        ("weight", np.inf, "input 'weight'[1]: inf is not a finite number"),
        ("weight", -1e39, "input 'weight'[1]: -1e+39 is not a finite number"),
    ],
)
def test_tensors_refuse_what_the_model_cannot_take(tabular_artifacts, column, value, fragment):
    model = ServedModel("logreg", tabular_artifacts["logreg"])
    assert fragment in refused(
        model.rows_from_tensors, tensors([ROWS[0], {**ROWS[1], column: value}])
    )
    without = {k: v for k, v in tensors(ROWS).items() if k != "weight"}
    assert "missing input(s) 'weight'" in refused(model.rows_from_tensors, without)


def test_instances_refuse_absent_and_null_values(tabular_artifacts):
    model = ServedModel("logreg", tabular_artifacts["logreg"])
    assert "instances[0].size: missing" in refused(model.rows_from_instances, [{}])
    both = [ROWS[0], {**ROWS[1], "weight": None}]
    assert "instances[1].weight: missing" in refused(model.rows_from_instances, both)
    huge = [{**ROWS[0], "size": 1e300}]
    assert "instances[0].size: 1e+300 is not a finite" in refused(model.rows_from_instances, huge)


def test_a_column_with_missing_values_in_training_is_imputed_everywhere(gappy_artifact):
    library = load(gappy_artifact)
    gaps = [{**r, "weight": None} for r in ROWS]
    expected = library.predict_proba([{k: v for k, v in r.items() if k != "weight"} for r in ROWS])
    np.testing.assert_allclose(library.predict_proba(gaps), expected)
    model = ServedModel("gaps", gappy_artifact)
    for raw, rows in (
        model.rows_from_tensors(tensors(gaps)),
        model.rows_from_tensors({k: v for k, v in tensors(ROWS).items() if k != "weight"}),
        model.rows_from_instances([{"size": r["size"], "colour": r["colour"]} for r in ROWS]),
    ):
        assert rows == 2
        np.testing.assert_allclose(model.predict([raw])[0], expected, atol=1e-6)
    assert "instances[0].size: missing" in refused(model.rows_from_instances, [{"weight": 1.0}])


def test_rest_json_null_is_imputed_where_allowed_and_nan_tokens_are_refused(
    gappy_server, gappy_artifact
):
    url = f"{gappy_server.url}/v2/models/gaps/infer"
    inputs = [
        {"name": "size", "datatype": "FP64", "shape": [2], "data": [0.1, 4.0]},
        {"name": "weight", "datatype": "FP64", "shape": [2], "data": [None, None]},
        {"name": "colour", "datatype": "BYTES", "shape": [2], "data": ["red", "blue"]},
    ]
    answer = requests.post(url, json={"inputs": inputs}, timeout=30)
    assert answer.status_code == 200, answer.text
    proba = {o["name"]: o for o in answer.json()["outputs"]}["probabilities"]["data"]
    expected = load(gappy_artifact).predict_proba([{**r, "weight": None} for r in ROWS])
    np.testing.assert_allclose(np.reshape(proba, (2, 3)), expected, atol=1e-5)
    inputs[0]["data"] = [0.1, None]
    answer = requests.post(url, json={"inputs": inputs}, timeout=30)
    assert answer.status_code == 400 and "input 'size'[1]: missing" in answer.json()["error"]
    for token in ("NaN", "Infinity", "-Infinity"):
        body = '{"inputs": [{"name": "size", "datatype": "FP64", "shape": [1], "data": [%s]}]}'
        answer = requests.post(url, data=body % token, timeout=30)
        assert answer.status_code == 400, token
        assert f"{token} is not a JSON value" in answer.json()["error"]
    answer = requests.post(
        f"{gappy_server.url}/v1/models/gaps:predict", json={"instances": [{}]}, timeout=30
    )
    assert answer.status_code == 400 and "instances[0].size: missing" in answer.json()["error"]


def test_a_missing_text_is_an_empty_text_on_every_path(text_artifact):
    """Text models learn "" for a missing text; v2 BYTES null, /v1 null and the library's None
    all give the empty text's prediction."""
    model = ServedModel("text", text_artifact)
    empty = load(text_artifact).predict_proba([""])
    for raw, _ in (
        model.rows_from_instances([None]),
        model.rows_from_instances([{model.text_column: None}]),
        model.rows_from_tensors({model.text_column: np.array([None], dtype=object)}),
    ):
        np.testing.assert_allclose(model.predict([raw])[0], empty, atol=1e-6)
    np.testing.assert_allclose(load(text_artifact).predict_proba([None]), empty, atol=1e-6)
