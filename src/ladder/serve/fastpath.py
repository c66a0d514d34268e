"""The REST inference calls (`/v2/.../infer` and `/v1/...:predict`), and an ASGI shortcut that
answers `/infer` without the web framework's routing and middleware stack (about half of a
small request's server CPU). The FastAPI routes of the same paths call the same functions, so
both ways give the same answers; the shortcut is only the hot path. A call whose client
disconnects is cancelled, so that its queued work never runs."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar
from urllib.parse import unquote

from ladder.serve.model import InputError
from ladder.serve.rest_codec import (
    HEADER_LENGTH,
    JSON_TYPE,
    RequestError,
    infer_response,
    json_object,
    parse_infer_request,
)
from ladder.serve.service import (
    BadRequest,
    ClientGone,
    InferenceService,
    ServeError,
    Unavailable,
)
from ladder.serve.tensors import TensorError

logger = logging.getLogger(__name__)
INFER_PATH = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?/infer$")
WATCH_AFTER_S = 0.05  # a call answered sooner never watches its connection
T = TypeVar("T")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def rest_infer(
    service: InferenceService,
    name: str,
    version: str | None,
    body: bytes,
    header_length: str | None,
) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of the answer to a REST inference body; raises ServeError."""
    model = service.model(name, version)
    try:
        parsed = parse_infer_request(body, header_length, partial(service.check_rows, name))
    except (RequestError, TensorError) as exc:
        raise BadRequest(str(exc)) from exc
    outputs = await service.infer(name, version, parsed.inputs, parsed.outputs, "rest")
    pairs = [(o.name, o.array) for o in outputs]
    return infer_response(model.name, model.version, pairs, parsed)


async def rest_predict(service: InferenceService, name: str, body: bytes) -> dict[str, Any]:
    """The answer to a /v1 predict body of raw `instances` (labels and probabilities, or
    values); raises ServeError. Instances are decoded in a worker thread: an image file takes
    a while."""
    with service.track(name):
        model = service.model(name)
        try:
            instances = json_object(body).get("instances")
            if isinstance(instances, list):
                service.check_rows(name, "instances", len(instances))
            raw, rows = await asyncio.to_thread(model.rows_from_instances, instances)
        except (RequestError, InputError) as exc:
            raise BadRequest(str(exc)) from exc
        outputs = await service.predict(model, raw, rows)
    return {"model_name": model.name, **model.answers.answer(outputs)}


async def unless_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """The result of `work`, or ClientGone (with `work` cancelled) if the client disconnects
    first; call it once the request body has been read.

    `work` runs in the calling task. Only a call still unanswered after WATCH_AFTER_S starts
    a small task that watches the connection: most calls are answered sooner, and the hot path
    then pays for a timer, not for a task (measured: a task per call cost about a tenth of the
    server's CPU per small request)."""
    caller = asyncio.current_task()
    gone = False
    watch: asyncio.Future[None] | None = None

    def on_disconnect(done: asyncio.Future[None]) -> None:
        nonlocal gone
        if not done.cancelled() and done.exception() is None and caller is not None:
            gone = True
            caller.cancel()

    def start_watching() -> None:
        nonlocal watch
        watch = asyncio.ensure_future(_disconnected(receive))
        watch.add_done_callback(on_disconnect)

    timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, start_watching)
    try:
        return await work
    except asyncio.CancelledError:
        if not gone:
            raise  # cancelled from elsewhere (shutdown)
        raise ClientGone("the client disconnected before its answer") from None
    finally:
        timer.cancel()
        if watch is not None:
            watch.remove_done_callback(on_disconnect)
            watch.cancel()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def error_parts(exc: ServeError) -> tuple[int, bytes, dict[str, str]]:
    """(status, body, headers) of a ServeError's JSON answer (Retry-After on 503)."""
    headers = {"content-type": JSON_TYPE}
    if isinstance(exc, Unavailable):
        headers["retry-after"] = str(exc.retry_after)
    return exc.status, json.dumps({"error": exc.message}).encode(), headers


class InferShortcut:
    """ASGI middleware: POST .../infer goes straight to `rest_infer`; the rest to `app`."""

    def __init__(self, app: Any, service: InferenceService) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "POST":
            match = INFER_PATH.match(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        name, version = unquote(match.group(1)), match.group(2)
        header_length = None
        for key, value in scope["headers"]:
            if key.lower() == b"inference-header-content-length":
                header_length = value.decode("latin-1")
        body = await _body(receive)
        version = unquote(version) if version else None
        try:
            work = rest_infer(self.service, name, version, body, header_length)
            content, headers = await unless_disconnected(receive, work)
            status = 200
        except ServeError as exc:
            status, content, headers = error_parts(exc)
        except Exception:  # answered (and counted) as a 500; the traceback goes to the log
            logger.exception("inference on %s failed", name)
            status, content, headers = error_parts(ServeError("internal server error"))
        raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        raw_headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": content})


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


__all__ = [
    "HEADER_LENGTH",
    "InferShortcut",
    "error_parts",
    "rest_infer",
    "rest_predict",
    "unless_disconnected",
]
