"""What a scratch rung cannot do is refused in one line that names the PyTorch rung."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ladder.config import TrainConfig
from ladder.errors import LadderError
from ladder.models.numpy_support import check_numpy_support, numpy_lacks


def test_what_numpy_lacks_names_the_pytorch_rung():
    with pytest.raises(LadderError, match=r"scratch_cnn has no device cuda .*use type cnn"):
        check_numpy_support("scratch_cnn", "cnn", TrainConfig(), "cuda", 1)
    with pytest.raises(LadderError, match=r"no train.precision bf16.*no 2 processes.*type rnn"):
        check_numpy_support("scratch_lstm", "rnn", TrainConfig(precision="bf16"), "cpu", 2)
    with pytest.raises(LadderError, match=r"train.compile"):
        check_numpy_support("scratch_mlp", "mlp", TrainConfig(compile=True), "cpu", 1)
    check_numpy_support("scratch_mlp", "mlp", TrainConfig(), "cpu", 1)  # nothing missing


def test_fp16_and_everything_at_once_are_listed():
    lacks = numpy_lacks(TrainConfig(precision="fp16", compile=True), "cuda", 4)
    assert [lack.split(" (")[0] for lack in lacks] == [
        "device cuda",
        "train.precision fp16",
        "4 processes",
        "train.compile",
    ]


def test_loading_a_config_stays_free_of_torch():
    script = "import sys, ladder.config; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
