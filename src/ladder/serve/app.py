"""The REST server: Open Inference Protocol v2 routes, a friendlier `/v1/models/{name}:predict`
for raw records, `/metrics`, the "try it" page at `/` and the OpenAPI schema at
`/openapi.json` (`/docs` leads to the page: no page loads anything from another host). Every
error is `{"error": "..."}` with its status code; every answer to an inference request, errors
included, is counted in the request metrics and every request is in the access log."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request  # noqa: TID253
from fastapi.exceptions import RequestValidationError  # noqa: TID253
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response  # noqa: TID253
from starlette.exceptions import HTTPException  # noqa: TID253

from ladder.serve.access import AccessLog
from ladder.serve.fastpath import (
    INFER_PATH,
    InferShortcut,
    error_parts,
    rest_infer,
    rest_predict,
    unless_disconnected,
)
from ladder.serve.generate_routes import GENERATE_PATH, add_generation_routes
from ladder.serve.rest_codec import HEADER_LENGTH
from ladder.serve.security import Guard, model_in_path
from ladder.serve.service import InferenceService, ServeError

PREDICT_PATH = re.compile(r"^/v1/models/[^/]+:predict$")

TENSOR_SCHEMA = {
    "type": "object",
    "required": ["name", "shape", "datatype"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string"},
        "parameters": {"type": "object"},
        "data": {"type": "array"},
    },
}
INFER_SCHEMA = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "inputs": {"type": "array", "items": TENSOR_SCHEMA},
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
            },
        },
    },
}
PREDICT_SCHEMA = {
    "type": "object",
    "required": ["instances"],
    "properties": {"instances": {"type": "array", "items": {}}},
}
ERRORS = {
    code: {"description": text, "content": {"application/json": {"schema": {"type": "object"}}}}
    for code, text in {
        400: "invalid input",
        401: "missing or wrong API key",
        404: "unknown model or version",
        413: "body too large, or more rows than one request may hold",
        503: "not ready or queue full",
        504: "timed out",
    }.items()
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }


def error_response(exc: ServeError) -> Response:
    """The JSON error answer of a ServeError (with Retry-After on 503)."""
    status, body, headers = error_parts(exc)
    return Response(body, status_code=status, headers=headers)


class ServeApp:
    """The ASGI application: the access log and request metrics around everything, request
    guards, then the inference shortcut, then the FastAPI routes."""

    def __init__(self, api: FastAPI, service: InferenceService, max_body: int, api_key: str | None):
        def model_of(path: str) -> str | None:
            name = model_in_path(path)
            return name if name in service.models else None

        def answered(method: str, path: str, status: int, seconds: float) -> None:
            counted = INFER_PATH, PREDICT_PATH, GENERATE_PATH
            if method == "POST" and any(p.match(path) for p in counted):
                service.count(model_in_path(path), "rest", status, seconds)

        def reject(path: str, reason: str) -> None:
            service.reject(model_in_path(path), reason)

        self.api = api
        guarded = Guard(InferShortcut(api, service), max_body, api_key, reject)
        self._asgi = AccessLog(guarded, model_of, answered)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._asgi(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI schema of every route."""
        return self.api.openapi()


