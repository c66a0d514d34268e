"""The Open Inference Protocol over gRPC (service `inference.GRPCInferenceService`), on grpc.aio
in the same event loop as the REST app, answering through the shared InferenceService.

Inputs come as typed `contents` or as `raw_input_contents` (what tritonclient sends); the
answer uses the same form. ServeError statuses map to gRPC status codes. Every call is in the
access log; every ModelInfer answer is counted in the request metrics (by its HTTP status).
A call cancelled by its client, or past its deadline, leaves the model's queue unrun.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import grpc  # noqa: TID253
import numpy as np

from ladder.serve import tensors
from ladder.serve.access import log_access
from ladder.serve.limits import request_rows
from ladder.serve.proto import SERVICE, messages
from ladder.serve.security import bearer_matches
from ladder.serve.service import (
    BadRequest,
    ClientGone,
    InferenceService,
    InferOutput,
    ServeError,
    Unauthorized,
)

logger = logging.getLogger(__name__)

STATUS_CODES = {
    499: grpc.StatusCode.CANCELLED,
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
OPEN_METHODS = frozenset({"ServerLive", "ServerReady"})  # answered without the API key
COUNTED_METHODS = frozenset({"ModelInfer"})  # in the request metrics, as REST's /infer

# The InferTensorContents field that carries each datatype (FP16 travels only as raw bytes).
CONTENTS_FIELDS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}

Handler = Callable[[Any, Any], Awaitable[Any]]


def grpc_server(
    service: InferenceService,
    host: str,
    port: int,
    max_message_bytes: int,
    api_key: str | None,
) -> grpc.aio.Server:
    """A grpc.aio server (not started) bound to host:port that answers the protocol.

    Create it inside the running event loop. With `api_key`, every call but ServerLive and
    ServerReady needs the metadata `authorization: Bearer <api_key>`.
    """
    msgs = messages()
    rpcs = RPCs(service)
    methods: dict[str, tuple[Handler, Any, Any]] = {
        "ServerLive": (rpcs.server_live, msgs.ServerLiveRequest, msgs.ServerLiveResponse),
        "ServerReady": (rpcs.server_ready, msgs.ServerReadyRequest, msgs.ServerReadyResponse),
        "ModelReady": (rpcs.model_ready, msgs.ModelReadyRequest, msgs.ModelReadyResponse),
        "ServerMetadata": (
            rpcs.server_metadata,
            msgs.ServerMetadataRequest,
            msgs.ServerMetadataResponse,
        ),
        "ModelMetadata": (
            rpcs.model_metadata,
            msgs.ModelMetadataRequest,
            msgs.ModelMetadataResponse,
        ),
        "ModelInfer": (rpcs.model_infer, msgs.ModelInferRequest, msgs.ModelInferResponse),
    }
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            _guarded(name, handler, None if name in OPEN_METHODS else api_key, service),
            request_deserializer=request.FromString,
            response_serializer=response.SerializeToString,
        )
        for name, (handler, request, response) in methods.items()
    }
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),  # a port already taken is an error, not shared
        ]
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port(_address(host, port))
    return server


def _address(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):  # a bare IPv6 address
        host = f"[{host}]"
    return f"{host}:{port}"


def _guarded(
    name: str, handler: Handler, api_key: str | None, service: InferenceService
) -> Callable[..., Awaitable[Any]]:
    """`handler` behind the API key check, with errors turned into gRPC status codes (and,
    for a full queue, the standard `grpc-retry-pushback-ms` trailer), logged and counted."""
    path = f"/{SERVICE}/{name}"

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        model = getattr(request, "model_name", "") or getattr(request, "name", "")
        status, code, details = 200, grpc.StatusCode.OK, ""
        trailers: tuple[tuple[str, str], ...] = ()
        try:
            if api_key is not None and not authorized(context.invocation_metadata(), api_key):
                service.reject(model, "unauthorized")
                raise Unauthorized(
                    "missing or wrong API key: send the metadata 'authorization: Bearer <key>'"
                )
            return await handler(request, context)
        except ServeError as exc:
            status, details = exc.status, exc.message
            code = STATUS_CODES.get(exc.status, grpc.StatusCode.INTERNAL)
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                trailers = (("grpc-retry-pushback-ms", str(int(retry_after * 1000))),)
        except asyncio.CancelledError:  # the client cancelled, or its deadline passed
            status, code = ClientGone.status, grpc.StatusCode.CANCELLED
            raise
        except Exception:
            logger.exception("gRPC %s failed", name)
            status, code, details = 500, grpc.StatusCode.INTERNAL, f"internal error in {name}"
        finally:
            seconds = time.perf_counter() - started
            if name in COUNTED_METHODS:
                service.count(model, "grpc", status, seconds)
            served = model if model in service.models else None
            log_access("grpc", name, path, code.name, seconds, served, context.peer())
        await context.abort(code, details, trailers)

    return call


def authorized(metadata: Any, api_key: str) -> bool:
    """Whether call metadata carries `authorization: Bearer <api_key>`."""
    return any(
        key.lower() == "authorization" and isinstance(value, str) and bearer_matches(value, api_key)
        for key, value in metadata or ()
    )


class RPCs:
    """The protocol's calls, answered from an InferenceService."""

    def __init__(self, service: InferenceService) -> None:
        self.service = service
        self.msgs = messages()

    async def server_live(self, request: Any, context: Any = None) -> Any:
        """ServerLive: whether the server answers."""
        return self.msgs.ServerLiveResponse(live=bool(self.service.live))

    async def server_ready(self, request: Any, context: Any = None) -> Any:
        """ServerReady: whether every model is ready."""
        return self.msgs.ServerReadyResponse(ready=bool(self.service.ready))

    async def model_ready(self, request: Any, context: Any = None) -> Any:
        """ModelReady: whether one model is ready (NOT_FOUND for an unknown model)."""
        ready = self.service.model_ready(request.name, request.version or None)
        return self.msgs.ModelReadyResponse(ready=bool(ready))

    async def server_metadata(self, request: Any, context: Any = None) -> Any:
        """ServerMetadata: the server's name, version and extensions."""
        meta = self.service.server_metadata()
        return self.msgs.ServerMetadataResponse(
            name=meta["name"], version=meta["version"], extensions=meta.get("extensions", [])
        )

    async def model_metadata(self, request: Any, context: Any = None) -> Any:
        """ModelMetadata: one model's versions, platform and tensors."""
        meta = self.service.model(request.name, request.version or None).metadata()
        tensor = self.msgs.ModelMetadataResponse.TensorMetadata
        return self.msgs.ModelMetadataResponse(
            name=meta["name"],
            versions=meta.get("versions", []),
            platform=meta.get("platform", ""),
            inputs=[tensor(**_tensor_meta(t)) for t in meta.get("inputs", [])],
            outputs=[tensor(**_tensor_meta(t)) for t in meta.get("outputs", [])],
        )

    async def model_infer(self, request: Any, context: Any = None) -> Any:
        """ModelInfer: run a model; raw answers to raw requests, typed ones otherwise. A
        client's deadline shorter than the server's timeout bounds the wait in the queue."""
        version = request.model_version or None
        self.service.model(request.model_name, version)
        inputs = decode_inputs(request, partial(self.service.check_rows, request.model_name))
        wanted = [output.name for output in request.outputs] or None
        remaining = context.time_remaining() if context is not None else None
        outputs = await self.service.infer(
            request.model_name, version, inputs, wanted, "grpc", remaining
        )
        model = self.service.model(request.model_name, version)
        return encode_response(
            self.msgs.ModelInferResponse(
                model_name=model.name, model_version=model.version, id=request.id
            ),
            select_outputs(outputs, wanted),
            raw=len(request.raw_input_contents) > 0,
        )


