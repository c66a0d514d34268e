"""Search spaces in YAML: a `tune:` block read into typed parameters, sampled by an Optuna
trial and written back into a model entry.

A block mixes settings (scalars: `trials`, `timeout`, `pruner`, `metric`) with parameters
(mappings): `{low, high, log, step, type}` for a number, `{choices: [...]}` for a category.
A parameter is a model hyperparameter (`hidden`, `n_estimators`, `C`), a `train:` key of a
neural model (`batch_size`, `epochs`, `optimizer.lr`), or a short name for one (`lr`,
`weight_decay`, `momentum`, `optimizer`, `scheduler`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from ladder.overrides import did_you_mean

SETTINGS = ("trials", "timeout", "pruner", "metric")
PRUNERS = ("median", "hyperband", "none")
SPEC_KEYS = ("low", "high", "log", "step", "type", "choices")
# short names of nested train: keys
ALIASES = {
    "lr": "optimizer.lr",
    "weight_decay": "optimizer.weight_decay",
    "momentum": "optimizer.momentum",
    "optimizer": "optimizer.name",
    "scheduler": "scheduler.name",
}


@dataclass(frozen=True)
class Param:
    """One searched parameter: a number in [low, high] (int or float, maybe on a log scale,
    maybe in steps) or one of `choices`."""

    name: str
    kind: Literal["int", "float", "categorical"]
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def describe(self) -> dict[str, Any]:
        """The parameter as its YAML mapping."""
        if self.kind == "categorical":
            return {"choices": list(self.choices)}
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        if self.kind == "int" and not (isinstance(self.low, int) and isinstance(self.high, int)):
            out["type"] = "int"
        return out

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna trial picks for this parameter."""
        if self.kind == "categorical":
            labels = [_label(c) for c in self.choices]
            picked = trial.suggest_categorical(self.name, labels)
            return self.choices[labels.index(picked)]
        if self.kind == "int":
            step = int(self.step) if self.step is not None else 1
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=step, log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def decode(self, stored: Any) -> Any:
        """A value as Optuna stores it (a choice's label) back as the config value."""
        if self.kind != "categorical":
            return stored
        labels = [_label(c) for c in self.choices]
        return self.choices[labels.index(stored)] if stored in labels else stored


@dataclass(frozen=True)
class TuneBlock:
    """A parsed `tune:` block: the search's settings and its parameters."""

    settings: dict[str, Any]
    params: dict[str, Param]

    def merged(self, other: TuneBlock) -> TuneBlock:
        """This block with `other`'s settings and parameters taking precedence."""
        return TuneBlock({**self.settings, **other.settings}, {**self.params, **other.params})


def _label(choice: Any) -> Any:
    """How a choice is shown to Optuna: itself when it is a plain scalar, else its JSON."""
    if choice is None or isinstance(choice, bool | int | float | str):
        return choice
    return json.dumps(choice)


def canonical_name(name: str) -> str:
    """The full name of a parameter (`lr` -> `optimizer.lr`)."""
    return ALIASES.get(name, name)


def tunable_names(model_params: list[str], train_keys: list[str] | None) -> list[str]:
    """What a model type's search space may name: its hyperparameters and, for a neural type
    (`train_keys` given), the train: keys, their nested optimizer/scheduler keys and aliases."""
    names = list(model_params)
    if train_keys is not None:
        names += [k for k in train_keys if k not in ("optimizer", "scheduler")]
        names += ["optimizer.lr", "optimizer.weight_decay", "optimizer.momentum"]
        names += ["optimizer.name", "scheduler.name", "scheduler.warmup_epochs"]
        names += list(ALIASES)
    return names


def parse_block(
    block: Any, known: list[str] | None, where: str, problems: list[str]
) -> TuneBlock | None:
    """Read a `tune:` block; each problem is appended to `problems` as one line naming its
    key. `known`: the names a parameter may take (None: not checked here)."""
    if block is None:
        return TuneBlock({}, {})
    if not isinstance(block, dict):
        problems.append(f"{where}: expected a mapping of settings and parameters, got {block!r}")
        return None
    n_before = len(problems)
    settings: dict[str, Any] = {}
    params: dict[str, Param] = {}
    for key, value in block.items():
        key = str(key)
        if isinstance(value, dict):
            if known is not None and key not in known:
                hint = did_you_mean(key, known) or f" (parameters: {', '.join(known)})"
                problems.append(f"{where}.{key}: unknown parameter{hint}")
                continue
            param = parse_param(canonical_name(key), value, f"{where}.{key}", problems)
            if param is not None:
                params[param.name] = param
        elif key in SETTINGS:
            settings[key] = _setting(key, value, f"{where}.{key}", problems)
        else:
            hint = did_you_mean(key, [*SETTINGS, *(known or [])])
            problems.append(
                f"{where}.{key}: expected a setting ({', '.join(SETTINGS)}) or a parameter "
                f"mapping such as {{low: 1.0e-4, high: 0.1, log: true}} or {{choices: [...]}}, "
                f"got {value!r}{hint}"
            )
    return TuneBlock(settings, params) if len(problems) == n_before else None


