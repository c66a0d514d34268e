"""Helpers of the serving tests: a free port, and `ladder.serve` running in-process."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """`ladder.serve` REST (and optionally gRPC) in a background thread with its own loop."""

    def __init__(self, artifacts: list[Path], grpc: bool = False, **options) -> None:
        from ladder.serve.batcher import BatchSettings
        from ladder.serve.service import InferenceService, load_models

        self.api_key = options.pop("api_key", None)
        max_body = options.pop("max_body", 1 << 20)  # None: the server's derived default
        self.page = options.pop("page", "")  # the "try it" page's HTML
        built = options.pop("models", [])  # served models made in memory, beside the artifacts
        models = [*load_models(artifacts), *built]
        self.service = InferenceService(models, BatchSettings(**options))
        if max_body is None:
            from ladder.serve.server import ServeSettings
            from ladder.serve.server import max_body as derived

            max_body = derived(ServeSettings(list(artifacts)), self.service)
        self.max_body = max_body
        self.port = free_port()
        self.grpc_port = free_port() if grpc else None
        self.url = f"http://127.0.0.1:{self.port}"
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        import uvicorn

        from ladder.serve.app import create_app

        app = create_app(self.service, self.max_body, self.api_key, self.page)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error")
        self.server = uvicorn.Server(config)
        self.loop = asyncio.get_running_loop()
        grpc_server = None
        if self.grpc_port is not None:
            from ladder.serve.grpc import grpc_server as make_grpc

            grpc_server = make_grpc(
                self.service, "127.0.0.1", self.grpc_port, self.max_body, self.api_key
            )
            await grpc_server.start()
        await self.service.start()
        task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)
        self._started.set()
        await task
        await self.service.drain()
        if grpc_server is not None:
            await grpc_server.stop(grace=1)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        if not self._started.wait(60):
            raise RuntimeError("the test server did not start")
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self._thread.join(30)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> int:
    """Restart this process's peak resident memory (VmHWM) from now; its current RSS, bytes."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    return _status_kib("VmRSS") * 1024


def peak_rss() -> int:
    """This process's peak resident memory since `reset_peak_rss`, bytes."""
    return _status_kib("VmHWM") * 1024


def png(width: int, height: int) -> bytes:
    """A valid all-black greyscale PNG of any size, built row by row (a 9000x9000 one is
    about 80 KB and never held in memory whole)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    packer = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0, then black pixels
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
