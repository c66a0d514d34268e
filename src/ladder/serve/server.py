"""`ladder serve`: load every artifact (any failure stops here, before a port is bound), then
run the REST server (uvicorn) and the gRPC server in one event loop around one
InferenceService. Ready once every model is warmed up. On SIGTERM/SIGINT: not ready at once,
queued and running requests finish, then both servers stop within the drain timeout."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ladder.errors import LadderError
from ladder.serve.batcher import BatchSettings
from ladder.serve.security import DEFAULT_MAX_BODY
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
    max_body: int = DEFAULT_MAX_BODY
    drain_timeout: float = 30.0
    threads: int = 1  # ONNX Runtime threads per batch


def api_key(env: str | None) -> str | None:
    """The API key held by environment variable `env` (LadderError when unset or empty)."""
    if env is None:
        return None
    key = os.environ.get(env, "")
    if not key:
        raise LadderError(f"--api-key-env {env}: the environment variable is unset or empty")
    return key


def build_service(settings: ServeSettings) -> InferenceService:
    """The service of every artifact, loaded (LadderError naming the file that fails)."""
    if not settings.artifacts:
        raise LadderError("ladder serve: give at least one artifact folder")
    models = load_models(list(settings.artifacts), settings.threads)
    return InferenceService(models, settings.batching)


def serve(settings: ServeSettings, say: Any = print) -> None:
    """Load, warm up and serve until SIGTERM/SIGINT; returns after a graceful drain."""
    key = api_key(settings.api_key_env)
    service = build_service(settings)
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

    from ladder.serve.app import create_app
    from ladder.serve.page import try_page

    app = create_app(service, settings.max_body, key, try_page())
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=int(settings.drain_timeout),
        lifespan="off",
        proxy_headers=False,
    )
    rest = _RestServer(config, service)
    grpc_server = None
    if settings.grpc_port is not None:
        from ladder.serve.grpc import grpc_server as make_grpc

        grpc_server = make_grpc(service, settings.host, settings.grpc_port, settings.max_body, key)
        await grpc_server.start()
    await service.start()  # warm-up; ready from here
    names = ", ".join(service.models)
    grpc_note = f", gRPC on {settings.host}:{settings.grpc_port}" if grpc_server else ""
    say(f"serving {names} on http://{settings.host}:{settings.port}{grpc_note}")
    try:
        await rest.serve()
    finally:
        try:
            await asyncio.wait_for(service.drain(), settings.drain_timeout)
        except TimeoutError:
            print("warning: drain timeout; unanswered requests dropped", file=sys.stderr)
        if grpc_server is not None:
            await grpc_server.stop(grace=settings.drain_timeout)


class _RestServer:
    """uvicorn's server, turning the service not ready the moment a stop signal arrives."""

    def __init__(self, config: Any, service: InferenceService) -> None:
        import uvicorn

        service_ref = service

        class Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: Any) -> None:
                service_ref.begin_drain()
                super().handle_exit(sig, frame)
                # a graceful stop is the expected end: do not re-raise the signal afterwards
                # (uvicorn would, and SIGTERM's default action exits non-zero)
                self._captured_signals.clear()

        self.server = Server(config)

    async def serve(self) -> None:
        """Serve until a stop signal (uvicorn waits for in-flight requests)."""
        await self.server.serve()
        if not self.server.started:
            raise LadderError(
                f"could not start the REST server on {self.server.config.host}:"
                f"{self.server.config.port} (is the port in use?)"
            )
