"""Open Inference Protocol tensors <-> numpy arrays: the datatypes, JSON `data`, and the raw
little-endian bytes of the binary tensor extension and of gRPC's raw contents.

BYTES elements are python `bytes` in an object array; on the wire each is a 4-byte
little-endian length followed by its bytes (raw), or a string (JSON). JSON `null` is a missing
value: NaN in a float tensor, None in a BYTES one (the model decides whether it may be missing).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

DATATYPES: dict[str, Any] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
NUMERIC = frozenset(DATATYPES) - {"BOOL", "BYTES"}
_NAMES = {dtype: name for name, dtype in DATATYPES.items()}
_LENGTH = struct.Struct("<I")
MAX_DIMENSION = 2**31 - 1


@dataclass(frozen=True)
class TensorSpec:
    """A tensor's name, protocol datatype and shape (-1: any size)."""

    name: str
    datatype: str
    shape: list[int]

    def to_json(self) -> dict[str, Any]:
        """The protocol's tensor metadata."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


class TensorError(ValueError):
    """A tensor that does not decode: bad datatype, shape or data (the message names it)."""


def datatype_of(array: np.ndarray) -> str:
    """The protocol datatype of a numpy array (object and string arrays are BYTES)."""
    dtype = array.dtype
    name = _NAMES.get(dtype.newbyteorder("<") if dtype.kind in "iuf" else dtype)
    if name is not None:
        return name
    if dtype.kind in "SU":
        return "BYTES"
    raise TensorError(f"no protocol datatype for numpy dtype {dtype}")


def element_count(name: str, shape: Any) -> int:
    """The number of elements of `shape`; TensorError unless it is a list of ints >= 0."""
    if not isinstance(shape, list | tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise TensorError(f"input {name!r}: shape must be a list of non-negative integers")
    if any(d > MAX_DIMENSION for d in shape):
        raise TensorError(f"input {name!r}: a dimension of shape {list(shape)} is too large")
    return math.prod(shape)


def _check_datatype(name: str, datatype: Any) -> np.dtype:
    if datatype not in DATATYPES:
        raise TensorError(
            f"input {name!r}: unknown datatype {datatype!r} (expected one of "
            f"{', '.join(DATATYPES)})"
        )
    return DATATYPES[datatype]


def from_raw(name: str, datatype: str, shape: list[int], raw: bytes) -> np.ndarray:
    """The array that `raw` bytes (row-major, little-endian) hold for a tensor of `shape`."""
    dtype = _check_datatype(name, datatype)
    count = element_count(name, shape)
    if datatype == "BYTES":
        items = _split_bytes(name, raw)
        if len(items) != count:
            raise TensorError(
                f"input {name!r}: shape {list(shape)} needs {count} elements, the raw data "
                f"holds {len(items)}"
            )
        array = np.empty(count, dtype=object)
        array[:] = items
        return array.reshape(shape)
    if len(raw) != count * dtype.itemsize:
        raise TensorError(
            f"input {name!r}: shape {list(shape)} of {datatype} needs "
            f"{count * dtype.itemsize} bytes, got {len(raw)}"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _split_bytes(name: str, raw: bytes) -> list[bytes]:
    items, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise TensorError(f"input {name!r}: BYTES data ends inside a length prefix")
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise TensorError(f"input {name!r}: a BYTES element runs past the end of the data")
        items.append(bytes(raw[offset : offset + length]))
        offset += length
    return items


def to_raw(array: np.ndarray) -> bytes:
    """The row-major little-endian bytes of `array` (BYTES: length-prefixed elements)."""
    if datatype_of(array) == "BYTES":
        parts = []
        for item in array.reshape(-1):
            data = item if isinstance(item, bytes) else str(item).encode("utf-8")
            parts.append(_LENGTH.pack(len(data)))
            parts.append(data)
        return b"".join(parts)
    dtype = DATATYPES[datatype_of(array)]
    return np.ascontiguousarray(array, dtype=dtype).tobytes()


def from_json(name: str, datatype: str, shape: list[int], data: Any) -> np.ndarray:
    """The array a JSON tensor's `data` (flat or nested, row-major) holds for `shape`."""
    dtype = _check_datatype(name, datatype)
    count = element_count(name, shape)
    if datatype == "BYTES":
        return _bytes_from_json(name, shape, count, data)
    if not isinstance(data, list):
        raise TensorError(f"input {name!r}: data must be a JSON array")
    try:
        array = np.array(data)
        if array.dtype.kind == "O" and dtype.kind == "f":  # a null among the numbers: missing
            data = _nulls_as_nan(data)
            array = np.array(data)
    except (ValueError, OverflowError):  # ragged nesting, integers beyond 64 bits
        raise TensorError(f"input {name!r}: data must be a regular array of numbers") from None
    if array.size != count:
        raise TensorError(
            f"input {name!r}: shape {list(shape)} needs {count} elements, data has {array.size}"
        )
    if count == 0:
        return np.empty(shape, dtype=dtype)
    kind = array.dtype.kind
    if datatype == "BOOL":
        if kind != "b":
            raise TensorError(f"input {name!r}: BOOL data must be true/false")
        return array.reshape(shape)
    if kind not in "iuf" or _has_bool(data):  # numpy would read true as 1
        raise TensorError(f"input {name!r}: {datatype} data must be numbers")
    if dtype.kind in "iu":
        if kind == "f" and not (array == np.round(array)).all():  # NaN and inf fail too
            raise TensorError(f"input {name!r}: {datatype} data must be integers")
        try:  # element by element from the JSON values: big integers stay exact
            return np.array(data, dtype=dtype).reshape(shape)
        except (OverflowError, ValueError):
            raise TensorError(f"input {name!r}: data does not fit {datatype}") from None
    try:
        with np.errstate(over="raise"):
            return array.astype(dtype).reshape(shape)
    except FloatingPointError as exc:
        raise TensorError(f"input {name!r}: data does not fit {datatype}") from exc


def _nulls_as_nan(data: list[Any]) -> list[Any]:
    """Nested JSON `data` with null (a missing value) as NaN."""
    return [_nulls_as_nan(v) if isinstance(v, list) else math.nan if v is None else v for v in data]


def _has_bool(data: list[Any]) -> bool:
    """Whether nested JSON `data` holds true/false among its numbers."""
    return any(_has_bool(v) if isinstance(v, list) else isinstance(v, bool) for v in data)


def _bytes_from_json(name: str, shape: list[int], count: int, data: Any) -> np.ndarray:
    flat = _flatten(name, data)
    if len(flat) != count:
        raise TensorError(
            f"input {name!r}: shape {list(shape)} needs {count} elements, data has {len(flat)}"
        )
    array = np.empty(count, dtype=object)
    for i, item in enumerate(flat):
        if item is not None and not isinstance(item, str):
            raise TensorError(f"input {name!r}: BYTES data must be strings, got {item!r}")
        array[i] = None if item is None else item.encode("utf-8")
    return array.reshape(shape)


def _flatten(name: str, data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise TensorError(f"input {name!r}: data must be a JSON array")
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def to_json_data(array: np.ndarray) -> list[Any]:
    """The flat row-major JSON data of `array` (BYTES as UTF-8 strings)."""
    flat = array.reshape(-1)
    if datatype_of(array) == "BYTES":
        return [
            item.decode("utf-8", errors="replace") if isinstance(item, bytes) else str(item)
            for item in flat
        ]
    if array.dtype.kind == "f" and not np.isfinite(flat).all():  # JSON has no NaN or inf
        return [v if np.isfinite(v) else None for v in flat.tolist()]
    return flat.tolist()
