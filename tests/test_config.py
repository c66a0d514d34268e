"""Config loading: validation that reports every problem, overrides, per-model train keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ladder.config import dump_config, load_config, load_run_config, parse_overrides
from ladder.errors import ConfigError

BASE = {
    "name": "toy",
    "data": {"source": "builtin:iris"},
    "models": [
        {"name": "forest", "type": "random_forest", "n_estimators": 10},
        {"name": "net", "type": "mlp", "hidden": [16], "epochs": 2},
    ],
    "train": {"epochs": 5, "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}},
}


def write(tmp_path: Path, data: dict | str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def problems_of(tmp_path: Path, data: dict | str, overrides=None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, data), overrides)
    return info.value.problems


def test_valid_config_resolves_models_and_train_overrides(tmp_path):
    config = load_config(write(tmp_path, BASE))
    net = config.model("net")
    assert net.train.epochs == 2  # the model entry overrides train.epochs
    assert net.train.optimizer.name == "sgd"  # the rest comes from train:
    assert list(net.params.hidden) == [16]
    assert config.model("forest").train.epochs == 5


def test_every_problem_is_reported_at_once_with_its_path(tmp_path):
    bad = {
        **BASE,
        "seed": "zero",
        "train": {"epoch": 3, "batch_size": 0},
        "models": [
            {"name": "a", "type": "mlp", "hidden": "wide", "dropout": 2},
            {"name": "b", "type": "random_forst"},
        ],
    }
    problems = problems_of(tmp_path, bad)
    text = "\n".join(problems)
    assert "seed:" in text
    assert "train.epoch: unknown key 'epoch'; did you mean 'epochs'?" in text
    assert "train.batch_size: Input should be greater than or equal to 1, got 0" in text
    assert any(p.startswith("models[0].hidden:") for p in problems)
    assert any(p.startswith("models[0].dropout:") for p in problems)
    assert (
        "models[1].type: unknown model type 'random_forst'; did you mean 'random_forest'?" in text
    )
    assert len(problems) >= 6


def test_unknown_model_key_suggests_the_nearest(tmp_path):
    bad = {**BASE, "models": [{"name": "n", "type": "mlp", "hiden": [3]}]}
    (problem,) = problems_of(tmp_path, bad)
    assert problem == "models[0].hiden: unknown key 'hiden'; did you mean 'hidden'?"


def test_classical_hyperparameters_use_scikit_learns_validation(tmp_path):
    bad = {**BASE, "models": [{"name": "f", "type": "random_forest", "max_depth": -1}]}
    (problem,) = problems_of(tmp_path, bad)
    assert problem.startswith("models[0]")
    assert "max_depth" in problem and "Got -1 instead" in problem


def test_duplicate_names_and_empty_models(tmp_path):
    dup = {**BASE, "models": [BASE["models"][0], BASE["models"][0]]}
    assert "models[1].name: duplicate model name 'forest'" in problems_of(tmp_path, dup)
    assert problems_of(tmp_path, {**BASE, "models": []}) == [
        "models: expected at least one model, got an empty list"
    ]


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    (problem,) = problems_of(tmp_path, "name: x\ndata: {source: [builtin\nmodels: []\n")
    assert "YAML syntax error at line" in problem and "column" in problem


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_set_overrides_are_yaml_typed_and_address_models_by_name(tmp_path):
    overrides = ["train.epochs=7", "models.net.hidden=[8, 4]", "data.split.test=0.3"]
    config = load_config(write(tmp_path, BASE), overrides)
    assert config.train.epochs == 7
    assert list(config.model("net").params.hidden) == [8, 4]
    assert config.data.split.test == 0.3


def test_set_override_errors(tmp_path):
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_overrides(["train.epochs"])
    problems = problems_of(tmp_path, BASE, ["models.nett.hidden=[1]"])
    assert "no entry named 'nett'; did you mean 'net'?" in problems[0]
    assert "train.epochs: Input should be" in problems_of(tmp_path, BASE, ["train.epochs=-1"])[0]


def test_unknown_model_name_lists_models(tmp_path):
    config = load_config(write(tmp_path, BASE))
    with pytest.raises(ConfigError, match="no model named 'fores'; did you mean 'forest'"):
        config.model("fores")


def test_dumped_config_reloads_to_the_same_config(tmp_path):
    config = load_config(write(tmp_path, BASE), ["train.epochs=4"])
    text = dump_config(config, "9.9")
    data = yaml.safe_load(text)
    assert data["ladder_version"] == "9.9"
    assert data["config_dir"] == str(tmp_path.resolve())  # where relative paths start
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(text)
    again = load_run_config(run_dir)
    assert again.model_dump() == config.model_dump()
    assert again.base_dir == tmp_path.resolve()


def test_relative_data_paths_resolve_against_the_config_folder(tmp_path):
    config = load_config(write(tmp_path, {**BASE, "data": {"source": "rows.csv"}}))
    assert config.resolve_path("rows.csv") == str(tmp_path / "rows.csv")
    assert config.resolve_path("builtin:iris") == "builtin:iris"


# ----------------------------------------------------------------------------- text

TEXT = {
    "name": "reviews",
    "data": {"source": "reviews.csv", "text": "review"},
    "text": {"tokenizer": "word", "max_length": 32},
    "train": {"epochs": 7, "optimizer": {"name": "sgd", "lr": 0.1}},
    "models": [
        {"name": "cnn", "type": "textcnn", "text": {"max_length": 16}},
        {"name": "lstm", "type": "rnn"},
        {"name": "bert", "type": "pretrained", "path": "some/model"},
    ],
}


def test_text_section_and_entry_overrides(tmp_path):
    config = load_config(write(tmp_path, TEXT))
    assert config.data.text == "review"
    cnn, lstm = config.model("cnn"), config.model("lstm")
    assert (cnn.text.tokenizer, cnn.text.max_length) == ("word", 16)  # entry text: wins
    assert (lstm.text.tokenizer, lstm.text.max_length) == ("word", 32)  # top-level text:
    assert cnn.train.optimizer.name == "sgd"  # models trained from scratch take train:


def test_pretrained_models_take_the_fine_tuning_recipe(tmp_path):
    bert = load_config(write(tmp_path, TEXT)).model("bert")
    assert (bert.train.optimizer.name, bert.train.optimizer.lr) == ("adamw", 5.0e-5)
    assert (bert.train.scheduler.name, bert.train.scheduler.warmup_fraction) == ("linear", 0.1)
    assert bert.train.epochs == 3 and bert.train.init == "default"
    # it always uses its own tokenizer, whatever the top-level text: says
    assert (bert.text.tokenizer, bert.text.tokenizer_path) == ("pretrained", "some/model")
    assert bert.text.max_length == 32


def test_a_pretrained_entry_can_set_its_own_optimizer(tmp_path):
    raw = {**TEXT, "models": [{**TEXT["models"][2], "optimizer": {"lr": 2.0e-5}, "epochs": 1}]}
    bert = load_config(write(tmp_path, raw)).model("bert")
    assert (bert.train.optimizer.name, bert.train.optimizer.lr, bert.train.epochs) == (
        "adamw",
        2.0e-5,
        1,
    )


def test_text_problems_are_reported_with_their_paths(tmp_path):
    raw = {
        **TEXT,
        "text": {"tokenizer": "sentencepiece", "max_length": 1},
        "models": [
            {"name": "cnn", "type": "textcnn", "text": {"vocab_sise": 10}},
            {"name": "bert", "type": "pretrained", "path": "x", "text": {"tokenizer": "word"}},
            {"name": "lstm", "type": "rnn", "text": "word"},
        ],
    }
    problems = problems_of(tmp_path, raw)
    text = "\n".join(problems)
    assert "text.tokenizer" in text and "sentencepiece" in text
    assert "text.max_length" in text
    assert "models[0].text.vocab_sise: unknown key 'vocab_sise'; did you mean 'vocab_size'?" in text
    assert "models[1].text.tokenizer: a pretrained model uses its own tokenizer" in text
    assert "models[2].text: expected a mapping of text settings" in text


def test_tokenizer_path_needs_the_pretrained_tokenizer(tmp_path):
    raw = {**TEXT, "text": {"tokenizer": "word", "tokenizer_path": "x"}}
    assert any(
        "tokenizer_path is used only with tokenizer: pretrained" in p
        for p in problems_of(tmp_path, raw)
    )


def test_classical_text_models_take_no_text_section(tmp_path):
    raw = {
        **TEXT,
        "models": [{"name": "cnn", "type": "textcnn"}, {"name": "t", "type": "knn", "text": {}}],
    }
    problems = problems_of(tmp_path, raw)
    assert any("models[1]" in p and "text" in p for p in problems)


def test_compress_methods_are_validated_with_their_paths(tmp_path):
    compress = [
        {"method": "quantize", "backend": "torch", "mode": "static"},
        {"method": "prune", "amount": 1.0},
        {"method": "prune", "amount": 0},
        {"method": "distill", "teacher": "net", "student": {"type": "mlp"}, "alpha": 2},
        {"method": "shrink"},
    ]
    problems = problems_of(tmp_path, {**BASE, "compress": compress})
    assert any(p.startswith("compress[0]: mode static needs backend onnxruntime") for p in problems)
    assert any(p.startswith("compress[1].amount: Input should be less than 1") for p in problems)
    assert any(p.startswith("compress[2].amount: Input should be greater than 0") for p in problems)
    assert any(
        p.startswith("compress[3].alpha: Input should be less than or equal to 1") for p in problems
    )
    assert any(p.startswith("compress[4]: Input tag 'shrink'") for p in problems)


def test_compress_references_and_students_are_checked(tmp_path):
    compress = [
        {"method": "distill", "teacher": "nett", "student": {"type": "mlp", "hiden": [4]}},
        {"method": "distill", "teacher": "net", "student": {"type": "logistic_regression"}},
        {"method": "prune", "models": ["forrest"]},
    ]
    problems = problems_of(tmp_path, {**BASE, "compress": compress})
    assert problems == [
        "compress[0].teacher: no model named 'nett'; did you mean 'net'? (models: forest, net)",
        "compress[0].student.hiden: unknown key 'hiden'; did you mean 'hidden'?",
        "compress[1].student.type: a student is trained on the teacher's logits, so it must be a "
        "neural model, got logistic_regression",
        "compress[2].models[0]: no model named 'forrest'; did you mean 'forest'? "
        "(models: forest, net)",
    ]


def test_variant_names_and_the_student_entry(tmp_path):
    compress = [
        {"method": "quantize"},
        {"method": "quantize", "mode": "static"},
        {"method": "quantize", "backend": "torch"},
        {"method": "prune", "amount": 0.9},
        {"method": "prune", "amount": 0.5, "structured": True},
        {
            "method": "distill",
            "teacher": "net",
            "student": {"type": "mlp", "hidden": [8]},
            "epochs": 7,
        },
    ]
    config = load_config(write(tmp_path, {**BASE, "compress": compress}))
    names = [m.variant_name("net") for m in config.compress[:5]]
    assert names == [
        "net+int8",
        "net+int8-static",
        "net+int8-torch",
        "net+prune90",
        "net+prune50-structured",
    ]
    student = config.student(config.compress[5])
    assert config.compress[5].variant_name() == student.name == "net→mlp"
    assert student.params.hidden == [8] and student.train.epochs == 7
    assert student.train.optimizer.name == "sgd"  # the top-level train section applies


def test_non_finite_policy_is_validated_and_decides_the_cache(tmp_path):
    from ladder.runner.cache import config_hash

    bad = {**BASE, "data": {"source": "builtin:iris", "non_finite": "skip"}}
    (problem,) = problems_of(tmp_path, bad)
    assert problem.startswith("data.non_finite:") and "'error'" in problem and "'drop'" in problem
    config = load_config(write(tmp_path, BASE))
    dropping = load_config(write(tmp_path, BASE), ["data.non_finite=drop"])
    assert config.data.non_finite == "error" and dropping.data.non_finite == "drop"
    assert config_hash(config, config.model("forest")) != config_hash(
        dropping, dropping.model("forest")
    )
