"""The server's metrics: names and types as Prometheus wants them, and `promtool check metrics`
passes on a live server's /metrics."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import requests

from ladder.serve.metrics import DURATION_BUCKETS, ServeMetrics

FAMILIES = {
    "ladder_requests": "counter",
    "ladder_request_duration_seconds": "histogram",
    "ladder_queue_duration_seconds": "histogram",
    "ladder_inference_duration_seconds": "histogram",
    "ladder_batch_size": "histogram",
    "ladder_inflight_requests": "gauge",
    "ladder_queue_depth": "gauge",
    "ladder_rejected_requests": "counter",
    "ladder_model_ready": "gauge",
    "ladder_model_load_duration_seconds": "gauge",
    "ladder_time_to_first_token_seconds": "histogram",
    "ladder_inter_token_latency_seconds": "histogram",
    "ladder_generated_tokens": "counter",
    "ladder_sequences_running": "gauge",
    "ladder_sequences_queued": "gauge",
}


def test_the_registry_holds_exactly_the_documented_families():
    metrics = ServeMetrics()
    found = {m.name: m.type for m in metrics.registry.collect()}
    assert found == FAMILIES
    assert DURATION_BUCKETS[0] == 0.0005 and DURATION_BUCKETS[-1] == 60.0


def test_a_new_model_has_its_series_at_zero_before_traffic():
    metrics = ServeMetrics()
    metrics.add_model("lenet")
    body, content_type = metrics.exposition()
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert 'ladder_model_ready{model="lenet"} 0.0' in text
    assert 'ladder_rejected_requests_total{model="lenet",reason="queue_full"} 0.0' in text


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian prometheus) missing")
def test_promtool_accepts_a_live_servers_metrics(live_server):
    row = {"name": "size", "datatype": "FP64", "shape": [1], "data": [1.0]}
    requests.post(f"{live_server.url}/v2/models/logreg/infer", json={"inputs": [row]}, timeout=30)
    text = requests.get(f"{live_server.url}/metrics", timeout=5).text
    assert "ladder_request_duration_seconds_bucket" in text
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
