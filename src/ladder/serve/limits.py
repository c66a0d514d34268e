"""What one request may hold, so that no single request can take the machine: rows
(`--max-request-rows`, checked from the declared shape or instance count before any data is
decoded), body bytes (`--max-body-mb`, by default derived from the rows and the served models)
and, for images sent as files to /v1, pixels (checked from the file's header before decoding)."""

from __future__ import annotations

from typing import Any

# The widest encoding of one tensor element is JSON: a float64 takes at most 24 characters
# ("-2.2250738585072014e-308") and its ", " separator 2 more; binary and gRPC take 8 or fewer.
NUMBER_BYTES = 26
STRING_BYTES = 16 * 1024  # one BYTES element (a text, a category), JSON-escaped
BODY_HEADROOM = 2  # nesting brackets, whitespace, the request's envelope
MIN_BODY = 8 * 1024 * 1024  # bytes; also room for one photo as a base64 file on /v1
IMAGE_AREA_FACTOR = 64  # an image file may have this many times the model's pixels...
MIN_IMAGE_PIXELS = 2048 * 2048  # ...or this many, whichever is more


class LimitError(ValueError):
    """A request over a limit (HTTP 413); the message names the limit and its option."""


def request_rows(shape: Any) -> int | None:
    """The rows a tensor of `shape` declares (its first dimension; 1 for a scalar), or None
    when the shape is malformed (its decoder then says what is wrong)."""
    if not isinstance(shape, list | tuple):
        return None
    if not shape:
        return 1
    first = shape[0]
    return first if isinstance(first, int) and not isinstance(first, bool) else None


def check_rows(where: str, rows: int | None, limit: int) -> None:
    """LimitError when `rows` is over `limit`, naming `where`, the limit and its option."""
    if rows is not None and rows > limit:
        raise LimitError(
            f"{where}: {rows} rows is over the limit of {limit} rows per request "
            "(--max-request-rows); split it into smaller requests"
        )


def element_bytes(datatype: str) -> int:
    """The most bytes one element of `datatype` takes in a request (in JSON)."""
    return STRING_BYTES if datatype == "BYTES" else NUMBER_BYTES


def default_max_body(row_bytes: list[int], rows: int) -> int:
    """The default body limit: `rows` rows of the widest served model's row (`row_bytes`, in
    its widest encoding) with BODY_HEADROOM, and at least MIN_BODY bytes."""
    widest = max(row_bytes, default=0)
    return max(MIN_BODY, BODY_HEADROOM * rows * widest)


def image_pixel_limit(height: int, width: int) -> int:
    """The most pixels an image file for a model of input height x width may have."""
    return max(IMAGE_AREA_FACTOR * height * width, MIN_IMAGE_PIXELS)
