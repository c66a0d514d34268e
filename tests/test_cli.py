"""The `ladder` command: exit codes, one-line errors, and train -> evaluate -> predict."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import GLOO_EXIT_CRASH, make_table, write_config

from ladder.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(capsys, *args: str, match: str) -> str:
    """Exit 2, one line on stderr naming the problem, no traceback."""
    code, _, err = run(capsys, *args)
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert match in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def trained(tmp_path, table_csv, capsys):
    config = write_config(tmp_path, str(table_csv), [{"name": "lr", "type": "logistic_regression"}])
    code, out, _ = run(capsys, "train", config, "--model", "lr", "--out", tmp_path / "run")
    assert code == 0
    return tmp_path / "run/models/lr/artifact", out


def test_help_is_instant_and_does_not_import_torch():
    script = (
        "import sys; from ladder.cli import main; main(['--help']); print('torch' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert "train" in done.stdout and "predict" in done.stdout
    assert done.stdout.strip().endswith("False")


def test_train_prints_test_metrics_and_paths(trained):
    _, out = trained
    assert "accuracy" in out and "f1_macro" in out
    assert "run folder:" in out and "artifact:" in out


def test_evaluate_scores_new_labelled_data(trained, tmp_path, capsys):
    artifact, _ = trained
    fresh = tmp_path / "fresh.csv"
    make_table(n=30, seed=5).to_csv(fresh, index=False)
    code, out, _ = run(capsys, "evaluate", artifact, fresh, "--output", tmp_path / "m.json")
    assert code == 0 and "accuracy" in out
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["accuracy"] > 0.8


def test_predict_writes_labels_and_probabilities(trained, tmp_path, capsys):
    artifact, _ = trained
    rows = tmp_path / "rows.jsonl"
    make_table(n=6, seed=2).drop(columns="label").to_json(rows, orient="records", lines=True)
    code, _, _ = run(capsys, "predict", artifact, rows, "--output", tmp_path / "pred.csv")
    assert code == 0
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert list(pred.columns) == ["prediction", "prob_cat", "prob_dog", "prob_fox"]
    assert len(pred) == 6
    np.testing.assert_allclose(pred.filter(like="prob_").sum(axis=1), 1.0, rtol=1e-6)


def test_predict_to_stdout_on_an_image_folder(tmp_path, image_folder, capsys):
    config = write_config(
        tmp_path, str(image_folder), [{"name": "knn", "type": "knn", "n_neighbors": 1}]
    )
    assert run(capsys, "train", config, "--model", "knn", "--out", tmp_path / "run")[0] == 0
    code, out, _ = run(capsys, "predict", tmp_path / "run/models/knn/artifact", image_folder)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0] == "input,prediction,prob_bright,prob_dark"
    assert len(lines) == 13


def test_list_models_and_datasets(capsys):
    code, out, _ = run(capsys, "list", "models")
    assert code == 0
    for name in ("logistic_regression", "random_forest", "svm", "knn", "mlp", "cnn"):
        assert name in out
    code, out, _ = run(capsys, "list", "datasets")
    assert code == 0 and "digits" in out and "iris" in out


# ----------------------------------------------------------------------------- bad input


def test_yaml_syntax_error(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nmodels: [\n  - a: b\n")
    assert_user_error(capsys, "train", path, "--model", "x", match="line")


def test_missing_config_file(tmp_path, capsys):
    assert_user_error(
        capsys, "train", tmp_path / "nope.yaml", "--model", "x", match="file not found"
    )


def test_missing_data_file(tmp_path, capsys):
    config = write_config(
        tmp_path, str(tmp_path / "gone.csv"), [{"name": "lr", "type": "logistic_regression"}]
    )
    assert_user_error(capsys, "train", config, "--model", "lr", match="gone.csv")


def test_missing_target_column_lists_columns(tmp_path, table_csv, capsys):
    config = write_config(tmp_path, str(table_csv), [{"name": "lr", "type": "logistic_regression"}])
    line = assert_user_error(
        capsys, "train", config, "--model", "lr", "--set", "data.target=species", match="species"
    )
    assert "colour" in line and "size" in line


def test_unknown_model_type_lists_valid_types(tmp_path, table_csv, capsys):
    config = write_config(tmp_path, str(table_csv), [{"name": "m", "type": "forest"}])
    line = assert_user_error(capsys, "train", config, "--model", "m", match="unknown model type")
    assert "random_forest" in line and "mlp" in line


def test_corrupt_csv_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,x\n3,4,y\n5,6,7,8,9\n")
    config = write_config(tmp_path, str(bad), [{"name": "lr", "type": "logistic_regression"}])
    line = assert_user_error(capsys, "train", config, "--model", "lr", match="bad.csv")
    assert "line 4" in line or "row 4" in line


def test_nan_labels_are_counted_or_dropped(tmp_path, capsys):
    frame = make_table()
    frame.loc[[3, 7], "label"] = None
    path = tmp_path / "nan.csv"
    frame.to_csv(path, index=False)
    config = write_config(tmp_path, str(path), [{"name": "lr", "type": "logistic_regression"}])
    line = assert_user_error(capsys, "train", config, "--model", "lr", match="2 rows")
    assert "drop_missing_target" in line
    args = ("train", config, "--model", "lr", "--set", "data.drop_missing_target=true")
    assert run(capsys, *args)[0] == 0


def test_class_with_one_row_cannot_be_stratified(tmp_path, capsys):
    frame = make_table()
    frame.loc[0, "label"] = "unicorn"
    frame.to_csv(tmp_path / "one.csv", index=False)
    config = write_config(
        tmp_path, str(tmp_path / "one.csv"), [{"name": "lr", "type": "logistic_regression"}]
    )
    assert_user_error(capsys, "train", config, "--model", "lr", match="unicorn")


def test_empty_dataset(tmp_path, capsys):
    (tmp_path / "empty.csv").write_text("size,label\n")
    config = write_config(
        tmp_path, str(tmp_path / "empty.csv"), [{"name": "lr", "type": "logistic_regression"}]
    )
    assert_user_error(capsys, "train", config, "--model", "lr", match="empty.csv")


def test_undecodable_image_is_named(tmp_path, image_folder, capsys):
    (image_folder / "dark" / "broken.png").write_bytes(b"not a png")
    config = write_config(tmp_path, str(image_folder), [{"name": "knn", "type": "knn"}])
    assert_user_error(capsys, "train", config, "--model", "knn", match="broken.png")


def test_predict_input_with_wrong_columns(trained, tmp_path, capsys):
    artifact, _ = trained
    rows = tmp_path / "rows.csv"
    make_table(n=4).drop(columns=["weight"]).assign(extra=1).to_csv(rows, index=False)
    line = assert_user_error(capsys, "predict", artifact, rows, match="weight")
    assert "extra" in line


def test_inf_in_training_data_is_one_line_naming_column_and_line(tmp_path, capsys, caplog):
    frame = make_table()
    frame.loc[4, "weight"] = np.inf
    frame.loc[9, "size"] = -1e300  # beyond float32
    frame.to_csv(tmp_path / "inf.csv", index=False)
    config = write_config(
        tmp_path, str(tmp_path / "inf.csv"), [{"name": "lr", "type": "logistic_regression"}]
    )
    line = assert_user_error(capsys, "train", config, "--model", "lr", match="inf.csv")
    assert "column 'weight', line 6: inf is not a finite number" in line
    assert "data.non_finite: drop" in line
    args = ("train", config, "--model", "lr", "--out", tmp_path / "run")
    assert run(capsys, *args, "--set", "data.non_finite=drop")[0] == 0
    assert json.loads((tmp_path / "run/data.json").read_text())["dropped_non_finite"] == 2
    assert "dropped 2 rows with a non-finite number" in caplog.text


def test_predict_and_evaluate_refuse_non_finite_numbers(trained, tmp_path, capsys):
    artifact, _ = trained
    rows = tmp_path / "rows.csv"
    frame = make_table(n=4, seed=3)
    frame.loc[1, "size"] = np.inf
    frame.to_csv(rows, index=False)
    line = assert_user_error(capsys, "predict", artifact, rows, match=str(rows))
    assert "column 'size', line 3: inf is not a finite number" in line
    frame.loc[1, "size"] = 1e308
    frame.to_json(tmp_path / "rows.jsonl", orient="records", lines=True)
    line = assert_user_error(capsys, "evaluate", artifact, tmp_path / "rows.jsonl", match="line 2")
    assert "column 'size'" in line and "1e+308" in line


def test_predict_imputes_only_columns_that_had_missing_values(tmp_path, capsys):
    frame = make_table()
    frame.loc[[2, 5], "weight"] = np.nan
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    config = write_config(
        tmp_path, str(tmp_path / "gaps.csv"), [{"name": "lr", "type": "logistic_regression"}]
    )
    assert run(capsys, "train", config, "--model", "lr", "--out", tmp_path / "run")[0] == 0
    artifact = tmp_path / "run/models/lr/artifact"
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["input"]["nullable"] == {"size": False, "weight": True, "colour": False}
    rows = tmp_path / "rows.csv"
    rows.write_text("size,colour,weight\n0.1,red,\n4.0,blue,0.5\n")
    code, out, _ = run(capsys, "predict", artifact, rows)
    assert code == 0 and len(pd.read_csv(io.StringIO(out))) == 2
    rows.write_text("size,colour\n0.1,red\n,blue\n")  # weight may be left out; size may not
    line = assert_user_error(capsys, "predict", artifact, rows, match="column 'size', line 3")
    assert "missing ('size' had no missing values in the training data" in line


def test_tampered_and_incomplete_artifacts(trained, capsys, tmp_path):
    artifact, _ = trained
    preprocess = artifact / "preprocess.json"
    original = preprocess.read_bytes()
    preprocess.write_bytes(original.replace(b"size", b"sise"))
    rows = tmp_path / "rows.csv"
    make_table(n=4).to_csv(rows, index=False)
    assert_user_error(capsys, "predict", artifact, rows, match="checksum mismatch")
    preprocess.write_bytes(original)
    (artifact / "model.skops").unlink()
    assert_user_error(capsys, "predict", artifact, rows, match="model.skops is missing")
    assert_user_error(capsys, "predict", tmp_path, rows, match="not an artifact")


def test_debug_shows_the_traceback(tmp_path, capsys):
    code, _, err = run(capsys, "--debug", "train", tmp_path / "nope.yaml", "--model", "x")
    assert code == 2 and "Traceback" in err


def test_usage_errors_exit_2(capsys):
    code, _, _ = run(capsys, "train")
    assert code == 2


def test_console_script_exit_code(tmp_path):
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "ladder"),
            "train",
            str(tmp_path / "x.yaml"),
            "--model",
            "m",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ")


# ----------------------------------------------------------------------------- resume and DDP


@pytest.fixture
def mlp_config(tmp_path, table_csv):
    return write_config(tmp_path, str(table_csv), [{"name": "net", "type": "mlp", "hidden": [8]}])


def test_resume_without_a_checkpoint(mlp_config, tmp_path, capsys):
    args = ("train", mlp_config, "--model", "net", "--out", tmp_path / "run", "--resume")
    assert_user_error(capsys, *args, match="--resume: no checkpoint in")


def test_resume_continues_and_refuses_a_different_model(mlp_config, tmp_path, capsys):
    base = ("train", mlp_config, "--model", "net", "--out", tmp_path / "run")
    assert run(capsys, *base)[0] == 0
    code, out, err = run(capsys, *base, "--resume", "--set", "train.epochs=5")
    assert code == 0 and "accuracy" in out
    last = tmp_path / "run/models/net/checkpoints/last"
    assert f"resumed from {last}: the end of epoch 3, step 12" in err.splitlines()
    history = pd.read_csv(tmp_path / "run/models/net/history.csv")
    assert list(history["epoch"]) == [1, 2, 3, 4, 5]  # epochs 1-3 kept, 4-5 trained
    line = assert_user_error(
        capsys, *base, "--resume", "--set", "models.net.hidden=[16]", match="different model"
    )
    assert "hidden" in line


def test_a_corrupt_checkpoint_falls_back_in_one_line(mlp_config, tmp_path, capsys):
    base = ("train", mlp_config, "--model", "net", "--out", tmp_path / "run")
    assert run(capsys, *base)[0] == 0
    checkpoints = tmp_path / "run/models/net/checkpoints"
    (checkpoints / "last/weights.safetensors").write_bytes(b"truncated")
    ladder = str(Path(sys.executable).parent / "ladder")  # the terminal's view: a real process
    args = [ladder, *map(str, base), "--resume", "--set", "train.epochs=4"]
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    err = done.stderr
    corrupt = checkpoints / "last/weights.safetensors"
    assert err.splitlines()[:2] == [
        f"warning: checkpoint file {corrupt} is corrupt (sha256 mismatch: truncated or altered); "
        f"resuming from {checkpoints / 'previous'}",
        f"resumed from {checkpoints / 'previous'}: the end of epoch 2, step 8",
    ]


@pytest.mark.slow
def test_ctrl_c_during_a_run_saves_and_says_how_to_resume(tmp_path, table_csv):
    net = {"name": "net", "type": "mlp", "hidden": [8], "epochs": 300}
    config = write_config(tmp_path, str(table_csv), [net], evaluate={"bootstrap": 0})
    out = tmp_path / "run"
    ladder = str(Path(sys.executable).parent / "ladder")
    command = [ladder, "run", str(config), "--out", str(out)]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as process:
        for line in process.stderr:
            if line.startswith("net epoch 2/300"):
                break
        process.send_signal(signal.SIGINT)
        err = process.stderr.read()
        assert process.wait(timeout=60) == 130
    said = err.strip().splitlines()[-1]
    assert said.startswith("error: training stopped by Ctrl-C (SIGINT) at epoch ")
    resume = f"ladder train {config} --model net --resume --out {out}"
    assert said.endswith(f"; continue with {resume}, then ladder run {config} --out {out}")
    assert not (out / "models/net/metrics.json").exists()  # not a finished rung

    done = subprocess.run([ladder, *resume.split()[1:]], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"resumed from {out / 'models/net/checkpoints/last'}" in done.stderr
    done = subprocess.run([ladder, "run", str(config), "--out", str(out)], capture_output=True)
    assert done.returncode == 0
    assert "1/1 net: cached" in done.stderr.decode()


def test_resume_of_a_classical_model_is_refused(trained, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    args = ("train", config, "--model", "lr", "--out", tmp_path / "run", "--resume")
    assert_user_error(capsys, *args, match="classical model")


@pytest.mark.parametrize("nproc", ["0", "100000"])
def test_nproc_out_of_range(mlp_config, capsys, nproc):
    assert_user_error(
        capsys, "train", mlp_config, "--model", "net", "--nproc", nproc, match="--nproc"
    )


def test_nproc_for_a_classical_model(trained, tmp_path, capsys):
    args = ("train", tmp_path / "config.yaml", "--model", "lr", "--nproc", "2")
    assert_user_error(capsys, *args, match="trains in one process")


@pytest.mark.slow
def test_two_ddp_workers_train_and_rank_0_writes_the_artifact(mlp_config, tmp_path, capfd):
    single = ("train", mlp_config, "--model", "net", "--out", tmp_path / "one")
    assert run(capfd, *single, "--set", "train.batch_size=16")[0] == 0
    args = ("train", mlp_config, "--model", "net", "--out", tmp_path / "two", "--nproc", "2")
    code, _, err = run(capfd, *args, "--set", "train.batch_size=16")
    if code != 0 and GLOO_EXIT_CRASH in err:  # torch's exit crash, not ladder's: once more
        code, _, err = run(capfd, *args, "--set", "train.batch_size=16")
    assert code == 0, err
    one = pd.read_csv(tmp_path / "one/models/net/history.csv")
    two = pd.read_csv(tmp_path / "two/models/net/history.csv")
    assert len(two) == 3
    np.testing.assert_allclose(two["val_loss"], one["val_loss"], atol=1e-4)
    assert (tmp_path / "two/models/net/artifact/manifest.json").is_file()


def test_fp16_on_cpu_is_refused(mlp_config, tmp_path, capsys):
    args = ("train", mlp_config, "--model", "net", "--out", tmp_path / "run")
    args += ("--set", "device=cpu", "--set", "train.precision=fp16")
    assert_user_error(capsys, *args, match="fp16 needs a CUDA device")


def test_busy_rendezvous_port(mlp_config, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        endpoint = f"127.0.0.1:{busy.getsockname()[1]}"
        args = ("train", mlp_config, "--model", "net", "--nproc", "1")
        args += ("--nnodes", "2", "--rdzv-endpoint", endpoint)
        assert_user_error(capsys, *args, match="already in use")
