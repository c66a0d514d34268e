"""What every compression method shares: the run it works on and the variant it makes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ladder.config import Config, ModelEntry
from ladder.run_folder import model_dir


@dataclass
class CompressContext:
    """A finished run, its data loaded and split exactly as when its models were trained."""

    config: Config
    run_dir: Path
    data: Any  # ladder.runner.prepare.PreparedData
    entries: dict[str, ModelEntry]

    def artifact(self, model: str) -> Path:
        """The artifact folder of a model (original or variant) of the run."""
        return self.model_dir(model) / "artifact"

    def model_dir(self, model: str) -> Path:
        """The folder of a model (original or variant) in the run."""
        return model_dir(self.run_dir, model)


@dataclass
class Variant:
    """A compressed model a method wrote to `<run>/models/<name>/artifact`.

    `params` and `train_seconds` default to the original's; `details` (e.g. sparsity) go into
    the variant's metrics.json; `history` (fine-tuning epochs) into its learning curve."""

    name: str
    original: str
    model_type: str
    params: int | None = None
    train_seconds: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
