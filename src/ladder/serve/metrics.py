"""The server's Prometheus metrics (base units, `_total` counters, real histograms), kept in a
registry of their own so that several servers (tests) never share counts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest  # noqa: TID253
from prometheus_client.exposition import CONTENT_TYPE_LATEST  # noqa: TID253

# 0.5 ms to 60 s
DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
REJECT_REASONS = ("queue_full", "timeout", "unauthorized", "too_large")


class ServeMetrics:
    """Counters, gauges and histograms of one server, rendered by `exposition()`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "ladder_requests",
            "Inference requests answered, by model, protocol and status code.",
            ["model", "protocol", "code"],
            registry=r,
        )
        self.request_duration = Histogram(
            "ladder_request_duration_seconds",
            "Time from receiving an inference request to answering it.",
            ["model", "protocol"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.queue_duration = Histogram(
            "ladder_queue_duration_seconds",
            "Time a request waited in its model's queue before its batch ran.",
            ["model"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.inference_duration = Histogram(
            "ladder_inference_duration_seconds",
            "Time to predict one batch (preprocessing and the model).",
            ["model"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "ladder_batch_size",
            "Rows per executed batch.",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.inflight = Gauge(
            "ladder_inflight_requests",
            "Inference requests received and not yet answered.",
            ["model"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "ladder_queue_depth", "Requests waiting in the model's queue.", ["model"], registry=r
        )
        self.rejected = Counter(
            "ladder_rejected_requests",
            "Requests refused before inference, by reason.",
            ["model", "reason"],
            registry=r,
        )
        self.model_ready = Gauge(
            "ladder_model_ready", "1 when the model is loaded and warmed up.", ["model"], registry=r
        )
        self.load_duration = Gauge(
            "ladder_model_load_duration_seconds",
            "Time to load and warm up the model at startup.",
            ["model"],
            registry=r,
        )

        # generation models (continuous batching)
        self.time_to_first_token = Histogram(
            "ladder_time_to_first_token_seconds",
            "Time from receiving a generation request to its first token (queueing included).",
            ["model"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.inter_token_latency = Histogram(
            "ladder_inter_token_latency_seconds",
            "Time between two successive tokens of one generated sequence.",
            ["model"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.generated_tokens = Counter(
            "ladder_generated_tokens", "Tokens generated.", ["model"], registry=r
        )
        self.sequences_running = Gauge(
            "ladder_sequences_running",
            "Sequences in the running batch of a generation model.",
            ["model"],
            registry=r,
        )
        self.sequences_queued = Gauge(
            "ladder_sequences_queued",
            "Generation requests waiting for a slot in the running batch.",
            ["model"],
            registry=r,
        )

    def add_generation_model(self, name: str) -> None:
        """Create a generation model's series at zero."""
        for gauge in (self.sequences_running, self.sequences_queued):
            gauge.labels(model=name).set(0)
        self.generated_tokens.labels(model=name)

    def add_model(self, name: str) -> None:
        """Create the model's series at zero, so that dashboards see them before traffic."""
        for gauge in (self.inflight, self.queue_depth, self.model_ready):
            gauge.labels(model=name).set(0)
        for reason in REJECT_REASONS:
            self.rejected.labels(model=name, reason=reason)

    def exposition(self) -> tuple[bytes, str]:
        """(body, content type) of the Prometheus text format."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