def _tensor_meta(meta: dict[str, Any]) -> dict[str, Any]:
    return {"name": meta["name"], "datatype": meta["datatype"], "shape": list(meta["shape"])}


# ---------------------------------------------------------------------- tensors


def decode_inputs(
    request: Any, check_rows: Callable[[str, int | None], None] | None = None
) -> dict[str, np.ndarray]:
    """The request's input arrays by name, from raw_input_contents or typed contents;
    `check_rows(where, rows)` sees each input's declared rows before anything is decoded."""
    if check_rows is not None:
        for tensor in request.inputs:
            check_rows(f"input {tensor.name!r}", request_rows(list(tensor.shape)))
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise BadRequest(
            f"raw_input_contents: {len(raw)} entries for {len(request.inputs)} inputs "
            "(expected one per input, in the order of inputs)"
        )
    arrays: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(request.inputs):
        if tensor.name in arrays:
            raise BadRequest(f"input {tensor.name!r}: given twice")
        try:
            if raw:
                if tensor.contents.ByteSize():
                    raise BadRequest(
                        f"input {tensor.name!r}: typed contents in a request that uses "
                        "raw_input_contents (use one or the other)"
                    )
                array = tensors.from_raw(tensor.name, tensor.datatype, list(tensor.shape), raw[i])
            else:
                array = from_contents(tensor)
        except tensors.TensorError as exc:
            raise BadRequest(str(exc)) from exc
        arrays[tensor.name] = array
    return arrays


