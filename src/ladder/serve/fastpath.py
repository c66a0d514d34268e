"""The REST inference call, and an ASGI shortcut that answers it without the web framework's
routing and middleware stack (about half of a small request's server CPU). The FastAPI routes
of the same paths call `rest_infer` too, so both ways give the same answers; the shortcut is
only the hot path."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from ladder.serve.rest_codec import (
    HEADER_LENGTH,
    JSON_TYPE,
    RequestError,
    infer_response,
    parse_infer_request,
)
from ladder.serve.service import BadRequest, InferenceService, ServeError, Unavailable
from ladder.serve.tensors import TensorError

logger = logging.getLogger(__name__)
INFER_PATH = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?/infer$")

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
    try:
        model = service.model(name, version)
        parsed = parse_infer_request(body, header_length)
    except (RequestError, TensorError) as exc:
        raise service.failed(name, "rest", BadRequest(str(exc))) from exc
    except ServeError as exc:
        raise service.failed(name, "rest", exc) from None
    outputs = await service.infer(name, version, parsed.inputs, parsed.outputs, "rest")
    pairs = [(o.name, o.array) for o in outputs]
    return infer_response(model.name, model.version, pairs, parsed)


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
        try:
            content, headers = await rest_infer(
                self.service, name, unquote(version) if version else None, body, header_length
            )
            status = 200
        except ServeError as exc:
            status, content, headers = error_parts(exc)
        except Exception:  # counted as a 500 by the service; the traceback goes to the log
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


__all__ = ["HEADER_LENGTH", "InferShortcut", "error_parts", "rest_infer"]
