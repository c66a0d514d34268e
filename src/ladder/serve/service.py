"""What both protocols call: the served models by name, health, inference through each model's
batcher, and the request metrics. Errors are ServeError subclasses carrying an HTTP status
(the gRPC server maps them to status codes)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ladder import __version__
from ladder.export.artifact import read_manifest
from ladder.export.lm_artifact import is_generation, load_generator
from ladder.export.s2s_artifact import is_seq2seq, load_translator
from ladder.serve.batcher import Batcher, BatchSettings, BatchStats, Closed, Expired, QueueFull
from ladder.serve.generation import (
    GenerationRequest,
    GenerationSettings,
    ServedGenerator,
    TextFeed,
)
from ladder.serve.limits import LimitError, check_rows
from ladder.serve.metrics import ServeMetrics
from ladder.serve.model import InputError, ServedModel


class ServeError(Exception):
    """A request the server answers with an error status and a one-line message."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ServeError):
    """Malformed or invalid input (gRPC INVALID_ARGUMENT)."""

    status = 400


class Unauthorized(ServeError):
    """A missing or wrong API key (gRPC UNAUTHENTICATED)."""

    status = 401


class NotFound(ServeError):
    """An unknown model or version (gRPC NOT_FOUND)."""

    status = 404


class TooLarge(ServeError):
    """A request body over the size limit."""

    status = 413


class Unavailable(ServeError):
    """Queue full, not ready or shutting down (gRPC UNAVAILABLE); `retry_after` seconds."""

    status = 503

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Timeout(ServeError):
    """No answer within the request timeout (gRPC DEADLINE_EXCEEDED)."""

    status = 504


class ClientGone(ServeError):
    """The client went away before its answer (nginx's 499): its work is dropped and the
    answer, counted and logged, never reaches it."""

    status = 499


@dataclass
class InferOutput:
    """One output tensor of an answer."""

    name: str
    array: np.ndarray


