"""One served artifact: its protocol tensors (names, datatypes, shapes), the checks that turn
request tensors or JSON records into the raw inputs the artifact predicts on, and its outputs.

Tensors (Open Inference Protocol):
- image model: input "image" FP32 [-1, C, H, W] with values in [0, 1] (UINT8 0..255 also);
- text model: its text column (e.g. "text") BYTES [-1], UTF-8;
- tabular model: one input per column, FP64 [-1] for numeric columns, BYTES [-1] for others;
- outputs: those of the model's task (`ladder.serve.outputs`): "probabilities" and "label" of
  a classifier, "prediction" (and "lower", "upper") of a regression.

Client data is never read as a path: texts, images and records are taken as values only.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ladder.data.images import resize_images, to_channels
from ladder.errors import DataError
from ladder.export.artifact import load
from ladder.serve.limits import element_bytes, image_pixel_limit
from ladder.serve.outputs import Outputs, task_outputs
from ladder.serve.tensors import NUMERIC, TensorSpec, datatype_of

IMAGE_INPUT = "image"
VERSION = "1"


class InputError(ValueError):
    """Request data that does not fit the model's inputs (the message names the input)."""


class ServedModel:
    """A loaded artifact that predicts on protocol tensors or JSON records."""

    def __init__(self, name: str, artifact: str | Path, threads: int | None = 1) -> None:
        """Load `artifact` as model `name`; `threads`: ONNX Runtime threads per batch."""
        started = time.perf_counter()
        self.name, self.version = name, VERSION
        self.loaded = load(artifact, threads=threads, arena=False)  # memory goes back
        self.spec = self.loaded.input_spec
        self.kind: str = self.spec["kind"]
        self.labels = self.loaded.labels
        self.inputs = self._input_specs()
        self.answers: Outputs = task_outputs(self.loaded)
        self.outputs = self.answers.specs
        self.load_seconds = time.perf_counter() - started

    # ------------------------------------------------------------------ metadata

    def _input_specs(self) -> list[TensorSpec]:
        if self.kind == "image":
            shape = [
                -1,
                int(self.spec["channels"]),
                int(self.spec["height"]),
                int(self.spec["width"]),
            ]
            return [TensorSpec(IMAGE_INPUT, "FP32", shape)]
        if self.kind == "text":
            return [TensorSpec(self.text_column, "BYTES", [-1])]
        numeric = set(getattr(self.loaded.preprocessor, "numeric", {}) or {})
        return [
            TensorSpec(c, "FP64" if c in numeric else "BYTES", [-1]) for c in self.spec["columns"]
        ]

    @property
    def text_column(self) -> str:
        """The name of a text model's input."""
        return str(self.spec.get("column") or "text")

    @property
    def platform(self) -> str:
        """The runtime the model predicts with, as the protocol names it."""
        return "onnxruntime_onnx" if self.loaded.backend == "onnxruntime" else self.loaded.backend

    def metadata(self) -> dict[str, Any]:
        """The protocol's model metadata."""
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": self.platform,
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
        }

    def schema(self) -> dict[str, Any]:
        """What the "try it" page and /v1 clients need: kind, fields, task, labels, interval."""
        fields = [{"name": t.name, "numeric": t.datatype == "FP64"} for t in self.inputs]
        return {
            "name": self.name,
            "kind": self.kind,
            "model_type": self.loaded.manifest.get("model_type"),
            "fields": fields,
            **self.answers.schema(),
            "target": self.spec.get("target"),
            "image": (
                {k: int(self.spec[k]) for k in ("channels", "height", "width")}
                if self.kind == "image"
                else None
            ),
        }

    def row_bytes(self) -> int:
        """The most bytes one row of input takes in a request's widest encoding (JSON)."""
        return sum(
            element_bytes(t.datatype) * int(np.prod([max(d, 1) for d in t.shape[1:]]))
            for t in self.inputs
        )

    # ------------------------------------------------------------------ inputs

    def rows_from_tensors(self, tensors: dict[str, np.ndarray]) -> tuple[Any, int]:
        """(raw inputs, row count) from request tensors; InputError naming what is wrong."""
        expected = [t.name for t in self.inputs]
        unknown = sorted(set(tensors) - set(expected))
        # a nullable column may be left out (missing in every row) beside the columns given
        nullable = self.spec.get("nullable") or {}
        missing = [n for n in expected if n not in tensors and not (nullable.get(n) and tensors)]
        if unknown or missing:
            parts = []
            if unknown:
                parts.append(f"unknown input(s) {', '.join(map(repr, unknown))}")
            if missing:
                parts.append(f"missing input(s) {', '.join(map(repr, missing))}")
            raise InputError(
                f"model {self.name!r}: {'; '.join(parts)} (expects {', '.join(expected)})"
            )
        if self.kind == "image":
            return self._image_rows(tensors[IMAGE_INPUT])
        if self.kind == "text":
            texts = self._column(self.inputs[0], tensors[self.text_column])
            return texts, len(texts)
        columns = {
            t.name: self._column(t, tensors[t.name]) for t in self.inputs if t.name in tensors
        }
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise InputError(f"model {self.name!r}: the inputs have different row counts")
        import pandas as pd

        frame = self._checked(pd.DataFrame(columns), lambda column, row: f"input {column!r}[{row}]")
        return frame, lengths.pop()

    def _image_rows(self, array: np.ndarray) -> tuple[np.ndarray, int]:
        spec = self.inputs[0]
        expected = spec.shape[1:]
        if array.ndim != 4 or list(array.shape[1:]) != expected:
            raise InputError(
                f"input {IMAGE_INPUT!r}: expected shape [-1, {', '.join(map(str, expected))}], "
                f"got {list(array.shape)}"
            )
        if array.dtype == np.uint8:
            return (array.astype(np.float32) / 255.0), len(array)
        if array.dtype.kind != "f":
            raise InputError(
                f"input {IMAGE_INPUT!r}: expected datatype FP32 (or UINT8), got {_datatype(array)}"
            )
        images = np.asarray(array, dtype=np.float32)
        if not ((images >= 0) & (images <= 1)).all():  # NaN fails both comparisons
            raise InputError(f"input {IMAGE_INPUT!r}: FP32 pixel values must lie in [0, 1]")
        return images, len(images)

    def _column(self, spec: TensorSpec, array: np.ndarray) -> np.ndarray:
        """A 1-D column from a [-1] or [-1, 1] tensor of the right datatype."""
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise InputError(
                f"input {spec.name!r}: expected shape [-1] (or [-1, 1]), got {list(array.shape)}"
            )
        datatype = _datatype(array)
        if spec.datatype == "BYTES":
            if datatype != "BYTES":
                raise InputError(f"input {spec.name!r}: expected datatype BYTES, got {datatype}")
            return _decode_strings(spec.name, array)
        if datatype not in NUMERIC:
            raise InputError(
                f"input {spec.name!r}: expected a numeric datatype (FP64), got {datatype}"
            )
        return array.astype(np.float64)

    def rows_from_instances(self, instances: Any) -> tuple[Any, int]:
        """(raw inputs, row count) from /v1 `instances`: records of columns (tabular), strings
        (text; null is an empty text, as in training, the library and v2 tensors), or images as
        base64 PNG/JPEG or nested [C][H][W] pixel lists (image)."""
        if not isinstance(instances, list) or not instances:
            raise InputError("instances: expected a non-empty list")
        if self.kind == "text":
            column = self.text_column
            texts = []
            for i, item in enumerate(instances):
                value = item.get(column) if isinstance(item, dict) else item
                value = "" if value is None else value  # a missing text is an empty one
                if not isinstance(value, str):
                    raise InputError(
                        f"instances[{i}]: expected a string (or {{{column!r}: string}})"
                    )
                texts.append(value)
            return np.asarray(texts, dtype=object), len(texts)
        if self.kind == "image":
            images = [self._instance_image(i, item) for i, item in enumerate(instances)]
            return np.stack(images), len(images)
        return self._instance_records(instances)

    def _instance_records(self, instances: list[Any]) -> tuple[Any, int]:
        import pandas as pd

        columns = {t.name: t for t in self.inputs}
        rows = []
        for i, record in enumerate(instances):
            if not isinstance(record, dict):
                raise InputError(f"instances[{i}]: expected an object of column -> value")
            unknown = sorted(set(record) - set(columns))
            if unknown:
                raise InputError(
                    f"instances[{i}]: unknown column {unknown[0]!r} (expects {', '.join(columns)})"
                )
            for name, value in record.items():
                numeric = columns[name].datatype == "FP64"
                ok = value is None or (
                    isinstance(value, int | float) and not isinstance(value, bool)
                    if numeric
                    else isinstance(value, str)
                )
                if not ok:
                    kind = "a number or null" if numeric else "a string or null"
                    raise InputError(f"instances[{i}].{name}: expected {kind}, got {value!r}")
            rows.append({n: record.get(n) for n in columns})
        frame = pd.DataFrame(rows, columns=list(columns))
        for name, spec in columns.items():
            if spec.datatype == "FP64":
                frame[name] = frame[name].astype(np.float64)
        frame = self._checked(frame, lambda column, row: f"instances[{row}].{column}")
        return frame, len(frame)

    def _checked(self, frame: Any, where: Callable[[str, int], str]) -> Any:
        """The artifact's input check (`LoadedModel.check`) as an InputError: missing values
        where the model does not impute, non-finite numbers."""
        try:
            return self.loaded.check(frame, where)
        except DataError as exc:
            raise InputError(str(exc)) from exc

    def _instance_image(self, i: int, item: Any) -> np.ndarray:
        channels, height, width = self.inputs[0].shape[1:]
        if isinstance(item, dict) and isinstance(item.get("b64"), str):
            item = item["b64"]
        if isinstance(item, str):
            return self._decode_image(i, item, channels, height, width)
        try:
            array = np.asarray(item, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InputError(f"instances[{i}]: expected a base64 image or a pixel array") from exc
        if array.ndim == 2:
            array = array[None]
        if list(array.shape) != [channels, height, width]:
            raise InputError(
                f"instances[{i}]: expected pixels of shape [{channels}, {height}, {width}] "
                f"(or [{height}, {width}]), got {list(array.shape)}"
            )
        if not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 255):
            raise InputError(f"instances[{i}]: pixel values must lie in [0, 1] or 0..255")
        return array / 255.0 if array.max() > 1 else array

    @staticmethod
    def _decode_image(i: int, text: str, channels: int, height: int, width: int) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        if text.startswith("data:") and "," in text:
            text = text.split(",", 1)[1]  # a data: URL from a browser
        limit = image_pixel_limit(height, width)
        try:
            data = base64.b64decode(text, validate=True)
            # the header only; and no other decoder than these two (fewer ways in)
            with Image.open(io.BytesIO(data), formats=("PNG", "JPEG")) as image:
                if image.width * image.height > limit:  # refused before decoding
                    raise InputError(
                        f"instances[{i}]: an image of {image.width}x{image.height} pixels is "
                        f"over the limit of {limit:,} pixels for this model's {width}x{height} "
                        "input; downscale it before sending"
                    )
                image.load()
                mode = "L" if channels == 1 else "RGB"
                pixels = np.asarray(image.convert(mode), dtype=np.float32) / 255.0
        except InputError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise InputError(f"instances[{i}]: the image is too large to decode ({exc})") from exc
        except (ValueError, UnidentifiedImageError, OSError) as exc:
            raise InputError(f"instances[{i}]: not a base64-encoded PNG/JPEG image") from exc
        array = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
        array = to_channels(array[None], channels)
        return resize_images(array, height, width)[0].astype(np.float32)

    # ------------------------------------------------------------------ predicting

    def predict(self, raws: list[Any]) -> list[np.ndarray]:
        """The outputs of each raw input of `raws` (class probabilities, or values), computed
        as one batch and split back by rows."""
        import pandas as pd

        counts = [len(r) for r in raws]
        if len(raws) == 1:
            batch = raws[0]
        elif self.kind == "tabular":
            batch = pd.concat(raws, ignore_index=True)
        else:
            batch = np.concatenate(raws)
        outputs = self.answers.of_batch(self.loaded.predict_outputs_raw(batch))
        return np.split(outputs, np.cumsum(counts)[:-1])

    def check_outputs(self, names: list[str] | None) -> None:
        """InputError unless every requested output name exists."""
        known = [t.name for t in self.outputs]
        for name in names or []:
            if name not in known:
                raise InputError(
                    f"model {self.name!r}: unknown output {name!r} (has {', '.join(known)})"
                )

    def output_tensors(self, outputs: np.ndarray, names: list[str] | None) -> dict[str, np.ndarray]:
        """The requested output tensors (all when `names` is None) of a request's outputs."""
        self.check_outputs(names)
        return self.answers.tensors(outputs, names or [t.name for t in self.outputs])

    def warm_up_rows(self) -> tuple[Any, int]:
        """A one-row input of the model's kind, to run once before the model is ready."""
        if self.kind == "image":
            return np.zeros([1, *self.inputs[0].shape[1:]], dtype=np.float32), 1
        if self.kind == "text":
            return np.asarray(["warm up"], dtype=object), 1
        import pandas as pd

        row = {t.name: [0.0] if t.datatype == "FP64" else [""] for t in self.inputs}
        frame = pd.DataFrame(row)
        return frame, 1


def _datatype(array: np.ndarray) -> str:
    return datatype_of(array)


def _decode_strings(name: str, array: np.ndarray) -> np.ndarray:
    """UTF-8 strings from a BYTES column (an object array of bytes or str)."""
    texts = np.empty(len(array), dtype=object)
    for i, item in enumerate(array):
        if isinstance(item, bytes):
            try:
                texts[i] = item.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"input {name!r}: element {i} is not valid UTF-8") from exc
        else:
            texts[i] = None if item is None else str(item)  # JSON null: a missing value
    return texts
