"""The access log: one line per answered request, REST and gRPC alike, through the
`ladder.serve.access` logger at INFO: protocol, method, path, status, latency in ms, the
model where known and the client's address; never a body, a query string or a header.

    rest POST /v2/models/logreg/infer 200 1.8ms model=logreg client=127.0.0.1
    grpc ModelInfer /inference.GRPCInferenceService/ModelInfer OK 1.2ms model=logreg client=...
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

ACCESS = logging.getLogger("ladder.serve.access")
LEVELS = ("debug", "info", "warning", "error")
MAX_PATH = 200  # characters of a path in a line

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def log_access(
    protocol: str,
    method: str,
    path: str,
    status: int | str,
    seconds: float,
    model: str | None = None,
    client: str | None = None,
) -> None:
    """Log one answered request (at INFO, when enabled)."""
    if ACCESS.isEnabledFor(logging.INFO):
        ACCESS.info(
            "%s %s %s %s %.1fms model=%s client=%s",
            protocol,
            method,
            path[:MAX_PATH],
            status,
            seconds * 1000,
            model or "-",
            client or "-",
        )


def configure_logging(level: str) -> None:
    """Send ladder's log records (the access log included) at `level` and above to stderr,
    one timestamped line each."""
    if level not in LEVELS:
        raise ValueError(f"log level {level!r}: expected one of {', '.join(LEVELS)}")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("ladder")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False  # once, whatever the root logger does


class AccessLog:
    """ASGI middleware around the whole app: times each HTTP request, logs it, and hands
    (method, path, status, seconds) to `on_answer` (the request metrics). A request that
    fails without an answer counts as 500; one that ends with no answer at all (its client
    went away) as 499."""

    def __init__(
        self,
        app: Any,
        model_of: Callable[[str], str | None],
        on_answer: Callable[[str, str, int, float], None],
    ) -> None:
        self.app, self.model_of, self.on_answer = app, model_of, on_answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            status = status or 500
            raise
        finally:
            seconds = time.perf_counter() - started
            status = status or 499
            method, path = scope.get("method", ""), scope.get("path", "")
            self.on_answer(method, path, status, seconds)
            if ACCESS.isEnabledFor(logging.INFO):
                client = scope.get("client")
                shown = _one_line(scope.get("raw_path") or path.encode())
                model, host = self.model_of(path), client[0] if client else None
                log_access("rest", method, shown, status, seconds, model, host)


def _one_line(path: bytes) -> str:
    """A path as printable ASCII on one line, whatever a client put in it."""
    text = path.decode("ascii", "backslashreplace")
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
