"""The config completed and checked for its task, once the task is known (`data.task: auto` is
decided from the data): options that do not fit the task are one-line errors naming them."""

from __future__ import annotations

import difflib

from ladder.config import Config
from ladder.errors import ConfigError
from ladder.models.classical import task_param_problems, tasks_of
from ladder.registry import MODEL_TYPES
from ladder.tasks.base import Task

_LOSSES = {
    "classification": ("cross_entropy",),
    "regression": ("mse", "mae", "huber"),
    "generation": ("cross_entropy",),
    "seq2seq": ("cross_entropy",),
}


def with_task(config: Config, task: Task) -> Config:
    """`config` with `data.task` set to `task`, the task's default metrics and primary metric
    filled in and, for a task without classes, `data.split.stratify` off (so the run folder's
    config.yaml reloads for `ladder compress`); ConfigError listing every option that does not
    fit the task."""
    problems = task_problems(config, task)
    if problems:
        raise ConfigError(problems)
    evaluate = config.evaluate.model_copy(
        update={
            "metrics": list(config.evaluate.metrics or task.default_metrics),
            "primary": config.evaluate.primary or task.default_primary,
        }
    )
    data = config.data.model_copy(update={"task": task.name})
    if task.name != "classification":  # no classes to stratify: the saved config says so
        data = data.model_copy(update={"split": data.split.model_copy(update={"stratify": False})})
    return config.model_copy(update={"data": data, "evaluate": evaluate})


def task_problems(config: Config, task: Task) -> list[str]:
    """One line per option of `config` that `task` cannot honour."""
    problems = []
    data, evaluate = config.data, config.evaluate
    where = f"data.task is {task.name}"
    if task.name == "generation":
        problems += _generation_problems(config, where)
    elif task.name == "seq2seq":
        problems += _seq2seq_problems(config, where)
    elif task.name == "regression":
        if data.balance != "none":
            problems.append(
                f"data.balance: {data.balance} balances classes, and a regression target has "
                f"none ({where}); remove data.balance"
            )
        if "stratify" in data.split.model_fields_set and data.split.stratify:
            problems.append(
                f"data.split.stratify: a regression target has no classes to stratify ({where}); "
                "remove it"
            )
    if task.name != "regression":
        if data.target_transform != "none":
            problems.append(
                f"data.target_transform: {data.target_transform} transforms a numeric target "
                f"({where}); remove it or set data.task: regression"
            )
        if evaluate.intervals is not None:
            problems.append(
                f"evaluate.intervals: prediction intervals are for regression ({where}); remove it"
            )
    if task.name not in ("generation", "seq2seq"):
        for raw in config.models:
            entry = config.model(raw["name"])
            if entry.text.tokenizer == "char":
                problems.append(
                    f"models.{entry.name}.text.tokenizer: char is for generation ({where}); "
                    "use wordpiece, bpe or word"
                )
    for name in evaluate.metrics or []:
        if name not in task.metric_names:
            problems.append(_unknown("evaluate.metrics", name, task))
    if evaluate.primary is not None and evaluate.primary not in task.metric_names:
        problems.append(_unknown("evaluate.primary", evaluate.primary, task))
    if evaluate.intervals is not None and data.split.val == 0:
        problems.append(
            "evaluate.intervals: conformal intervals are calibrated on the validation split; "
            "set data.split.val > 0"
        )
    for raw in config.models:
        entry = config.model(raw["name"])
        spec = MODEL_TYPES[entry.type]
        if task.name not in spec.tasks:
            problems.append(
                f"models.{entry.name}.type: {entry.type} learns {' or '.join(spec.tasks)}, and "
                f"{where}; {_models_for(task)}"
            )
        if task.name in spec.tasks and tasks_of(entry.type):  # the scikit-learn-style types
            params = entry.params.model_dump()
            problems += [
                f"models.{entry.name}.{line}"
                for line in task_param_problems(entry.type, params, task.name)
            ]
        loss = entry.train.loss
        if spec.trains_with_trainer and loss != "auto" and loss not in _LOSSES[task.name]:
            problems.append(
                f"models.{entry.name}.train.loss: {loss} does not fit {task.name} ({where}); "
                f"use {' or '.join(_LOSSES[task.name])}"
            )
    return problems


def _generation_problems(config: Config, where: str) -> list[str]:
    """Options that a language model of a corpus cannot honour."""
    data, problems = config.data, []
    if data.balance != "none":
        problems.append(f"data.balance: text has no classes to balance ({where}); remove it")
    if "stratify" in data.split.model_fields_set and data.split.stratify:
        problems.append(f"data.split.stratify: text has no classes ({where}); remove it")
    if data.test_source is not None:
        problems.append(
            f"data.test_source: a corpus is split into contiguous parts ({where}); remove it "
            "and set data.split.test"
        )
    if config.evaluate.cv is not None:
        problems.append(
            f"evaluate.cv: cross-validation needs exchangeable rows, and a corpus is split into "
            f"contiguous parts ({where}); remove it"
        )
    for method in config.compress:
        if method.method != "quantize":
            problems.append(
                f"compress: {method.method} is not available for language models ({where}); "
                "quantize (onnxruntime, dynamic) is"
            )
    for raw in config.models:
        entry = config.model(raw["name"])
        if entry.text.tokenizer == "word":
            problems.append(
                f"models.{entry.name}.text.tokenizer: word cannot spell unseen words ({where}); "
                "use char, bpe or pretrained"
            )
    return problems


def _seq2seq_problems(config: Config, where: str) -> list[str]:
    """Options that a model of source -> target texts cannot honour."""
    data, problems = config.data, []
    if data.balance != "none":
        problems.append(f"data.balance: text pairs have no classes to balance ({where}); remove it")
    if "stratify" in data.split.model_fields_set and data.split.stratify:
        problems.append(f"data.split.stratify: text pairs have no classes ({where}); remove it")
    if data.test_source is not None:
        problems.append(
            f"data.test_source: seq2seq pairs are split by data.split.test ({where}); remove it"
        )
    if config.evaluate.cv is not None:
        problems.append(
            f"evaluate.cv: cross-validation is not available for seq2seq ({where}); remove it "
            "and use the bootstrap intervals of the test split"
        )
    for method in config.compress:
        if method.method != "quantize" or method.backend != "onnxruntime":
            problems.append(
                f"compress: {method.method} ({getattr(method, 'backend', '')}) is not available "
                f"for seq2seq models ({where}); quantize (onnxruntime, dynamic) is"
            )
    for raw in config.models:
        entry = config.model(raw["name"])
        if entry.text.tokenizer == "word":
            problems.append(
                f"models.{entry.name}.text.tokenizer: word cannot spell unseen words ({where}); "
                "use char or bpe"
            )
    return problems


def _unknown(option: str, name: str, task: Task) -> str:
    close = difflib.get_close_matches(name, task.metric_names, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return (
        f"{option}: '{name}' is not a {task.name} metric; {hint}"
        f"choose from {', '.join(task.metric_names)}"
    )


def _models_for(task: Task) -> str:
    names = [name for name in MODEL_TYPES if task.name in MODEL_TYPES[name].tasks]
    return f"types for {task.name}: {', '.join(names)}"
