"""Model registry: the `type` string of a config entry -> its config class and builder.

The type string and the validated config are saved in every manifest, so loading an artifact
needs nothing but this table: no user code runs.
"""

from __future__ import annotations

from typing import Any

from ladder.models.spec import DataKind, Family, ModelSpec

__all__ = [
    "MODEL_TYPES",
    "DataKind",
    "Family",
    "ModelSpec",
    "describe_models",
    "get_spec",
    "parameter_defaults",
]


def _classical_specs() -> list[ModelSpec]:
    from ladder.models import classical, tfidf

    return [*classical.SPECS, *classical.BOOSTING_SPECS, *tfidf.SPECS]


def _neural_specs() -> list[ModelSpec]:
    from ladder.models import cnn, mlp, pretrained, rnn, scratch_models, textcnn, transformer

    pytorch = [mlp.SPEC, cnn.SPEC, textcnn.SPEC, rnn.SPEC, transformer.SPEC, pretrained.SPEC]
    return [*pytorch, *scratch_models.SPECS]


def _language_specs() -> list[ModelSpec]:
    from ladder.models import language

    return language.specs()


def _seq2seq_specs() -> list[ModelSpec]:
    from ladder.models import seq2seq

    return seq2seq.specs()


class _Registry(dict[str, ModelSpec]):
    """Filled on first use so that importing ladder (and `ladder --help`) stays instant."""

    def _fill(self) -> None:
        if not dict.__len__(self):
            for spec in [
                *_classical_specs(),
                *_neural_specs(),
                *_language_specs(),
                *_seq2seq_specs(),
            ]:
                dict.__setitem__(self, spec.type, spec)

    def __getitem__(self, key: str) -> ModelSpec:
        self._fill()
        return dict.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        self._fill()
        return dict.__contains__(self, key)

    def __iter__(self):  # type: ignore[override]
        self._fill()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._fill()
        return dict.__len__(self)


MODEL_TYPES: dict[str, ModelSpec] = _Registry()


def get_spec(model_type: str) -> ModelSpec:
    """The spec registered under `model_type` (KeyError if unknown; config validation checks)."""
    return MODEL_TYPES[model_type]


def parameter_defaults(model_type: str) -> dict[str, Any]:
    """The hyperparameters of `model_type` with their defaults (None: required)."""
    spec = MODEL_TYPES[model_type]
    if spec.family == "classical" and not {"generation", "seq2seq"} & set(spec.tasks):
        from ladder.models.classical import default_params

        return default_params(model_type)
    return {
        key: (None if field.is_required() else field.get_default(call_default_factory=True))
        for key, field in spec.config_cls.model_fields.items()
    }


def describe_models() -> list[dict[str, Any]]:
    """Each registered type with its family, summary and parameters with their defaults."""
    return [
        {
            "type": name,
            "family": MODEL_TYPES[name].family,
            "summary": MODEL_TYPES[name].summary,
            "params": parameter_defaults(name),
        }
        for name in MODEL_TYPES
    ]