def create_app(
    service: InferenceService, max_body: int, api_key: str | None = None, page: str = ""
) -> ServeApp:
    """The ASGI application serving `service`; `page` is the "try it" HTML."""
    app = FastAPI(
        title="ladder serve",
        description="Open Inference Protocol v2 (REST) for ladder artifacts.",
        version=service.server_metadata()["version"],
        responses=ERRORS,
        docs_url=None,  # Swagger UI and ReDoc load their scripts from a CDN: blank offline
        redoc_url=None,
    )

    @app.exception_handler(ServeError)
    async def serve_error(_: Request, exc: ServeError) -> Response:
        return error_response(exc)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def server_error(_: Request, exc: Exception) -> Response:  # the server logs it
        return error_response(ServeError("internal server error"))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": f"{where}: {first['msg']}"}, status_code=400)

    # ------------------------------------------------------------- health and metadata

    @app.get("/v2/health/live", tags=["health"])
    def live() -> JSONResponse:
        """200 while the server runs."""
        return JSONResponse({"live": service.live}, status_code=200 if service.live else 503)

    @app.get("/v2/health/ready", tags=["health"])
    def ready() -> JSONResponse:
        """200 once every model is loaded and warmed up; 503 before and while shutting down."""
        return JSONResponse({"ready": service.ready}, status_code=200 if service.ready else 503)

    @app.get("/v2", tags=["metadata"])
    def server_metadata() -> dict[str, Any]:
        """Server name, version and protocol extensions."""
        return service.server_metadata()

    @app.get("/v2/models/{name}", tags=["metadata"])
    def model_metadata(name: str) -> dict[str, Any]:
        """A model's inputs and outputs (names, datatypes, shapes)."""
        return service.model(name).metadata()

    @app.get("/v2/models/{name}/versions/{version}", tags=["metadata"])
    def model_version_metadata(name: str, version: str) -> dict[str, Any]:
        """A model version's inputs and outputs."""
        return service.model(name, version).metadata()

    @app.get("/v2/models/{name}/ready", tags=["health"])
    def model_ready(name: str) -> JSONResponse:
        """200 when the model is ready, 503 otherwise."""
        ok = service.model_ready(name)
        return JSONResponse({"name": name, "ready": ok}, status_code=200 if ok else 503)

    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["health"])
    def model_version_ready(name: str, version: str) -> JSONResponse:
        """200 when the model version is ready, 503 otherwise."""
        ok = service.model_ready(name, version)
        return JSONResponse({"name": name, "ready": ok}, status_code=200 if ok else 503)

    # ------------------------------------------------------------- inference

    async def infer(request: Request, name: str, version: str | None) -> Response:
        body = await request.body()
        work = rest_infer(service, name, version, body, request.headers.get(HEADER_LENGTH))
        content, headers = await unless_disconnected(request.receive, work)
        return Response(content, headers=headers)

    @app.post("/v2/models/{name}/infer", tags=["inference"], openapi_extra=_body(INFER_SCHEMA))
    async def model_infer(request: Request, name: str) -> Response:
        """Predict JSON or binary tensors (the binary tensor data extension)."""
        return await infer(request, name, None)

    @app.post(
        "/v2/models/{name}/versions/{version}/infer",
        tags=["inference"],
        openapi_extra=_body(INFER_SCHEMA),
    )
    async def model_version_infer(request: Request, name: str, version: str) -> Response:
        """Predict with a model version."""
        return await infer(request, name, version)

    @app.get("/v1/models", tags=["records"])
    def list_models() -> dict[str, Any]:
        """Every served model's input fields, task and labels (what the "try it" page builds
        on)."""
        return {"models": [m.schema() for m in service.models.values()]}

    @app.post("/v1/models/{name}:predict", tags=["records"], openapi_extra=_body(PREDICT_SCHEMA))
    async def predict(request: Request, name: str) -> dict[str, Any]:
        """Predict raw records: `{"instances": [...]}` of column objects (tabular), strings
        (text) or base64 PNG/JPEG images; answers labels and class probabilities, or a
        regression's values (with their interval)."""
        body = await request.body()
        return await unless_disconnected(request.receive, rest_predict(service, name, body))

    add_generation_routes(app, service)

    # ------------------------------------------------------------- monitoring and page

    @app.get("/metrics", tags=["monitoring"], include_in_schema=False)
    def metrics() -> Response:
        """Prometheus text format."""
        body, content_type = service.metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/", include_in_schema=False)
    def home() -> HTMLResponse:
        """The "try it" page."""
        default = "<h1>ladder serve</h1><p>See <a href='/openapi.json'>/openapi.json</a>.</p>"
        return HTMLResponse(page or default)

    @app.get("/docs", include_in_schema=False)
    def docs() -> RedirectResponse:
        """The "try it" page (the API itself is described at /openapi.json)."""
        return RedirectResponse("/", status_code=307)

    return ServeApp(app, service, max_body, api_key)
