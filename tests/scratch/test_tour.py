"""docs/scratch.md stays true to the code: its worked examples are what the NumPy layers compute,
its code excerpts are in the files it names, and the tests it names exist.

A worked example is a ```text block after a `<!-- tour: NAME -->` comment, one `name = value`
per entry (a value may continue on indented lines). The inputs are read from the block and the
outputs recomputed with `ladder.scratch`; every printed output must be the computed value rounded
to 4 decimals, and every entry of a block must be checked.
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import numpy as np
import yaml

from ladder.scratch.conv import Conv2d, im2col
from ladder.scratch.dense import Dense
from ladder.scratch.dropout import Dropout
from ladder.scratch.lstm import LSTM
from ladder.scratch.pooling import MaxPool2d

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "scratch.md"
TEXT = DOC.read_text()
HALF_LAST_DIGIT = 0.5e-4 + 1e-9  # printed with 4 decimals


def tour_blocks() -> dict[str, dict[str, np.ndarray]]:
    """{block name: {entry name: value}} of every worked example in the doc."""
    blocks: dict[str, dict[str, np.ndarray]] = {}
    for name, body in re.findall(r"<!-- tour: (\w+) -->\n```text\n(.*?)```", TEXT, re.S):
        entries: dict[str, str] = {}
        key = ""
        for line in body.splitlines():
            if line[:1].isspace() and key:
                entries[key] += line.strip()  # a matrix continued on the next line
                continue
            key, sep, value = line.partition(" = ")
            assert sep, f"tour block {name}: line {line!r} is not 'name = value'"
            key = key.strip()
            assert key not in entries, f"tour block {name}: {key} appears twice"
            entries[key] = value.strip()
        assert name not in blocks, f"two tour blocks named {name}"
        blocks[name] = {
            k: np.asarray(ast.literal_eval(v), dtype=np.float64) for k, v in entries.items()
        }
    return blocks


BLOCKS = tour_blocks()


class Printed:
    """One worked example's entries; `check` compares an output with what the code gives."""

    def __init__(self, name: str) -> None:
        assert name in BLOCKS, f"docs/scratch.md has no tour block {name}"
        self.name, self.values, self.used = name, BLOCKS[name], set[str]()

    def __getitem__(self, key: str) -> np.ndarray:
        assert key in self.values, f"tour block {self.name} has no entry {key}"
        self.used.add(key)
        return self.values[key]

    def check(self, key: str, computed: np.ndarray | float) -> None:
        printed, value = self[key], np.asarray(computed, dtype=np.float64)
        assert printed.shape == value.shape, (
            f"{self.name}.{key}: the doc prints shape {printed.shape}, the code gives {value.shape}"
        )
        assert np.all(np.abs(printed - value) <= HALF_LAST_DIGIT), (
            f"{self.name}.{key}: the doc prints {printed.tolist()}, "
            f"the code gives {np.round(value, 4).tolist()}"
        )

    def all_checked(self) -> None:
        assert set(self.values) == self.used, (
            f"tour block {self.name}: unchecked entries {sorted(set(self.values) - self.used)}"
        )


def test_every_tour_block_has_its_test():
    assert set(BLOCKS) == {"dense", "dropout", "conv", "maxpool", "lstm"}


def test_dense_example():
    doc = Printed("dense")
    layer = Dense(2, 2)
    layer.params["weight"], layer.params["bias"] = doc["W"].copy(), doc["b"].copy()
    doc.check("Y", layer.forward(doc["x"].copy()))
    doc.check("dX", layer.backward(doc["dY"].copy()))
    doc.check("dW", layer.grads["weight"])
    doc.check("db", layer.grads["bias"])
    doc.all_checked()


def test_dropout_example():
    doc = Printed("dropout")
    layer = Dropout(float(doc["p"]), rng=np.random.default_rng(int(doc["seed"])))
    doc.check("Y", layer.forward(doc["x"].copy(), training=True))
    doc.check("mask/q", layer.mask)
    doc.check("dX", layer.backward(doc["dY"].copy()))
    doc.all_checked()


def test_conv_example():
    doc = Printed("conv")
    x = doc["x"][None, None]  # one image, one channel
    layer = Conv2d(1, 1, doc["w"].shape)
    layer.params["weight"] = doc["w"][None, None].copy()
    layer.params["bias"] = doc["b"].reshape(1).copy()
    doc.check("cols", im2col(x, *doc["w"].shape)[0])
    doc.check("Y", layer.forward(x)[0, 0])
    doc.check("dx", layer.backward(doc["G"][None, None].copy())[0, 0])
    doc.check("dw", layer.grads["weight"][0, 0])
    doc.check("db", layer.grads["bias"][0])
    doc.all_checked()


def test_maxpool_example():
    doc = Printed("maxpool")
    layer = MaxPool2d(2)
    doc.check("Y", layer.forward(doc["x"][None, None].copy())[0, 0])
    doc.check("dx", layer.backward(doc["G"][None, None].copy())[0, 0])
    doc.all_checked()


