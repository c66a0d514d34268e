"""`ladder serve`: load every artifact (any failure stops here, before a port is bound), then
run the REST server (uvicorn) and the gRPC server in one event loop around one
InferenceService. Ready once every model is warmed up. On SIGTERM/SIGINT: not ready at once,
queued and running requests finish, then both servers stop within the drain timeout."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ladder.errors import LadderError
from ladder.serve.access import configure_logging
from ladder.serve.app import create_app
from ladder.serve.batcher import BatchSettings
from ladder.serve.generation import GenerationSettings
from ladder.serve.grpc import grpc_server as make_grpc
from ladder.serve.limits import default_max_body
from ladder.serve.page import try_page
from ladder.serve.service import InferenceService, load_models


@dataclass
class ServeSettings:
    """Everything `ladder serve` takes."""

    artifacts: list[Path]
    host: str = "127.0.0.1"
    port: int = 8000
    grpc_port: int | None = 8001  # None: no gRPC server
    batching: BatchSettings = field(default_factory=BatchSettings)
    api_key_env: str | None = None
    max_body: int | None = None  # bytes; None: derived from the rows and models (limits.py)
    drain_timeout: float = 30.0
    threads: int = 1  # ONNX Runtime threads per batch
    log_level: str = "info"  # debug | info (the access log) | warning | error
    generation: GenerationSettings = field(default_factory=GenerationSettings)  # language models


def api_key(env: str | None) -> str | None:
    """The API key held by environment variable `env` (LadderError when unset or empty)."""
    if env is None:
        return None
    key = os.environ.get(env, "")
    if not key:
        raise LadderError(f"--api-key-env {env}: the environment variable is unset or empty")
    return key


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (only this machine can connect)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def exposure_warning(host: str, key: str | None) -> str | None:
    """The warning for serving on a non-loopback address without an API key, if so."""
    if key is not None or is_loopback(host):
        return None
    return (
        f"warning: serving on {host} without an API key: anyone who can reach this address "
        "can use the models (set one with --api-key-env VAR)"
    )


def max_body(settings: ServeSettings, service: InferenceService) -> int:
    """The body limit in bytes: the settings' own, else derived from the rows of one request
    and the served models' widest rows."""
    if settings.max_body is not None:
        return settings.max_body
    rows = [m.row_bytes() for m in service.models.values()]
    return default_max_body(rows, service.max_request_rows)


def build_service(settings: ServeSettings) -> InferenceService:
    """The service of every artifact, loaded (LadderError naming the file that fails)."""
    if not settings.artifacts:
        raise LadderError("ladder serve: give at least one artifact folder")
    models = load_models(
        list(settings.artifacts),
        settings.threads,
        settings.generation,
        settings.batching.max_queue,
    )
    return InferenceService(models, settings.batching)


def serve(settings: ServeSettings, say: Any = print) -> None:
    """Load, warm up and serve until SIGTERM/SIGINT; returns after a graceful drain."""
    configure_logging(settings.log_level)
    key = api_key(settings.api_key_env)
    service = build_service(settings)
    warning = exposure_warning(settings.host, key)
    if warning is not None:
        say(warning)
    try:  # uvloop where it is installed (uvicorn[standard]): less CPU per request
        import uvloop
    except ImportError:
        asyncio.run(_serve(service, settings, key, say))
    else:
        uvloop.run(_serve(service, settings, key, say))


async def _serve(
    service: InferenceService, settings: ServeSettings, key: str | None, say: Any
) -> None:
    import uvicorn

    body_limit = max_body(settings, service)
    app = create_app(service, body_limit, key, try_page())
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        # uvicorn's own start-up chatter stays quiet; its access log is off (ladder's is on)
        log_level="error" if settings.log_level == "error" else "warning",
        access_log=False,
        timeout_graceful_shutdown=int(settings.drain_timeout),
        lifespan="off",
        proxy_headers=False,
    )
    sock = _bind(settings.host, settings.port)  # before anything starts: a taken port is exit 2
    grpc_server = None
    if settings.grpc_port is not None:
        try:
            grpc_server = make_grpc(service, settings.host, settings.grpc_port, body_limit, key)
        except RuntimeError as exc:
            sock.close()
            raise LadderError(
                f"--grpc-port {settings.grpc_port}: cannot listen on {settings.host} ({exc})"
            ) from exc
        await grpc_server.start()
    rest = _RestServer(config, service, settings.drain_timeout)
    # serving from here: health answers (ready: 503) while the models warm up
    serving = asyncio.create_task(rest.server.serve(sockets=[sock]))
    try:
        await service.start()  # warm-up; ready from here
    except BaseException:
        rest.server.should_exit = True
        await serving
        raise
    names = ", ".join(service.models)
    grpc_note = f", gRPC on {settings.host}:{settings.grpc_port}" if grpc_server else ""
    mib = body_limit / 2**20
    limits = f"at most {service.max_request_rows} rows and {mib:.1f} MiB per request"
    say(f"serving {names} on http://{settings.host}:{settings.port}{grpc_note} ({limits})")
    try:
        await serving
    finally:
        await _drain(service, settings.drain_timeout)
        if grpc_server is not None:
            await grpc_server.stop(grace=settings.drain_timeout)


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (LadderError when it is taken or not allowed)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise LadderError(f"--port {port}: cannot listen on {host} ({exc.strerror})") from exc
    sock.set_inheritable(True)
    return sock


async def _drain(service: InferenceService, timeout: float) -> None:
    """Answer what is queued and running, within `timeout` seconds."""
    try:
        await asyncio.wait_for(service.drain(), timeout)
    except TimeoutError:
        print("warning: drain timeout; unanswered requests dropped", file=sys.stderr)


class _RestServer:
    """uvicorn's server with a graceful stop: on the first SIGTERM/SIGINT the service turns not
    ready at once (health answers 503, new requests 503) while queued and running requests
    are answered; then uvicorn stops. A second signal stops at once."""

    def __init__(self, config: Any, service: InferenceService, drain_timeout: float) -> None:
        import uvicorn

        loop = asyncio.get_running_loop()

        class Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: Any) -> None:
                if service.draining or not self.started:
                    super().handle_exit(sig, frame)
                else:
                    service.begin_drain()
                    loop.call_soon_threadsafe(self.start_drain)
                # a graceful stop is the expected end: do not re-raise the signal afterwards
                # (uvicorn would, and SIGTERM's default action exits non-zero)
                self._captured_signals.clear()

            def start_drain(self) -> None:
                self.drain_task = loop.create_task(self.drain_then_stop())  # keep a reference

            async def drain_then_stop(self) -> None:
                await _drain(service, drain_timeout)
                self.should_exit = True

        self.server = Server(config)