class InferenceService:
    """The models a server serves, their batchers and the server's health and metrics."""

    def __init__(
        self, models: list[ServedModel | ServedGenerator], settings: BatchSettings
    ) -> None:
        names = [m.name for m in models]
        if len(set(names)) != len(names):
            raise ValueError(f"two served models share a name: {names}")
        self.models = {m.name: m for m in models}
        self.settings = settings
        self.metrics = ServeMetrics()
        self.live = True
        self.draining = False
        self._warm: set[str] = set()
        self.batchers: dict[str, Batcher] = {}
        for model in models:
            self.metrics.add_model(model.name)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start every model's batcher and warm it up with one request; then ready."""
        for name, model in self.models.items():
            if model.kind == "generation":
                self._start_generation(model)
                continue
            batcher = Batcher(
                model.predict,
                self.settings,
                on_batch=lambda stats, name=name: self._record_batch(name, stats),
                on_depth=lambda depth, name=name: self.metrics.queue_depth.labels(model=name).set(
                    depth
                ),
            )
            batcher.start()
            self.batchers[name] = batcher
            started = time.perf_counter()
            raw, rows = model.warm_up_rows()
            await batcher.submit(raw, rows)
            warm_seconds = time.perf_counter() - started
            self.metrics.load_duration.labels(model=name).set(model.load_seconds + warm_seconds)
            self._warm.add(name)
            self.metrics.model_ready.labels(model=name).set(1)

    def _start_generation(self, model: ServedGenerator) -> None:
        """Start a generation model's engine, warmed up; ready from then on."""
        model.start(self.metrics)
        seconds = model.warm_up()
        self.metrics.load_duration.labels(model=model.name).set(model.load_seconds + seconds)
        self._warm.add(model.name)
        self.metrics.model_ready.labels(model=model.name).set(1)

    def begin_drain(self) -> None:
        """Turn not ready at once (the first step of a graceful shutdown)."""
        self.draining = True
        for name in self.models:
            self.metrics.model_ready.labels(model=name).set(0)

    async def drain(self) -> None:
        """Answer every queued and running request, refusing new ones."""
        self.begin_drain()
        for batcher in self.batchers.values():
            await batcher.drain()
        for model in self.models.values():
            if model.kind == "generation":
                await model.drain()

    @property
    def ready(self) -> bool:
        """Every model loaded and warmed up, and not shutting down."""
        return not self.draining and self._warm == set(self.models)

    def server_metadata(self) -> dict[str, Any]:
        """The protocol's server metadata."""
        extensions = ["binary_tensor_data"]
        if any(m.kind == "generation" for m in self.models.values()):
            extensions.append("generate")
        return {"name": "ladder", "version": __version__, "extensions": extensions}

    # ------------------------------------------------------------------ models

    def model(self, name: str, version: str | None = None) -> ServedModel | ServedGenerator:
        """The served model `name` (at `version`, if given); NotFound listing the models."""
        model = self.models.get(name)
        if model is None:
            raise NotFound(f"unknown model {name!r} (served: {', '.join(sorted(self.models))})")
        if version not in (None, "", model.version):
            raise NotFound(f"model {name!r} has no version {version!r} (versions: {model.version})")
        return model

    def model_ready(self, name: str, version: str | None = None) -> bool:
        """Whether the model exists, is warmed up and the server is not shutting down."""
        self.model(name, version)
        return not self.draining and name in self._warm

    @property
    def max_request_rows(self) -> int:
        """The most rows one request may hold."""
        return int(self.settings.max_request_rows or self.settings.max_batch_size)

    def check_rows(self, name: str, where: str, rows: int | None) -> None:
        """TooLarge (counted as a refusal) when `rows`, declared by `where` in a request to
        model `name`, is over the rows of one request."""
        try:
            check_rows(where, rows, self.max_request_rows)
        except LimitError as exc:
            self.reject(name, "too_large")
            raise TooLarge(str(exc)) from None

    # ------------------------------------------------------------------ inference

    async def infer(
        self,
        name: str,
        version: str | None,
        inputs: dict[str, np.ndarray],
        outputs: list[str] | None,
        protocol: str,
        timeout: float | None = None,
    ) -> list[InferOutput]:
        """Predict request tensors with model `name`; the requested outputs (all if None);
        `timeout`: the caller's own deadline (seconds), if shorter than the server's."""
        with self.track(name):
            model = self.model(name, version)
            if model.kind == "generation":
                return await self._generate_tensors(model, inputs, outputs)
            try:
                raw, rows = model.rows_from_tensors(inputs)
                model.check_outputs(outputs)
            except InputError as exc:
                raise BadRequest(str(exc)) from exc
            predicted = await self.predict(model, raw, rows, timeout)
            tensors = model.output_tensors(predicted, outputs)
            return [InferOutput(n, a) for n, a in tensors.items()]

    async def predict(
        self, model: ServedModel, raw: Any, rows: int, timeout: float | None = None
    ) -> np.ndarray:
        """The outputs of raw inputs (class probabilities, or values) through the model's
        batcher (ServeError on refusal)."""
        if not self.ready:
            raise Unavailable("the server is not ready (starting or shutting down)")
        if rows == 0:
            return model.answers.empty()
        try:
            return await self.batchers[model.name].submit(raw, rows, timeout)
        except QueueFull as exc:
            self.metrics.rejected.labels(model=model.name, reason="queue_full").inc()
            raise Unavailable(f"model {model.name!r}: queue full ({exc}); retry later") from exc
        except Closed as exc:
            raise Unavailable(str(exc)) from exc
        except Expired as exc:
            self.metrics.rejected.labels(model=model.name, reason="timeout").inc()
            raise Timeout(f"model {model.name!r}: {exc}") from exc

    # ------------------------------------------------------------------ generation

    def generator(self, name: str, version: str | None = None) -> ServedGenerator:
        """The served generation model `name`; NotFound, or BadRequest for another task."""
        model = self.model(name, version)
        if model.kind != "generation":
            raise BadRequest(
                f"model {name!r} is not a language model: POST /v2/models/{name}/infer instead"
            )
        return model

    def parse_generation(self, model: ServedGenerator, body: Any) -> GenerationRequest:
        """A generate request body, checked (BadRequest naming the bad field)."""
        try:
            return model.parse(body)
        except InputError as exc:
            raise BadRequest(str(exc)) from exc

    def open_generation(self, model: ServedGenerator, request: GenerationRequest) -> TextFeed:
        """Queue a checked generation request: its feed of text (Unavailable when the queue
        is full or the server is not ready)."""
        if not self.ready:
            raise Unavailable("the server is not ready (starting or shutting down)")
        try:
            return model.open(request)
        except QueueFull as exc:
            self.metrics.rejected.labels(model=model.name, reason="queue_full").inc()
            raise Unavailable(f"model {model.name!r}: queue full ({exc}); retry later") from exc
        except Closed as exc:
            raise Unavailable(str(exc)) from exc

    async def _generate_tensors(
        self, model: ServedGenerator, inputs: dict[str, np.ndarray], outputs: list[str] | None
    ) -> list[InferOutput]:
        """text_output (BYTES) for every prompt of text_input, generated side by side."""
        try:
            requests = model.requests_from_tensors(inputs)
            model.check_outputs(outputs)
        except InputError as exc:
            raise BadRequest(str(exc)) from exc
        feeds: list[TextFeed] = []
        try:
            for request in requests:
                feeds.append(self.open_generation(model, request))
            texts = await asyncio.gather(*(f.text() for f in feeds))
        except BaseException:
            for feed in feeds:
                feed.cancel()
            raise
        if any(feed.failed for feed in feeds):
            raise ServeError(f"model {model.name!r} failed while generating")
        return [InferOutput("text_output", np.asarray(texts, dtype=object))]

    async def generate(self, model: ServedGenerator, request: GenerationRequest) -> str:
        """The whole text of a checked generation request."""
        feed = self.open_generation(model, request)
        try:
            text = await feed.text()
        finally:
            feed.cancel()  # a no-op once it has finished; frees the slot when cancelled
        if feed.failed:
            raise ServeError(f"model {model.name!r} failed while generating")
        return text

    @contextmanager
    def track(self, name: str) -> Iterator[None]:
        """Count an inference request to model `name` as in flight while it runs."""
        inflight = self._series("inflight", self.label(name))
        inflight.inc()
        try:
            yield
        finally:
            inflight.dec()

    def label(self, name: str | None) -> str:
        """The metrics' model label of a requested name ("unknown" unless it is served)."""
        return name if name in self.models else "unknown"

    def count(self, name: str | None, protocol: str, code: int, seconds: float) -> None:
        """Count one answered inference request (any status) to model `name`."""
        label = self.label(name)
        self._series("requests", label, protocol, str(code)).inc()
        self._series("request_duration", label, protocol).observe(seconds)

    def reject(self, name: str | None, reason: str) -> None:
        """Count a request refused before inference (unauthorized, too large, ...)."""
        self._series("rejected", self.label(name), reason).inc()

    @functools.cache  # noqa: B019 (one service per server: the cache lives as long as it)
    def _series(self, metric: str, *labels: str) -> Any:
        """The labelled child of a metric, looked up once (the hot path calls this often)."""
        return getattr(self.metrics, metric).labels(*labels)

    def _record_batch(self, name: str, stats: BatchStats) -> None:
        if name not in self._warm:
            return  # the warm-up batch is not traffic
        m = self.metrics
        m.batch_size.labels(model=name).observe(stats.rows)
        m.inference_duration.labels(model=name).observe(stats.inference_seconds)
        for seconds in stats.queue_seconds:
            m.queue_duration.labels(model=name).observe(seconds)


def load_models(
    artifacts: list[str | Path],
    threads: int | None = 1,
    generation: GenerationSettings | None = None,
    max_queue: int = 100,
) -> list[ServedModel | ServedGenerator]:
    """The artifacts as served models, named after their manifest (`name`), made unique
    with `-2`, `-3`... suffixes; `threads`: ONNX Runtime threads per batch. A generation
    artifact (a language model) is served with continuous batching (`generation`, at most
    `max_queue` requests waiting). ArtifactError or DataError naming the file that fails."""
    models: list[ServedModel | ServedGenerator] = []
    taken: set[str] = set()
    for path in artifacts:
        base = str(read_manifest(path).get("name") or Path(path).parent.name)
        name, k = base, 2
        while name in taken:
            name, k = f"{base}-{k}", k + 1
        taken.add(name)
        if is_generation(path) or is_seq2seq(path):
            started = time.perf_counter()
            load = load_translator if is_seq2seq(path) else load_generator
            generator = load(path, threads=threads)
            seconds = time.perf_counter() - started
            models.append(ServedGenerator(name, generator, generation, max_queue, seconds))
        else:
            models.append(ServedModel(name, path, threads))
    return models
