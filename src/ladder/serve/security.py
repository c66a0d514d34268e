"""Request guards of the REST server, as one ASGI middleware: a body-size limit (413 before
anything is parsed) and, when an API key is set, `Authorization: Bearer <key>` on inference
and metadata routes (401; the scheme is case-insensitive, RFC 7235). Health, /metrics, the
"try it" page and the API schema stay open."""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

OPEN_PATHS = re.compile(r"^/(v2/health/(live|ready)|metrics|docs|openapi\.json)?$")
MODEL_IN_PATH = re.compile(r"^/v[12]/models/([^/:]+)")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def requires_key(path: str) -> bool:
    """Whether `path` needs the API key (inference and metadata routes)."""
    return OPEN_PATHS.match(path) is None


def bearer_matches(header: str | None, key: str) -> bool:
    """Whether an Authorization header value is `Bearer <key>`, the scheme in any case
    (constant-time compare of the key)."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.lstrip(" ").encode(), key.encode())


class Guard:
    """ASGI middleware: body limit and API key; `on_reject(path, reason)` counts refusals."""

    def __init__(
        self,
        app: Any,
        max_body: int,
        api_key: str | None,
        on_reject: Callable[[str, str], None],
    ) -> None:
        self.app, self.max_body, self.api_key, self.on_reject = app, max_body, api_key, on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        key = declared = None
        for name, value in scope["headers"]:
            lower = name.lower()
            if lower == b"authorization":
                key = value.decode("latin-1")
            elif lower == b"content-length":
                declared = value.decode("latin-1")
        if self.api_key and requires_key(path) and not bearer_matches(key, self.api_key):
            self.on_reject(path, "unauthorized")
            await _error(
                send,
                401,
                "missing or wrong API key (Authorization: Bearer <key>)",
                {"www-authenticate": "Bearer"},
            )
            return
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            self.on_reject(path, "too_large")
            await _error(send, 413, f"request body over the {self.max_body}-byte limit")
            return
        body, too_large = await _read_body(receive, self.max_body)
        if too_large:
            self.on_reject(path, "too_large")
            await _error(send, 413, f"request body over the {self.max_body}-byte limit")
            return
        await self.app(scope, _replay(body, receive), send)


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The whole body, or (partial, True) as soon as it passes `limit` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False  # the client went away; the app sees an empty body
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # e.g. http.disconnect

    return replay


async def _error(
    send: Send, status: int, message: str, extra: dict[str, str] | None = None
) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def model_in_path(path: str) -> str | None:
    """The model name of a /v1 or /v2 model route, if any."""
    match = MODEL_IN_PATH.match(path)
    return match.group(1) if match else None
