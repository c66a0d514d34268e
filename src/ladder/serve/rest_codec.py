"""The REST inference request and response bodies of the Open Inference Protocol, JSON tensors
and the binary tensor data extension (a JSON header of `Inference-Header-Content-Length` bytes
followed by the tensors' raw bytes, in order, each `binary_data_size` long)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ladder.serve.limits import request_rows
from ladder.serve.tensors import TensorError, datatype_of, from_json, from_raw, to_json_data, to_raw

HEADER_LENGTH = "Inference-Header-Content-Length"
JSON_TYPE, BINARY_TYPE = "application/json", "application/octet-stream"


class RequestError(ValueError):
    """A malformed request body (the message says what is wrong)."""


@dataclass
class InferRequest:
    """A decoded inference request."""

    inputs: dict[str, np.ndarray]
    outputs: list[str] | None  # None: every output
    binary_outputs: set[str]
    id: str | None


def parse_infer_request(
    body: bytes,
    header_length: str | None,
    check_rows: Callable[[str, int | None], None] | None = None,
) -> InferRequest:
    """Decode a REST inference body; RequestError/TensorError naming what is wrong.

    `check_rows(where, rows)` sees each input's declared rows before any tensor data is
    decoded (and may raise to refuse the request)."""
    binary = b""
    if header_length is not None:
        try:
            size = int(header_length)
        except ValueError:
            raise RequestError(
                f"{HEADER_LENGTH}: expected an integer, got {header_length!r}"
            ) from None
        if not 0 <= size <= len(body):
            raise RequestError(f"{HEADER_LENGTH}: {size} is outside the body's {len(body)} bytes")
        body, binary = body[:size], body[size:]
    request = json_object(body)
    inputs_json = request.get("inputs")
    if not isinstance(inputs_json, list) or not inputs_json:
        raise RequestError("inputs: expected a non-empty list of tensors")
    if check_rows is not None:
        for i, tensor in enumerate(inputs_json):
            if isinstance(tensor, dict):
                where = f"input {tensor['name']!r}" if "name" in tensor else f"inputs[{i}]"
                check_rows(where, request_rows(tensor.get("shape")))
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    for i, tensor in enumerate(inputs_json):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise RequestError(f"inputs[{i}]: expected an object with a string 'name'")
        name = tensor["name"]
        if name in inputs:
            raise RequestError(f"inputs[{i}]: input {name!r} is given twice")
        datatype, shape = tensor.get("datatype"), tensor.get("shape")
        size = _parameters(tensor, f"inputs[{i}]").get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise RequestError(f"input {name!r}: binary_data_size must be an integer >= 0")
            if "data" in tensor:
                raise RequestError(f"input {name!r}: has both data and binary_data_size")
            if offset + size > len(binary):
                raise RequestError(
                    f"input {name!r}: binary_data_size {size} runs past the binary data"
                )
            inputs[name] = from_raw(name, datatype, shape, binary[offset : offset + size])
            offset += size
        else:
            if "data" not in tensor:
                raise RequestError(f"input {name!r}: no data (nor binary_data_size)")
            inputs[name] = from_json(name, datatype, shape, tensor["data"])
    if offset != len(binary):
        raise RequestError(f"the body has {len(binary) - offset} binary bytes that no input claims")
    return _with_outputs(request, inputs)


def json_object(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body; RequestError when it is not one."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except RequestError:
        raise  # NaN or Infinity: its own message
    except ValueError as exc:  # bad syntax or encoding, an integer of too many digits
        raise RequestError(f"the request body is not valid JSON ({exc})") from None
    except RecursionError:
        raise RequestError("the request body is not valid JSON (nested too deeply)") from None
    if not isinstance(value, dict):
        raise RequestError("the request body must be a JSON object")
    return value


def _refuse_constant(name: str) -> None:
    """JSON has no NaN nor Infinity (Python's reader takes them); null is a missing value."""
    raise RequestError(
        f"the request body is not valid JSON ({name} is not a JSON value; send null for a "
        "missing value)"
    )


def _with_outputs(request: dict[str, Any], inputs: dict[str, np.ndarray]) -> InferRequest:
    everything_binary = bool(_parameters(request, "request").get("binary_data_output", False))
    outputs_json = request.get("outputs")
    outputs: list[str] | None = None
    binary: set[str] = set()
    if outputs_json is not None:
        if not isinstance(outputs_json, list):
            raise RequestError("outputs: expected a list of {name: ...}")
        outputs = []
        for i, out in enumerate(outputs_json):
            if not isinstance(out, dict) or not isinstance(out.get("name"), str):
                raise RequestError(f"outputs[{i}]: expected an object with a string 'name'")
            outputs.append(out["name"])
            flag = _parameters(out, f"outputs[{i}]").get("binary_data", everything_binary)
            if flag:
                binary.add(out["name"])
    elif everything_binary:
        binary = {"*"}
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise RequestError("id: expected a string")
    return InferRequest(inputs, outputs, binary, request_id)


def _parameters(obj: dict[str, Any], where: str) -> dict[str, Any]:
    params = obj.get("parameters") or {}
    if not isinstance(params, dict):
        raise RequestError(f"{where}.parameters: expected an object")
    return params


def infer_response(
    model_name: str,
    version: str,
    outputs: list[tuple[str, np.ndarray]],
    request: InferRequest,
) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of the answer; outputs asked for in binary follow the JSON header."""
    tensors, parts = [], []
    for name, array in outputs:
        entry: dict[str, Any] = {
            "name": name,
            "datatype": datatype_of(array),
            "shape": list(array.shape),
        }
        if name in request.binary_outputs or "*" in request.binary_outputs:
            raw = to_raw(array)
            entry["parameters"] = {"binary_data_size": len(raw)}
            parts.append(raw)
        else:
            entry["data"] = to_json_data(array)
        tensors.append(entry)
    answer: dict[str, Any] = {"model_name": model_name, "model_version": version}
    if request.id is not None:
        answer["id"] = request.id
    answer["outputs"] = tensors
    header = json.dumps(answer, separators=(",", ":")).encode("utf-8")
    if not parts:
        return header, {"content-type": JSON_TYPE}
    return header + b"".join(parts), {
        "content-type": BINARY_TYPE,
        HEADER_LENGTH: str(len(header)),
    }


__all__ = ["RequestError", "TensorError", "infer_response", "json_object", "parse_infer_request"]
