"""Every config in examples/ is valid as shipped (the README points people at them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ladder.config import load_config

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


def test_the_generation_example_is_there():
    assert "pydoc_lm.yaml" in {p.name for p in EXAMPLES}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_config_loads(path):
    config = load_config(path)
    assert config.name and config.models
