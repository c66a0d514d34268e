"""The torch module an artifact describes, built from its manifest: the float model that
`ladder.export.artifact` puts the weights in and `ladder.export.int8` quantizes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ladder.errors import ArtifactError
from ladder.registry import MODEL_TYPES


def neural_architecture(folder: Path, manifest: dict[str, Any]) -> Any:
    """The artifact's torch module, built from its manifest (and its own files, for a
    pretrained model) but not yet holding the artifact's weights."""
    model_type = manifest["model_type"]
    if model_type not in MODEL_TYPES:
        raise ArtifactError(f"{folder}: unknown model type {model_type!r} in manifest")
    spec = MODEL_TYPES[model_type]
    config = spec.config_cls.model_validate(manifest["model_config"])
    n_classes = 1 if manifest.get("task") == "regression" else len(manifest["labels"])
    if spec.load_module is not None:  # the architecture comes from the artifact's own files
        return spec.load_module(config, folder, n_classes)
    return spec.build(config, tuple(manifest["feature_shape"]), n_classes)