def _setting(key: str, value: Any, where: str, problems: list[str]) -> Any:
    """A checked scalar setting."""
    if key == "trials" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        problems.append(f"{where}: expected a whole number >= 1, got {value!r}")
    elif key == "timeout" and (
        isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
    ):
        problems.append(f"{where}: expected seconds > 0, got {value!r}")
    elif key == "pruner" and value not in PRUNERS:
        problems.append(f"{where}: expected one of {', '.join(PRUNERS)}, got {value!r}")
    elif key == "metric" and not isinstance(value, str):
        problems.append(f"{where}: expected a metric name, got {value!r}")
    return value


def parse_param(name: str, spec: dict[str, Any], where: str, problems: list[str]) -> Param | None:
    """One parameter's mapping as a `Param`, or None with its problems appended."""
    unknown = [k for k in spec if k not in SPEC_KEYS]
    if unknown:
        key = str(unknown[0])
        problems.append(f"{where}.{key}: unknown key{did_you_mean(key, list(SPEC_KEYS))}")
        return None
    if "choices" in spec:
        choices = spec["choices"]
        extra = [k for k in spec if k != "choices"]
        if extra:
            problems.append(f"{where}: choices cannot be combined with {', '.join(extra)}")
        elif not isinstance(choices, list) or not choices:
            problems.append(f"{where}.choices: expected a non-empty list, got {choices!r}")
        else:
            return Param(name, "categorical", choices=tuple(choices))
        return None
    return _numeric(name, spec, where, problems)


def _numeric(name: str, spec: dict[str, Any], where: str, problems: list[str]) -> Param | None:
    """A number parameter: low and high required, low <= high, log needs low > 0."""
    missing = [k for k in ("low", "high") if k not in spec]
    if missing:
        problems.append(
            f"{where}: expected low and high (or choices), missing {' and '.join(missing)}"
        )
        return None
    low, high, step = spec["low"], spec["high"], spec.get("step")
    log, kind = spec.get("log", False), spec.get("type")
    for key, value in (("low", low), ("high", high), ("step", step)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            problems.append(f"{where}.{key}: expected a number, got {value!r}")
            return None
    if not isinstance(log, bool):
        problems.append(f"{where}.log: expected true or false, got {log!r}")
        return None
    if kind not in (None, "int", "float"):
        problems.append(f"{where}.type: expected int or float, got {kind!r}")
        return None
    if not (math.isfinite(low) and math.isfinite(high)):
        problems.append(f"{where}: low and high must be finite numbers, got {low!r} and {high!r}")
        return None
    if low > high:
        problems.append(f"{where}: low must be <= high, got low {low!r} > high {high!r}")
        return None
    if log and low <= 0:
        problems.append(f"{where}: log: true needs low > 0, got low {low!r}")
        return None
    if step is not None and (step <= 0 or log):
        why = "cannot be combined with log: true" if log else f"must be > 0, got {step!r}"
        problems.append(f"{where}.step: {why}")
        return None
    if kind is None:
        kind = "int" if all(isinstance(v, int) for v in (low, high, step or 1)) else "float"
    if kind == "int":
        return Param(name, "int", int(low), int(high), log, int(step) if step else None)
    return Param(name, "float", float(low), float(high), log, float(step) if step else None)


def suggest(trial: Any, params: dict[str, Param]) -> dict[str, Any]:
    """The values `trial` picks for every parameter, by full name."""
    return {name: param.suggest(trial) for name, param in params.items()}


def apply_values(entry: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of a raw model entry with the picked values set (dotted names nested:
    `optimizer.lr` sets `lr` inside the entry's `optimizer` mapping)."""
    out = json.loads(json.dumps(entry))
    for name, value in values.items():
        *parents, leaf = name.split(".")
        target = out
        for part in parents:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        target[leaf] = value
    return out


def signature(params: dict[str, Param]) -> str:
    """The search space as canonical JSON (two studies share a space when these are equal)."""
    return json.dumps({n: params[n].describe() for n in sorted(params)}, sort_keys=True)
