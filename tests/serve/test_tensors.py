"""Open Inference Protocol tensors <-> numpy: raw and JSON round trips of every datatype, the
BYTES length prefixes, and the errors (each naming the tensor)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from ladder.serve.tensors import (
    DATATYPES,
    TensorError,
    datatype_of,
    from_json,
    from_raw,
    to_json_data,
    to_raw,
)

SAMPLES: dict[str, list] = {
    "BOOL": [True, False, True, True, False, False],
    "UINT8": [0, 1, 127, 128, 254, 255],
    "UINT16": [0, 1, 255, 256, 40000, 65535],
    "UINT32": [0, 1, 65536, 2**31, 2**32 - 2, 2**32 - 1],
    "UINT64": [0, 1, 2**32, 2**53 + 1, 2**63, 2**64 - 1],
    "INT8": [-128, -1, 0, 1, 100, 127],
    "INT16": [-(2**15), -300, 0, 300, 2**14, 2**15 - 1],
    "INT32": [-(2**31), -70000, 0, 70000, 2**30, 2**31 - 1],
    "INT64": [-(2**63), -(2**40), 0, 2**53 + 1, 2**62, 2**63 - 1],
    "FP16": [-2.5, -0.0, 0.0, 0.5, 1024.0, 65504.0],
    "FP32": [-1.5e38, -1.0, 0.0, 1e-7, 3.25, 1.5e38],
    "FP64": [-1e300, -1.0, 0.0, 5e-324, 0.1, 1e300],
    "BYTES": [b"", b"a", b"hello world", "caf\u00e9".encode(), b"x" * 300, b"z"],
}


def sample(datatype: str, shape: tuple[int, ...] = (2, 3)) -> np.ndarray:
    """Six values of `datatype` (the extremes included) as an array of `shape`."""
    if datatype == "BYTES":
        array = np.empty(6, dtype=object)
        array[:] = SAMPLES["BYTES"]
        return array.reshape(shape)
    return np.array(SAMPLES[datatype], dtype=DATATYPES[datatype]).reshape(shape)


def assert_same(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype
    assert got.tolist() == expected.tolist()


def test_every_datatype_is_listed():
    assert set(DATATYPES) == set(SAMPLES)
    assert DATATYPES["BYTES"] == np.dtype(object)


@pytest.mark.parametrize("datatype", sorted(DATATYPES))
def test_raw_round_trip(datatype):
    array = sample(datatype)
    assert datatype_of(array) == datatype
    raw = to_raw(array)
    if datatype != "BYTES":
        assert len(raw) == array.size * DATATYPES[datatype].itemsize
        assert raw == array.astype(DATATYPES[datatype].newbyteorder("<")).tobytes()
    assert_same(from_raw("t", datatype, [2, 3], raw), array)


@pytest.mark.parametrize(
    "datatype",
    sorted(DATATYPES),
)
def test_json_round_trip(datatype):
    array = sample(datatype)
    data = to_json_data(array)
    assert isinstance(data, list) and len(data) == 6  # flat, row-major
    if datatype == "BYTES":
        assert data[3] == "caf\u00e9"
    elif datatype == "BOOL":
        assert data == SAMPLES["BOOL"]
    elif datatype.startswith(("INT", "UINT")):
        assert data == SAMPLES[datatype]  # exact python ints, 64-bit extremes included
    assert_same(from_json("t", datatype, [2, 3], data), array)


def test_json_data_may_be_nested_and_scalars_have_an_empty_shape():
    nested = from_json("t", "INT32", [2, 2], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(nested, np.array([[1, 2], [3, 4]], dtype=np.int32))
    scalar = from_json("t", "FP64", [], [2.5])
    assert scalar.shape == () and float(scalar) == 2.5
    empty = from_json("t", "FP32", [0, 3], [])
    assert empty.shape == (0, 3) and empty.dtype == np.float32


def test_json_integral_floats_are_accepted_for_int_types():
    array = from_json("t", "INT64", [2], [3.0, -7.0])
    assert array.dtype == np.int64 and array.tolist() == [3, -7]


def test_json_non_finite_floats_become_null():
    assert to_json_data(np.array([1.0, np.nan, np.inf], dtype=np.float32)) == [1.0, None, None]


def test_bytes_are_length_prefixed_little_endian():
    array = np.empty(3, dtype=object)
    array[:] = [b"ab", b"", "\u00e9"]  # str elements are sent as UTF-8
    raw = to_raw(array)
    assert raw == b"\x02\x00\x00\x00ab" + b"\x00\x00\x00\x00" + b"\x02\x00\x00\x00\xc3\xa9"
    assert from_raw("t", "BYTES", [3], raw).tolist() == [b"ab", b"", "\u00e9".encode()]
    long = b"y" * 70000
    raw = struct.pack("<I", len(long)) + long
    assert raw[:4] == b"\x70\x11\x01\x00"
    assert from_raw("t", "BYTES", [1, 1], raw).tolist() == [[long]]


def test_numpy_strings_are_bytes():
    array = np.array(["ab", "c"])
    assert datatype_of(array) == "BYTES"
    assert to_raw(array) == b"\x02\x00\x00\x00ab\x01\x00\x00\x00c"
    assert to_json_data(np.array([b"ab", b"c"], dtype=object)) == ["ab", "c"]


def test_datatype_of_rejects_dtypes_without_a_protocol_type():
    with pytest.raises(TensorError, match="complex64"):
        datatype_of(np.zeros(2, dtype=np.complex64))


def error(call, *args) -> str:
    with pytest.raises(TensorError) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("call", [from_raw, from_json])
def test_unknown_datatype(call):
    message = error(call, "pixels", "FP128", [1], b"\x00" if call is from_raw else [1.0])
    assert "'pixels'" in message and "FP128" in message and "FP32" in message


@pytest.mark.parametrize("shape", [[-1], [1.5], "3", [True], None])
@pytest.mark.parametrize("call", [from_raw, from_json])
def test_bad_shapes(call, shape):
    message = error(call, "pixels", "FP32", shape, b"\x00" * 4 if call is from_raw else [1.0])
    assert "'pixels'" in message and "shape" in message


def test_wrong_element_count():
    message = error(from_json, "age", "FP32", [2, 2], [1.0, 2.0, 3.0])
    assert "'age'" in message and "needs 4 elements" in message and "3" in message
    message = error(from_raw, "age", "FP32", [2, 2], b"\x00" * 12)
    assert "'age'" in message and "16 bytes" in message and "12" in message
    message = error(from_raw, "words", "BYTES", [3], b"\x01\x00\x00\x00a" * 2)
    assert "'words'" in message and "needs 3 elements" in message and "2" in message


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"\x01\x00", "inside a length prefix"),
        (b"\x01\x00\x00\x00a\x05\x00", "inside a length prefix"),
        (b"\x05\x00\x00\x00abc", "past the end"),
        (b"\xff\xff\xff\xff", "past the end"),
    ],
)
def test_truncated_bytes(raw, fragment):
    message = error(from_raw, "words", "BYTES", [1], raw)
    assert "'words'" in message and fragment in message


@pytest.mark.parametrize(
    ("datatype", "value"),
    [
        ("UINT8", 256),
        ("UINT8", -1),
        ("INT8", -129),
        ("INT8", 128),
        ("UINT16", 65536),
        ("INT16", 2**15),
        ("UINT32", 2**32),
        ("INT32", -(2**31) - 1),
        ("UINT64", -1),
        ("UINT64", 2**64),
        ("INT64", 2**63),
        ("INT64", -(2**63) - 1),
        ("INT64", 1e19),
    ],
)
def test_integers_out_of_range(datatype, value):
    message = error(from_json, "count", datatype, [2], [0, value])
    assert "'count'" in message and datatype in message


@pytest.mark.parametrize(("datatype", "value"), [("FP16", 70000.0), ("FP32", 1e300)])
def test_floats_out_of_range(datatype, value):
    message = error(from_json, "x", datatype, [1], [value])
    assert "'x'" in message and f"does not fit {datatype}" in message


@pytest.mark.parametrize(
    "value",
    [1.5, float("nan"), float("inf"), "3", None, True],
)
@pytest.mark.parametrize("datatype", ["INT32", "UINT8", "INT64"])
def test_non_integers_for_int_types(datatype, value):
    message = error(from_json, "count", datatype, [2], [1, value])
    assert "'count'" in message and datatype in message


@pytest.mark.parametrize("value", ["1", False, {"a": 1}])
def test_non_numbers_for_float_types(value):
    message = error(from_json, "x", "FP32", [2], [1.0, value])
    assert "'x'" in message and "numbers" in message


@pytest.mark.parametrize("value", [1, 0, 1.0, "true", None])
def test_bool_given_numbers_or_strings(value):
    message = error(from_json, "flag", "BOOL", [2], [True, value])
    assert "'flag'" in message and "BOOL" in message and "true/false" in message


@pytest.mark.parametrize("value", [1, 2.0, True, {"s": "a"}])
def test_bytes_given_non_strings(value):
    message = error(from_json, "text", "BYTES", [2], ["ok", value])
    assert "'text'" in message and "strings" in message


def test_json_null_is_a_missing_value():
    floats = from_json("x", "FP64", [2, 2], [[1.0, None], [None, 2]])
    assert floats.dtype == np.float64 and np.isnan(floats).tolist() == [
        [False, True],
        [True, False],
    ]
    assert from_json("c", "BYTES", [2], ["a", None]).tolist() == [b"a", None]
    assert "INT64" in error(from_json, "n", "INT64", [2], [1, None])  # no missing integer


@pytest.mark.parametrize("data", ["abc", {"a": 1}, 3, None])
def test_json_data_must_be_an_array(data):
    message = error(from_json, "x", "FP32", [1], data)
    assert "'x'" in message and "JSON array" in message


@pytest.mark.parametrize(
    "shape",
    [
        [2**32, 2**32],  # 2**64 elements: beyond int64
        [2**70],
        [0, 2**70],
        [2**63, 0],
    ],
)
@pytest.mark.parametrize("datatype", ["FP32", "BYTES"])
@pytest.mark.parametrize("call", [from_raw, from_json])
def test_huge_shapes_are_a_tensor_error(call, datatype, shape):
    message = error(call, "x", datatype, shape, b"" if call is from_raw else [])
    assert "'x'" in message
