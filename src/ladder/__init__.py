"""ladder: one YAML config takes a dataset up a ladder of models, from decision trees to
pretrained Transformers, to an honest comparison and a deployable artifact."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "LadderError",
    "LadderRegressor",
    "NeuralClassifier",
    "__version__",
    "load",
    "load_config",
    "run",
    "train",
]

if TYPE_CHECKING:
    from ladder.config import load_config
    from ladder.errors import LadderError
    from ladder.export.loading import load
    from ladder.models.estimator import LadderRegressor, NeuralClassifier
    from ladder.runner.ladder import run, train

_LAZY = {
    "load": "ladder.export.loading",
    "load_config": "ladder.config",
    "run": "ladder.runner.ladder",
    "train": "ladder.runner.ladder",
    "LadderError": "ladder.errors",
    "NeuralClassifier": "ladder.models.estimator",
    "LadderRegressor": "ladder.models.estimator",
}


def __getattr__(name: str) -> Any:
    """Import public names on first use, so `import ladder` stays light."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ladder' has no attribute {name!r}")
