"""`--set KEY=VALUE` overrides: parsed as YAML values and applied to the raw config by dotted
path (`models.NAME.key` addresses a model by its name)."""

from __future__ import annotations

import difflib
from typing import Any

import yaml

from ladder.errors import ConfigError


def did_you_mean(word: str, choices: list[str]) -> str:
    """ "; did you mean 'x'?" for the closest of `choices`, or ""."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def parse_overrides(overrides: dict[str, Any] | list[str] | None) -> dict[str, Any]:
    """`["train.epochs=3"]` or `{"train.epochs": 3}` -> {dotted key: YAML-typed value}."""
    if overrides is None:
        return {}
    if isinstance(overrides, dict):
        return dict(overrides)
    parsed: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError([f"--set {item!r}: expected KEY=VALUE, e.g. train.epochs=3"])
        try:
            parsed[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError([f"--set {item!r}: value is not valid YAML ({exc})"]) from exc
    return parsed


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Set dotted keys in the raw config; `models.NAME.key` addresses a model by its name."""
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node: Any = raw
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                node = _list_item(node, part, ".".join(parts[: i + 1]))
                continue
            if not isinstance(node.get(part), dict | list):
                node[part] = {}
            node = node[part]
        last = parts[-1]
        if isinstance(node, list):
            raise ConfigError([f"--set {dotted}: cannot replace a whole list entry; name a key"])
        node[last] = value


def _list_item(items: list[Any], key: str, where: str) -> Any:
    if key.isdigit() and int(key) < len(items):
        return items[int(key)]
    for item in items:
        if isinstance(item, dict) and item.get("name") == key:
            return item
    names = [str(i.get("name")) for i in items if isinstance(i, dict)]
    raise ConfigError(
        [f"--set {where}: no entry named '{key}'{did_you_mean(key, names)} (names: {names})"]
    )
