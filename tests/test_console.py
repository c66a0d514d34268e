"""What ladder prints while it works: plain lines without a terminal, --quiet, --verbose."""

from __future__ import annotations

import warnings

import pytest
from helpers import write_config

from ladder import console
from ladder.cli import main
from ladder.train.callbacks import epoch_line

MODELS = [{"name": "logreg", "type": "logistic_regression"}, {"name": "net", "type": "mlp"}]


@pytest.fixture
def config(tmp_path, table_csv):
    return write_config(tmp_path, str(table_csv), MODELS, evaluate={"bootstrap": 0})


def test_without_a_terminal_each_rung_and_epoch_is_one_line(config, tmp_path, capsys):
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == 0
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert "1/2 logreg: training logistic_regression" in lines
    assert "2/2 net: training mlp" in lines
    epochs = [line for line in lines if line.startswith("net epoch ")]
    assert [line.split(":")[0] for line in epochs] == [f"net epoch {k}/3" for k in (1, 2, 3)]
    assert all("train_loss" in line and "val_loss" in line for line in epochs)
    assert any(line.startswith("2/2 net: done in") for line in lines)
    assert "leaderboard" in out and "epoch" not in out  # results on stdout, progress on stderr


def test_quiet_prints_results_and_nothing_else(config, tmp_path, capsys):
    assert main(["--quiet", "run", str(config), "--out", str(tmp_path / "run")]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "leaderboard" in out and "logreg" in out


def test_quiet_and_verbose_exclude_each_other(capsys):
    assert main(["--quiet", "--verbose", "list", "models"]) == 2


def test_epoch_line_names_the_model_and_its_numbers():
    log = {"epoch": 2, "lr": 0.00093, "train_loss": 0.41234, "val_loss": 0.5, "seconds": 1.24}
    line = epoch_line("mlp", 2, 30, log)
    assert line == "mlp epoch 2/30: lr 0.00093, train_loss 0.4123, val_loss 0.5000 (1.2 s)"


def _shown(level: int, module: str) -> bool:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        console.set_verbosity(level)
        warnings.warn_explicit("soon removed", FutureWarning, "x.py", 1, module=module)
    return bool(seen)


def test_third_party_warnings_are_hidden_unless_verbose():
    assert not _shown(console.NORMAL, "sklearn.utils.deprecation")
    assert not _shown(console.QUIET, "sklearn.utils.deprecation")
    assert _shown(console.NORMAL, "ladder.train.checkpoint")  # ladder's own still show
    assert _shown(console.VERBOSE, "sklearn.utils.deprecation")


def test_children_inherit_the_verbosity(monkeypatch):
    monkeypatch.setenv("LADDER_VERBOSITY", "0")
    assert console.verbosity() == console.QUIET
    assert not console.interactive()
