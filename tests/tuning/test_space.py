"""Search spaces: parsing a tune: block, its one-line errors, sampling and writing values back."""

from __future__ import annotations

import optuna
import pytest

from ladder.config import validate_config
from ladder.errors import ConfigError
from ladder.registry import MODEL_TYPES
from ladder.tuning.defaults import DEFAULT_SPACES
from ladder.tuning.space import Param, apply_values, parse_block, signature, suggest

KNOWN = ["hidden", "dropout", "optimizer.lr", "lr", "batch_size"]


def parse(block, known=KNOWN):
    problems: list[str] = []
    return parse_block(block, known, "models[0].tune", problems), problems


def test_a_block_splits_settings_from_parameters_and_types_them():
    block, problems = parse(
        {
            "trials": 12,
            "pruner": "hyperband",
            "lr": {"low": 1e-4, "high": 1e-1, "log": True},
            "hidden": {"choices": [[64], [128, 64]]},
            "dropout": {"low": 0, "high": 0.5},
            "batch_size": {"low": 16, "high": 128, "step": 16},
        }
    )
    assert problems == []
    assert block.settings == {"trials": 12, "pruner": "hyperband"}
    assert block.params["optimizer.lr"] == Param("optimizer.lr", "float", 1e-4, 1e-1, log=True)
    assert block.params["hidden"].kind == "categorical"
    assert block.params["dropout"].kind == "float"  # one bound is a float
    assert block.params["batch_size"] == Param("batch_size", "int", 16, 128, step=16)


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            {"hiden": {"choices": [[64]]}},
            "models[0].tune.hiden: unknown parameter; did you mean 'hidden'?",
        ),
        ({"lr": {"low": 0.1, "high": 0.01}}, "models[0].tune.lr: low must be <= high"),
        ({"lr": {"low": 0, "high": 0.1, "log": True}}, "log: true needs low > 0, got low 0"),
        ({"hidden": {"choices": []}}, "models[0].tune.hidden.choices: expected a non-empty list"),
        ({"lr": {"low": 0.1}}, "expected low and high (or choices), missing high"),
        (
            {"lr": {"low": 0.1, "hihg": 1}},
            "models[0].tune.lr.hihg: unknown key; did you mean 'high'?",
        ),
        ({"trials": 0}, "models[0].tune.trials: expected a whole number >= 1, got 0"),
        ({"pruner": "sometimes"}, "expected one of median, hyperband, none"),
        ({"lr": 0.1}, "expected a setting (trials, timeout, pruner, metric) or a parameter"),
        ({"dropout": {"low": "a", "high": 1}}, "models[0].tune.dropout.low: expected a number"),
    ],
)
def test_each_bad_block_gives_one_line_naming_the_key(block, expected):
    parsed, problems = parse(block)
    assert parsed is None
    assert len(problems) == 1
    assert expected in problems[0]
    assert "\n" not in problems[0]


def test_suggested_values_stay_in_their_space_and_lists_come_back_as_lists():
    block, _ = parse(
        {
            "lr": {"low": 1e-4, "high": 1e-1, "log": True},
            "hidden": {"choices": [[64], [128, 64]]},
            "batch_size": {"low": 16, "high": 128, "step": 16},
        }
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(20):
        values = suggest(study.ask(), block.params)
        assert 1e-4 <= values["optimizer.lr"] <= 1e-1
        assert values["hidden"] in ([64], [128, 64])
        assert values["batch_size"] % 16 == 0 and 16 <= values["batch_size"] <= 128
        seen.add(tuple(values["hidden"]))
    assert seen == {(64,), (128, 64)}
    # what Optuna stores for a list choice is its JSON, and decodes back to the list
    assert block.params["hidden"].decode("[128, 64]") == [128, 64]


def test_values_are_written_into_the_entry_with_dotted_names_nested():
    entry = {"name": "mlp", "type": "mlp", "optimizer": {"name": "sgd", "momentum": 0.9}}
    out = apply_values(entry, {"optimizer.lr": 0.01, "hidden": [32]})
    assert out == {
        "name": "mlp",
        "type": "mlp",
        "optimizer": {"name": "sgd", "momentum": 0.9, "lr": 0.01},
        "hidden": [32],
    }
    assert entry["optimizer"] == {"name": "sgd", "momentum": 0.9}  # the original is untouched


def test_the_signature_is_the_same_for_the_same_space_in_another_order():
    a, _ = parse(
        {"lr": {"low": 1e-4, "high": 1e-1, "log": True}, "dropout": {"low": 0, "high": 0.5}}
    )
    b, _ = parse(
        {"dropout": {"low": 0, "high": 0.5}, "lr": {"low": 1e-4, "high": 1e-1, "log": True}}
    )
    c, _ = parse({"dropout": {"low": 0, "high": 0.4}})
    assert signature(a.params) == signature(b.params) != signature(c.params)


def test_every_registered_model_type_has_a_valid_default_space():
    from ladder.config import tunable_of

    assert set(MODEL_TYPES) <= set(DEFAULT_SPACES), set(MODEL_TYPES) - set(DEFAULT_SPACES)
    for model_type in MODEL_TYPES:
        problems: list[str] = []
        block = parse_block(
            DEFAULT_SPACES[model_type], tunable_of(model_type), model_type, problems
        )
        assert problems == [] and block is not None, problems
        if model_type != "mean":  # a constant predictor has nothing to tune
            assert block.params, model_type


def config_with(models, tune=None):
    raw = {"name": "t", "data": {"source": "x.csv"}, "models": models}
    if tune is not None:
        raw["tune"] = tune
    return validate_config(raw)


def test_the_config_checks_tune_blocks_of_entries_and_the_top_level():
    config = config_with(
        [
            {
                "name": "mlp",
                "type": "mlp",
                "tune": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}},
            },
            {"name": "logreg", "type": "logistic_regression"},
        ],
        tune={"trials": 5, "C": {"low": 0.1, "high": 10}},
    )
    assert config.model("mlp").tune.params["optimizer.lr"].log
    with pytest.raises(ConfigError) as caught:
        config_with(
            [{"name": "lr", "type": "logistic_regression", "tune": {"lr": {"low": 1, "high": 2}}}]
        )
    assert "models[0].tune.lr: unknown parameter" in str(caught.value)
    # a top-level parameter no model has
    with pytest.raises(ConfigError) as caught:
        config_with([{"name": "m", "type": "mlp"}], tune={"n_estimator": {"low": 1, "high": 2}})
    assert "tune.n_estimator: unknown parameter" in str(caught.value)