def from_contents(tensor: Any) -> np.ndarray:
    """The array an InferInputTensor's typed `contents` holds (TensorError/BadRequest if bad)."""
    name, datatype, shape = tensor.name, tensor.datatype, list(tensor.shape)
    if datatype not in tensors.DATATYPES:
        raise BadRequest(
            f"input {name!r}: unknown datatype {datatype!r} "
            f"(expected one of {', '.join(tensors.DATATYPES)})"
        )
    field = CONTENTS_FIELDS.get(datatype)
    if field is None:
        raise BadRequest(f"input {name!r}: {datatype} data must be sent in raw_input_contents")
    count = tensors.element_count(name, shape)
    others = [f.name for f, _ in tensor.contents.ListFields() if f.name != field]
    if others:
        raise BadRequest(f"input {name!r}: a {datatype} tensor takes {field}, got {others[0]}")
    values = getattr(tensor.contents, field)
    if count and not values:
        raise BadRequest(
            f"input {name!r}: no data (expected contents.{field} or raw_input_contents; "
            "shared memory is not supported)"
        )
    if len(values) != count:
        raise BadRequest(
            f"input {name!r}: shape {shape} needs {count} elements, contents.{field} has "
            f"{len(values)}"
        )
    dtype = tensors.DATATYPES[datatype]
    if datatype == "BYTES":
        array = np.empty(count, dtype=object)
        array[:] = list(values)
    elif dtype.kind in "iu":
        wide = np.asarray(values, dtype=np.uint64 if dtype.kind == "u" else np.int64)
        info = np.iinfo(dtype)
        if wide.size and (wide.min() < info.min or wide.max() > info.max):
            raise BadRequest(f"input {name!r}: values do not fit {datatype}")
        array = wide.astype(dtype)
    else:
        array = np.asarray(values, dtype=dtype)
    return array.reshape(shape)


def select_outputs(outputs: list[InferOutput], wanted: list[str] | None) -> list[InferOutput]:
    """The outputs in the requested order (all, as given, when none were named)."""
    if wanted is None:
        return outputs
    by_name = {output.name: output for output in outputs}
    missing = [name for name in wanted if name not in by_name]
    if missing:
        raise BadRequest(
            f"outputs: unknown output {missing[0]!r} (expected one of {', '.join(by_name)})"
        )
    return [by_name[name] for name in wanted]


def encode_response(response: Any, outputs: list[InferOutput], raw: bool) -> Any:
    """`response` with the output tensors, as raw_output_contents or typed contents.

    FP16 has no typed form, so a response holding an FP16 output is raw throughout.
    """
    datatypes = [tensors.datatype_of(output.array) for output in outputs]
    raw = raw or "FP16" in datatypes
    for output, datatype in zip(outputs, datatypes, strict=True):
        tensor = response.outputs.add(
            name=output.name, datatype=datatype, shape=list(output.array.shape)
        )
        if raw:
            response.raw_output_contents.append(tensors.to_raw(output.array))
            continue
        flat = output.array.reshape(-1)
        if datatype == "BYTES":
            values: list[Any] = [
                item if isinstance(item, bytes) else str(item).encode("utf-8") for item in flat
            ]
        else:
            values = flat.tolist()
        getattr(tensor.contents, CONTENTS_FIELDS[datatype]).extend(values)
    return response
