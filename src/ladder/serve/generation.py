"""A served language model: the request parameters of Triton's generate extension (the names
TensorRT-LLM's backend uses), its protocol tensors (`text_input` -> `text_output`, BYTES), and
text streamed from the continuous-batching engine (`ladder.generate.engine`) into the event
loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ladder.generate.engine import ERROR, Engine, EngineSettings, Event, Job, Observer
from ladder.generate.engine import Closed as EngineClosed
from ladder.generate.engine import QueueFull as EngineQueueFull
from ladder.generate.generator import PromptTooLong, TextGenerator
from ladder.generate.stream import SamplingParams
from ladder.serve.batcher import Closed, QueueFull
from ladder.serve.limits import STRING_BYTES
from ladder.serve.metrics import ServeMetrics
from ladder.serve.model import VERSION, InputError
from ladder.serve.tensors import TensorSpec

TEXT_INPUT, TEXT_OUTPUT = "text_input", "text_output"
CANCELLED = "cancelled"  # a feed's finish when its reader cancelled it
# request parameters: max_new_tokens is accepted as another name of max_tokens
PARAMETERS = ("max_tokens", "temperature", "top_k", "top_p", "seed", "stop", "truncate")
ALIASES = {"max_new_tokens": "max_tokens"}


@dataclass
class GenerationSettings:
    """How a generation model is served."""

    max_sequences: int = 16  # sequences decoded together (the running batch)
    max_new_tokens: int = 512  # the most tokens one request may ask for (max_tokens)
    default_max_tokens: int = 64  # when a request does not say (capped by max_new_tokens)


@dataclass
class GenerationRequest:
    """A checked request: the prompt's token ids (cut to the context when truncation was
    asked for), its sampling parameters and how many tokens were cut from its start."""

    ids: list[int]
    params: SamplingParams
    cut: int = 0


class MetricsObserver(Observer):
    """The engine's reports as one model's Prometheus series."""

    def __init__(self, metrics: ServeMetrics, name: str) -> None:
        self.ttft = metrics.time_to_first_token.labels(model=name)
        self.itl = metrics.inter_token_latency.labels(model=name)
        self.tokens = metrics.generated_tokens.labels(model=name)
        self.running = metrics.sequences_running.labels(model=name)
        self.queued = metrics.sequences_queued.labels(model=name)

    def first_token(self, seconds: float) -> None:
        """Time to first token, and one token generated."""
        self.ttft.observe(seconds)
        self.tokens.inc()

    def next_token(self, seconds: float) -> None:
        """Inter-token latency, and one token generated."""
        self.itl.observe(seconds)
        self.tokens.inc()

    def counts(self, running: int, queued: int) -> None:
        """The running and queued gauges."""
        self.running.set(running)
        self.queued.set(queued)


class TextFeed:
    """One request's text chunks as the engine produces them, read in the event loop.

    Iterate it once; it ends early when the model fails (`failed`; the engine logged why).
    Leaving the loop early (a client that went away) cancels the request, which frees its
    slot in the running batch before the next decoding step."""

    def __init__(self, engine: Engine, request: GenerationRequest) -> None:
        self._chunks: asyncio.Queue[tuple[str, str | None]] = asyncio.Queue()
        self.engine = engine
        self.finish: str | None = None  # why it ended: stop, length or error

        def emit(text: str, finish: str | None) -> None:  # in the loop (the engine delivers)
            self._chunks.put_nowait((text, finish))

        self.job: Job = engine.submit(request.ids, request.params, emit)

    async def __aiter__(self) -> AsyncIterator[str]:
        try:
            while self.finish is None:
                text, finish = await self._chunks.get()
                if text:
                    yield text
                self.finish = finish
        finally:
            if self.finish is None:
                self.cancel()

    @property
    def failed(self) -> bool:
        """Whether the model failed while generating."""
        return self.finish == ERROR

    def cancel(self) -> None:
        """Drop the request (its slot frees at once); a reader of the feed sees it end. Call
        it in the event loop."""
        self.engine.cancel(self.job)
        if self.finish is None:
            self._chunks.put_nowait(("", CANCELLED))

    async def text(self) -> str:
        """The whole generated text."""
        return "".join([chunk async for chunk in self])


class ServedGenerator:
    """A TextGenerator served by name, with its engine (started by `start`)."""

    kind = "generation"

    def __init__(
        self,
        name: str,
        generator: TextGenerator,
        settings: GenerationSettings | None = None,
        max_queue: int = 100,
        load_seconds: float = 0.0,
    ) -> None:
        self.name, self.version = name, VERSION
        self.generator = generator
        self.settings = settings or GenerationSettings()
        self.max_queue = max_queue
        self.load_seconds = load_seconds
        self.inputs = [TensorSpec(TEXT_INPUT, "BYTES", [-1])]
        self.outputs = [TensorSpec(TEXT_OUTPUT, "BYTES", [-1])]
        self.engine: Engine | None = None

    # ------------------------------------------------------------------ metadata

    @property
    def manifest(self) -> dict[str, Any]:
        """The artifact's manifest (empty when built in memory)."""
        return self.generator.manifest

    def metadata(self) -> dict[str, Any]:
        """The protocol's model metadata."""
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": "ladder_generation",
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
        }

    def schema(self) -> dict[str, Any]:
        """What the "try it" page needs: the task, the context and the token cap."""
        return {
            "name": self.name,
            "kind": self.kind,
            "task": self.generator.task,
            "model_type": self.manifest.get("model_type"),
            "fields": [{"name": TEXT_INPUT, "numeric": False}],
            "context_length": self.generator.context_length,
            "max_tokens": self.settings.max_new_tokens,
            "default_max_tokens": self._default_max_tokens,
        }

    def row_bytes(self) -> int:
        """The most bytes one prompt takes in a request (JSON)."""
        return STRING_BYTES

    @property
    def _default_max_tokens(self) -> int:
        return min(self.settings.default_max_tokens, self.settings.max_new_tokens)

    # ------------------------------------------------------------------ requests

    def parse(self, body: Any) -> GenerationRequest:
        """A generate request body, `{"text_input": ..., "parameters": {...}}` (parameters may
        also sit beside text_input); InputError naming the first bad field and its fix."""
        if not isinstance(body, dict):
            raise InputError("the body must be a JSON object with text_input (and parameters)")
        options = body.get("parameters", {})
        if not isinstance(options, dict):
            raise InputError('parameters: expected an object, e.g. {"max_tokens": 32}')
        top = {k: v for k, v in body.items() if k not in (TEXT_INPUT, "parameters", "id")}
        return self.request(body.get(TEXT_INPUT), {**top, **options})

    def request(self, prompt: Any, options: dict[str, Any]) -> GenerationRequest:
        """A checked request from a prompt and its parameters by name; InputError naming the
        first bad one and its fix."""
        options = dict(options)
        for alias, name in ALIASES.items():
            if alias in options and name not in options:
                options[name] = options.pop(alias)
        unknown = sorted(set(options) - set(PARAMETERS))
        if unknown:
            raise InputError(
                f"parameters.{unknown[0]}: unknown parameter; known: {', '.join(PARAMETERS)}"
            )
        if not isinstance(prompt, str):
            raise InputError(f"{TEXT_INPUT}: expected the prompt as a string")
        params = self._params(options)
        truncate = options.get("truncate", False)
        if not isinstance(truncate, bool):
            raise InputError(f"parameters.truncate must be true or false; got {truncate!r}")
        if self.generator.task == "seq2seq":  # the prompt is a source: its start is kept
            try:
                ids, cut = self.generator.prompt_ids(prompt, truncate)
            except PromptTooLong as exc:
                raise InputError(f"{TEXT_INPUT}: {exc} (parameters.truncate: true)") from exc
            except ValueError as exc:  # an empty source
                raise InputError(f"{TEXT_INPUT}: {exc}") from exc
            return GenerationRequest(ids, params, cut)
        ids = self.generator.encode(prompt)
        if not ids:
            raise InputError(f"{TEXT_INPUT}: the prompt is empty; give at least one character")
        room = max(1, self.generator.context_length - 1)
        if len(ids) > room and not truncate:
            raise InputError(
                f"{TEXT_INPUT}: the prompt is {len(ids)} tokens and the model's context holds "
                f"{room} before the first new one; shorten it or set parameters.truncate to "
                "true (its last tokens are kept)"
            )
        cut = max(0, len(ids) - room)
        return GenerationRequest(ids[cut:], params, cut)

    def _params(self, options: dict[str, Any]) -> SamplingParams:
        cap = self.settings.max_new_tokens
        max_tokens = options.get("max_tokens", self._default_max_tokens)
        if (
            isinstance(max_tokens, bool)
            or not isinstance(max_tokens, int)
            or not 1 <= max_tokens <= cap
        ):
            raise InputError(
                f"parameters.max_tokens must be an integer from 1 to {cap} (the server's cap, "
                f"--max-new-tokens); got {max_tokens!r}"
            )
        temperature = options.get("temperature", 1.0)
        if _not_number(temperature) or not temperature >= 0:
            raise InputError(
                f"parameters.temperature must be a number >= 0 (0: greedy); got {temperature!r}"
            )
        top_k = options.get("top_k")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)):
            raise InputError(f"parameters.top_k must be an integer >= 1; got {top_k!r}")
        if top_k is not None and top_k < 1:
            raise InputError(f"parameters.top_k must be an integer >= 1; got {top_k!r}")
        top_p = options.get("top_p")
        if top_p is not None and (_not_number(top_p) or not 0 < top_p <= 1):
            raise InputError(
                f"parameters.top_p must be in (0, 1], e.g. 0.9 (1: no cut); got {top_p!r}"
            )
        seed = options.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise InputError(f"parameters.seed must be an integer >= 0; got {seed!r}")
        stop = options.get("stop") or ()
        stop = (stop,) if isinstance(stop, str) else stop
        if not isinstance(stop, list | tuple) or not all(isinstance(s, str) and s for s in stop):
            raise InputError("parameters.stop must be a string or a list of non-empty strings")
        return SamplingParams(
            max_new_tokens=max_tokens,
            temperature=float(temperature),
            top_k=top_k,
            top_p=None if top_p is None else float(top_p),
            seed=seed,
            stop=tuple(stop),
        ).check()

    # ------------------------------------------------------------------ tensors (infer)

    def check_outputs(self, names: list[str] | None) -> None:
        """InputError unless every requested output name is text_output."""
        for name in names or []:
            if name != TEXT_OUTPUT:
                raise InputError(
                    f"model {self.name!r}: unknown output {name!r} (has {TEXT_OUTPUT})"
                )

    def rows_from_instances(self, instances: Any) -> tuple[Any, int]:
        """Always InputError: a language model answers the generate routes, not /v1 predict."""
        raise InputError(
            f"model {self.name!r} generates text: POST /v2/models/{self.name}/generate "
            '{"text_input": "..."} instead'
        )

    def requests_from_tensors(self, tensors: dict[str, np.ndarray]) -> list[GenerationRequest]:
        """One request per element of the BYTES input text_input; the other inputs, named as
        the parameters (e.g. max_tokens INT32 [1]), hold one value for all or one per prompt."""
        unknown = sorted(set(tensors) - {TEXT_INPUT, *PARAMETERS, *ALIASES})
        if unknown:
            known = ", ".join([TEXT_INPUT, *PARAMETERS])
            raise InputError(f"model {self.name!r}: unknown input {unknown[0]!r} (expects {known})")
        if TEXT_INPUT not in tensors:
            raise InputError(f"model {self.name!r}: missing input {TEXT_INPUT!r}")
        prompts = tensors[TEXT_INPUT].reshape(-1)
        if prompts.dtype != object:
            raise InputError(f"input {TEXT_INPUT!r}: expected datatype BYTES")
        columns = {}
        for name, array in tensors.items():
            if name == TEXT_INPUT:
                continue
            flat = array.reshape(-1)
            if len(flat) not in (1, len(prompts)):
                raise InputError(
                    f"input {name!r}: expected 1 value or one per prompt ({len(prompts)}), "
                    f"got {len(flat)}"
                )
            columns[name] = flat
        out = []
        for i, raw in enumerate(prompts):
            options = {n: _plain(c[i if len(c) > 1 else 0]) for n, c in columns.items()}
            try:
                prompt = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            except UnicodeDecodeError:
                raise InputError(f"input {TEXT_INPUT!r}: element {i} is not valid UTF-8") from None
            out.append(self.request(prompt, options))
        return out

    # ------------------------------------------------------------------ the engine

    def start(self, metrics: ServeMetrics) -> None:
        """Start the engine (its running and queued counts go to `metrics`); call it in the
        event loop that reads the feeds: each decoding step's text reaches it in one call."""
        loop = asyncio.get_running_loop()

        def deliver(events: list[Event]) -> None:  # in the engine's thread
            loop.call_soon_threadsafe(_emit_all, events)

        metrics.add_generation_model(self.name)
        settings = EngineSettings(self.settings.max_sequences, self.max_queue)
        observer = MetricsObserver(metrics, self.name)
        self.engine = Engine(self.generator, settings, observer, deliver)
        self.engine.start()

    def warm_up(self) -> float:
        """Seconds to read a one-token prompt once (before the model is ready)."""
        started = time.perf_counter()
        self.generator.decoder.prefill([0])
        return time.perf_counter() - started

    def open(self, request: GenerationRequest) -> TextFeed:
        """Queue a checked request; its text comes through the feed. The batcher's QueueFull
        and Closed when it cannot be taken, as for the other models."""
        if self.engine is None:
            raise Closed(f"model {self.name!r}: the engine is not started")
        try:
            return TextFeed(self.engine, request)
        except EngineQueueFull as exc:
            raise QueueFull(str(exc)) from exc
        except EngineClosed as exc:
            raise Closed(str(exc)) from exc

    async def drain(self) -> None:
        """Finish queued and running requests, then stop the engine."""
        if self.engine is not None:
            self.engine.close()
            await asyncio.to_thread(self.engine.join)


def _emit_all(events: list[Event]) -> None:
    for emit, text, finish in events:
        emit(text, finish)


def _not_number(value: Any) -> bool:
    return isinstance(value, bool) or not isinstance(value, int | float)


def _plain(value: Any) -> Any:
    """A tensor element as JSON would give it (str, int, float, bool)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value
