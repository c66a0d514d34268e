"""The generate extension's REST routes for language models (Triton's names):
`POST /v2/models/{name}/generate` answers one JSON object, `{"model_name", "model_version",
"text_output"}`; `.../generate_stream` answers Server-Sent Events, one `data: {...}` event per
chunk of text, and closes the stream at the end (an error after the start is a last event
`data: {"error": "..."}`). Errors before the first chunk are the usual JSON errors."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from fastapi import FastAPI, Request  # noqa: TID253
from fastapi.responses import JSONResponse, Response  # noqa: TID253

from ladder.serve.fastpath import unless_disconnected
from ladder.serve.rest_codec import RequestError, json_object
from ladder.serve.service import BadRequest, InferenceService

GENERATE_PATH = re.compile(r"^/v2/models/[^/]+(?:/versions/[^/]+)?/generate(?:_stream)?$")
GENERATE_SCHEMA = {
    "type": "object",
    "required": ["text_input"],
    "properties": {
        "text_input": {"type": "string"},
        "parameters": {
            "type": "object",
            "properties": {
                "max_tokens": {"type": "integer", "minimum": 1},
                "temperature": {"type": "number", "minimum": 0},
                "top_k": {"type": "integer", "minimum": 1},
                "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "seed": {"type": "integer", "minimum": 0},
                "stop": {"anyOf": [{"type": "string"}, {"type": "array"}]},
                "truncate": {"type": "boolean"},
            },
        },
    },
}
OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": GENERATE_SCHEMA}},
    }
}


class EventStream(Response):
    """A Server-Sent Events answer from a generation's text feed: one event per chunk. A
    client that disconnects cancels the generation at once (its slot frees), whether or not
    a chunk is being sent."""

    media_type = "text/event-stream"

    def __init__(self, feed: Any, head: dict[str, Any], inflight: Any) -> None:
        super().__init__(headers={"cache-control": "no-cache", "x-accel-buffering": "no"})
        # a stream has no length: chunked transfer
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.feed, self.head, self.inflight = feed, head, inflight  # counted while it streams

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.inflight.__enter__()
        watcher = asyncio.ensure_future(_disconnect(receive))
        watcher.add_done_callback(lambda _: self.feed.cancel())
        try:
            start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
            await send(start)
            async for chunk in self.feed:
                await send(_event({**self.head, "text_output": chunk}, more=True))
            last = {"error": "the model failed while generating"} if self.feed.failed else None
            await send(_event(last, more=False))
        except OSError:  # the client went away while a chunk was sent
            pass
        finally:
            watcher.cancel()
            self.feed.cancel()  # a no-op once it has finished
            self.inflight.__exit__(None, None, None)


def _event(data: dict[str, Any] | None, more: bool) -> dict[str, Any]:
    body = b"" if data is None else f"data: {json.dumps(data)}\n\n".encode()
    return {"type": "http.response.body", "body": body, "more_body": more}


async def _disconnect(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def add_generation_routes(app: FastAPI, service: InferenceService) -> None:
    """The generate and generate_stream routes (and their /versions/ forms) on `app`."""

    async def checked(request: Request, name: str, version: str | None) -> tuple[Any, Any]:
        model = service.generator(name, version)
        try:
            body = json_object(await request.body())
        except RequestError as exc:
            raise BadRequest(str(exc)) from exc
        return model, service.parse_generation(model, body)

    async def generate(request: Request, name: str, version: str | None) -> JSONResponse:
        with service.track(name):
            model, checked_request = await checked(request, name, version)
            text = await unless_disconnected(
                request.receive, service.generate(model, checked_request)
            )
        head = {"model_name": model.name, "model_version": model.version}
        return JSONResponse({**head, "text_output": text})

    async def stream(request: Request, name: str, version: str | None) -> Response:
        model, checked_request = await checked(request, name, version)
        feed = service.open_generation(model, checked_request)
        head = {"model_name": model.name, "model_version": model.version}
        return EventStream(feed, head, service.track(name))

    @app.post("/v2/models/{name}/generate", tags=["generation"], openapi_extra=OPENAPI)
    async def model_generate(request: Request, name: str) -> JSONResponse:
        """Continue `text_input`: the whole `text_output` in one answer."""
        return await generate(request, name, None)

    @app.post(
        "/v2/models/{name}/versions/{version}/generate",
        tags=["generation"],
        openapi_extra=OPENAPI,
    )
    async def model_version_generate(request: Request, name: str, version: str) -> JSONResponse:
        """Continue `text_input` with a model version."""
        return await generate(request, name, version)

    @app.post("/v2/models/{name}/generate_stream", tags=["generation"], openapi_extra=OPENAPI)
    async def model_generate_stream(request: Request, name: str) -> Response:
        """Continue `text_input`, streaming `text_output` chunks as Server-Sent Events."""
        return await stream(request, name, None)

    @app.post(
        "/v2/models/{name}/versions/{version}/generate_stream",
        tags=["generation"],
        openapi_extra=OPENAPI,
    )
    async def model_version_generate_stream(request: Request, name: str, version: str) -> Response:
        """Stream with a model version."""
        return await stream(request, name, version)