def test_lstm_example():
    doc = Printed("lstm")
    layer = LSTM(1, 1)
    w_ih, w_hh, b_ih, b_hh = doc["W_ih"], doc["W_hh"], doc["b_ih"], doc["b_hh"]
    layer.params.update(
        weight_ih=w_ih[:, None].copy(),
        weight_hh=w_hh[:, None].copy(),
        bias_ih=b_ih.copy(),
        bias_hh=b_hh.copy(),
    )
    x = doc["x"]
    h = layer.forward(x.reshape(1, 2, 1)).reshape(2)
    step1, step2 = layer._tape.caches  # (i, f, g, o, c_prev, tanh c) of each step

    doc.check("a_1", x[0] * w_ih + b_ih + b_hh)  # h_0 = 0
    doc.check("gates_1", [gate[0, 0] for gate in step1[:4]])
    doc.check("c_1", step2[4][0, 0])  # step 2's c_{t-1}
    doc.check("h_1", h[0])
    doc.check("a_2", x[1] * w_ih + b_ih + h[0] * w_hh + b_hh)
    doc.check("gates_2", [gate[0, 0] for gate in step2[:4]])
    doc.check("c_2", layer.last_cell[0, 0])
    doc.check("h_2", h[1])

    # the loss is h_2: the backward pass starts from dL/dh_2 = 1, dL/dc_2 = 0 beyond step 2
    d_h2 = doc["dh_2"].reshape(1, 1)
    da_2, _, (_, dc_1_from_c) = LSTM.cell_backward((d_h2, np.zeros((1, 1))), step2)
    o_2, tanh_c2 = step2[3], step2[5]
    doc.check("dc_2", (d_h2 * o_2 * (1 - tanh_c2**2))[0, 0])
    doc.check("da_2", da_2[0])
    dh_1 = da_2 @ layer.params["weight_hh"]  # the h path, through W_hh
    doc.check("dh_1", dh_1[0, 0])
    doc.check("dc_1 (from c)", dc_1_from_c[0, 0])
    o_1, tanh_c1 = step1[3], step1[5]
    doc.check("dc_1", (dc_1_from_c + dh_1 * o_1 * (1 - tanh_c1**2))[0, 0])
    da_1, _, _ = LSTM.cell_backward((dh_1, dc_1_from_c), step1)
    doc.check("da_1", da_1[0])

    dx = layer.backward(None, d_h2)
    doc.check("dW_ih", layer.grads["weight_ih"][:, 0])
    doc.check("dW_hh", layer.grads["weight_hh"][:, 0])
    doc.check("db_ih", layer.grads["bias_ih"])
    doc.check("db_hh", layer.grads["bias_hh"])
    doc.check("dx", dx.reshape(2))
    # the layer's own BPTT agrees with the two cell steps taken by hand above
    np.testing.assert_allclose(layer.grads["bias_ih"], (da_1 + da_2)[0], rtol=1e-12)
    doc.all_checked()


def python_excerpts() -> list[tuple[str, str]]:
    """(file, code) of every ```python block: the file is the last `src/...py` path named in
    the text since the previous block, or the previous excerpt's file when none is."""
    excerpts: list[tuple[str, str]] = []
    path, last_end = "", 0
    for block in re.finditer(r"^```(\w*)\n(.*?)^```", TEXT, re.S | re.M):
        named = re.findall(r"`((?:src|tests)/[\w/.-]+\.py)`", TEXT[last_end : block.start()])
        if block.group(1) == "python":
            path = named[-1] if named else path
            assert path, f"no file named before the excerpt {block.group(2)[:60]!r}"
            excerpts.append((path, block.group(2)))
        last_end = block.end()
    return excerpts


def test_every_excerpt_is_in_the_file_it_names():
    excerpts = python_excerpts()
    assert len(excerpts) > 30
    for path, code in excerpts:
        lines = (ROOT / path).read_text().splitlines()
        want = textwrap.dedent(code).rstrip("\n")
        n = len(want.splitlines())
        assert any(
            textwrap.dedent("\n".join(lines[k : k + n])) == want for k in range(len(lines))
        ), f"this excerpt is not (or no longer) in {path}:\n{code}"


def test_every_named_test_exists():
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", TEXT)
    assert len(named) > 40
    for path, name in named:
        source = (ROOT / path).read_text()
        assert re.search(rf"^def {name}\(", source, re.M), f"{path} has no {name}"


def test_the_config_snippet_is_a_valid_config():
    from ladder.config import validate_config

    snippet = yaml.safe_load(TEXT.split("```yaml\n", 1)[1].split("```", 1)[0])
    config = yaml.safe_load((ROOT / "examples" / "digits.yaml").read_text())
    config["models"] = snippet["models"]
    validated = validate_config(config)
    assert validated.model("lenet").type == "cnn"
    assert validated.model("numpy-lenet").type == "scratch_cnn"
