"""`NeuralEstimator`: what ladder's scikit-learn estimators share (`NeuralClassifier` and
`LadderRegressor` in `ladder.models.estimator`).

`__init__` only stores its arguments; `fit` validates them (the model's pydantic config and
`TrainConfig`, every problem at once), builds the module from the registry and trains it with
ladder's `Trainer`; learned state ends in `_`.

Hyperparameters are keyword arguments in three groups, all visible to `get_params`/`set_params`:
the model's own (`hidden`, `dropout` for mlp; `arch`, `channels` for cnn), the training keys of
`TrainConfig` (`epochs`, `batch_size`, `init`, `l1`, `grad_clip`, `precision`, `loss`, ...),
and the fields of its sections as `section__field` (`optimizer__lr=0.01`,
`scheduler__name="cosine"`, `early_stopping__patience=3`). As in skorch, they arrive through
`**params`, so `get_params` and `set_params` are overridden: scikit-learn's defaults only see
the signature.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ValidationError
from sklearn.base import BaseEstimator  # noqa: TID253
from sklearn.utils import check_random_state  # noqa: TID253
from sklearn.utils.validation import check_is_fitted, validate_data  # noqa: TID253

from ladder.config import TrainConfig, format_validation_error
from ladder.data.images import resize_images
from ladder.errors import LadderError, TrainingInterrupted
from ladder.models.classical import ESTIMATORS
from ladder.models.spec import TaskName
from ladder.registry import MODEL_TYPES, ModelSpec
from ladder.train import ProgressBar
from ladder.train.objective import Objective
from ladder.train.setup import TrainerSetup

# TrainConfig keys that need a run folder or torchrun; the estimator trains in memory.
UNSUPPORTED_TRAIN_KEYS = frozenset({"checkpoint_every_steps", "strategy"})
# Differs from TrainConfig: there is no validation split unless `validation_fraction` is set.
TRAIN_DEFAULTS: dict[str, Any] = {"early_stopping": None}


@dataclass(frozen=True)
class FitPlan:
    """The validated settings of one fit."""

    spec: ModelSpec
    model_cfg: Any  # the model's pydantic config
    train_cfg: TrainConfig
    device: str
    seed: int
    validation_fraction: float | None


class NeuralEstimator(BaseEstimator):
    """What every neural estimator shares: parameters, configs, device, seed, the validation
    split, input shaping, building and training the module. A subclass names its task, the
    losses it accepts and its objective, and writes `fit` and its predict methods.

    Args:
        model: a neural model type of the registry (`ladder list models`), e.g. mlp or cnn.
        device: cpu, cuda (or cuda:N) or auto (cuda when available).
        random_state: int seed of initialisation, dropout and shuffling (fits on CPU repeat
            exactly); a RandomState or None draws the seed from it (None: numpy's global RNG).
        verbose: show a progress bar per epoch (only in a terminal).
        validation_fraction: hold out this fraction of the training rows for `val_loss`
            (and the subclass's validation metrics) and early stopping.
        **params: the model's hyperparameters, TrainConfig keys and `section__field` keys
            (see the module docstring). Early stopping is off unless `early_stopping` or an
            `early_stopping__*` key is given.

    Attributes (after fit): n_features_in_ (feature_names_in_ for DataFrames), input_shape_
    (one sample's shape), module_ (the trained `nn.Module`, eval mode), history_ (one row per
    epoch), model_type_, model_config_ and train_config_ (the validated configs).
    """

    _task: ClassVar[TaskName]
    _losses: ClassVar[tuple[str, ...]]  # the TrainConfig `loss` values that fit the task

    def __init__(
        self,
        model: str = "mlp",
        *,
        device: str = "cpu",
        random_state: int | np.random.RandomState | None = 0,
        verbose: bool = False,
        validation_fraction: float | None = None,
        **params: Any,
    ) -> None:
        self.model = model
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.validation_fraction = validation_fraction
        # private, so that scikit-learn's "attributes set in init" check sees only the signature
        self._params = params

    def _objective(self, train_cfg: TrainConfig) -> Objective:
        """The Trainer's loss and prediction rule (fit and predict)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------- parameters

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The signature's arguments and every keyword given (no nested estimators: deep alike)."""
        signature = {key: getattr(self, key) for key in self._get_param_names()}
        return {**signature, **self._params}

    def set_params(self, **params: Any) -> NeuralEstimator:
        """Set parameters by name (`hidden=[64]`, `optimizer__lr=0.01`); values are checked in fit.

        Names are checked now, against the `model` in `params` (or the current one).
        """
        valid = self._valid_param_names(params.get("model", self.model))
        for key in params:
            if key not in valid:
                raise ValueError(self._unknown_param(key, valid))
        signature = self._get_param_names()
        for key, value in params.items():
            if key in signature:
                setattr(self, key, value)
            else:
                self._params[key] = value
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        tags.non_deterministic = self.random_state is None
        return tags

    def _valid_param_names(self, model: Any) -> list[str]:
        """Every parameter name this estimator accepts with `model`.

        For a `model` that is not a neural type (checked in fit), the model keys of every
        neural type are accepted, so that `set_params(model=..., hidden=...)` never fails on
        the order.
        """
        types = [model] if isinstance(model, str) and model in neural_types() else neural_types()
        model_keys = [k for t in types for k in MODEL_TYPES[t].config_cls.model_fields]
        train_keys = [k for k in TrainConfig.model_fields if k not in UNSUPPORTED_TRAIN_KEYS]
        nested = [
            f"{key}__{field}"
            for key in train_keys
            if (section := _section_cls(key)) is not None
            for field in section.model_fields
        ]
        signature = self._get_param_names()
        return list(dict.fromkeys([*signature, *model_keys, *train_keys, *nested]))

    def _unknown_param(self, key: str, valid: list[str]) -> str:
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return (
            f"Invalid parameter {key!r} for estimator {self._name()}{hint} "
            f"Valid parameters are: {valid}."
        )

    # ------------------------------------------------------------------------- fit / predict

    def _plan(self) -> FitPlan:
        """Every parameter checked, before the data is looked at; ValueError otherwise."""
        spec = _neural_spec(self.model, type(self).__name__, self._task)
        model_cfg, train_cfg = self._configs(spec)
        device, seed = self._resolve_device(), self._seed()
        return FitPlan(
            spec, model_cfg, train_cfg, device, seed, self._validation_fraction(train_cfg)
        )

    def _train(
        self,
        plan: FitPlan,
        X: np.ndarray,
        y: np.ndarray,
        split: tuple[np.ndarray, np.ndarray] | None,
        n_outputs: int,
        *,
        class_weights: np.ndarray | None = None,
        val_metrics: Any = None,
    ) -> None:
        """Build a new module and train it on X, y (rows `split[0]`, validating on `split[1]`);
        sets module_, history_, input_shape_ and the configs."""
        import torch

        X = self._as_model_input(X, plan.spec)
        input_shape = tuple(X.shape[1:])
        X = _resized(X, plan.model_cfg)
        X_val = y_val = None
        if split is not None:
            rows, val_rows = split
            X, y, X_val, y_val = X[rows], y[rows], X[val_rows], y[val_rows]
        with torch.random.fork_rng(devices=_cuda_indices(plan.device)):  # leave global RNGs
            torch.manual_seed(plan.seed)
            build = plan.spec.builder(self._task)
            module = build(plan.model_cfg, tuple(X.shape[1:]), n_outputs)
            try:
                setup = TrainerSetup(
                    objective=self._objective(plan.train_cfg),
                    seed=plan.seed,
                    class_weights=class_weights,
                    val_metrics=val_metrics if X_val is not None else None,
                )
                callbacks = [ProgressBar()] if self.verbose else []
                trainer = setup.trainer(module, plan.train_cfg, plan.device, callbacks)
                history = trainer.fit(X, y, X_val, y_val)
            except TrainingInterrupted:
                raise
            except LadderError as exc:  # e.g. fp16 on CPU: a parameter problem for sklearn users
                raise ValueError(str(exc)) from exc
        self.input_shape_, self.module_, self.history_ = input_shape, module.eval(), history
        self.model_type_ = plan.spec.type
        self.model_config_, self.train_config_ = plan.model_cfg, plan.train_cfg

    def _outputs(self, X: Any) -> np.ndarray:
        """The objective's predictions of the trained module for X (probabilities, or
        standardised values)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, allow_nd=True, reset=False)
        X = self._as_model_input(X, MODEL_TYPES[self.model_type_])
        if tuple(X.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"X has samples of shape {tuple(X.shape[1:])}, but {type(self).__name__} was "
                f"fitted on samples of shape {self.input_shape_}"
            )
        X = _resized(X, self.model_config_)
        device = next(self.module_.parameters()).device
        setup = TrainerSetup(self._objective(self.train_config_))
        return setup.trainer(self.module_, self.train_config_, device).predict(X)

    # ------------------------------------------------------------------------- helpers

    def _configs(self, spec: ModelSpec) -> tuple[BaseModel, TrainConfig]:
        """The model's config and TrainConfig from the params; ValueError lists every problem."""
        valid = self._valid_param_names(spec.type)
        unknown = [key for key in self._params if key not in valid]
        if unknown:
            raise ValueError(self._unknown_param(unknown[0], valid))
        model_raw = {k: v for k, v in self._params.items() if k in spec.config_cls.model_fields}
        train_raw: dict[str, Any] = dict(TRAIN_DEFAULTS)
        train_raw.update({k: v for k, v in self._params.items() if k in TrainConfig.model_fields})
        problems: list[str] = []
        for key, value in self._params.items():
            section, sep, field = key.partition("__")
            if not sep:
                continue
            base = train_raw.get(section)
            if isinstance(base, BaseModel):
                base = base.model_dump()
            if base is not None and not isinstance(base, dict):
                problems.append(f"{key}: {section} is {base!r}, not a mapping to set {field} in")
                continue
            train_raw[section] = {**(base or {}), field: value}
        model_cfg = _validated(spec.config_cls, model_raw, problems)
        train_cfg = _validated(TrainConfig, train_raw, problems)
        if train_cfg is not None and train_cfg.loss not in self._losses:
            allowed = " or ".join(repr(loss) for loss in self._losses if loss != "auto")
            problems.append(f"loss: {train_cfg.loss!r} is not a {self._task} loss; use {allowed}")
        if problems:
            raise ValueError(f"invalid parameters of {self._name()}: " + "; ".join(problems))
        return model_cfg, train_cfg

    def _as_model_input(self, X: np.ndarray, spec: ModelSpec) -> np.ndarray:
        """X as the module takes it: images (N, C, H, W) for image models; float32, writable."""
        if spec.inputs == ("image",):
            if X.ndim == 3:  # (N, H, W) grayscale
                X = X[:, None]  # (N, 1, H, W)
            if X.ndim != 4:
                raise ValueError(
                    f"{self._name()} needs images: X of shape (n_samples, channels, height, "
                    f"width) or (n_samples, height, width); got X of shape {X.shape}"
                )
        # torch warns on read-only arrays (e.g. memory-mapped data): take a writable copy then
        return np.require(X, dtype=np.float32, requirements=["C", "W"])

    def _resolve_device(self) -> str:
        import torch

        device = self.device
        if device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        try:
            parsed = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(
                f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto'; got {device!r}"
            ) from exc
        if parsed.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was requested but no CUDA device is available")
        return str(parsed)

    def _seed(self) -> int:
        if isinstance(self.random_state, (int, np.integer)) and not isinstance(
            self.random_state, bool
        ):
            return int(self.random_state)
        try:
            rng = check_random_state(self.random_state)
        except ValueError as exc:
            raise ValueError(
                f"random_state must be an int, a numpy RandomState or None; "
                f"got {self.random_state!r}"
            ) from exc
        return int(rng.randint(np.iinfo(np.int32).max))

    def _validation_fraction(self, train_cfg: TrainConfig) -> float | None:
        fraction = self.validation_fraction
        if fraction is not None and (
            isinstance(fraction, bool)
            or not isinstance(fraction, (int, float))
            or not 0 < fraction < 1
        ):
            raise ValueError(f"validation_fraction must be None or in (0, 1); got {fraction!r}")
        stopping = train_cfg.early_stopping
        if fraction is None and stopping is not None and stopping.monitor.startswith("val_"):
            raise ValueError(
                f"early_stopping monitors {stopping.monitor!r} but there is no validation data; "
                "set validation_fraction (e.g. 0.1) or early_stopping__monitor='train_loss'"
            )
        return fraction

    def _name(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"


# ----------------------------------------------------------------------------- names


def neural_types() -> list[str]:
    """The registry's neural model types that take numeric arrays (tabular rows or images);
    text models need a tokenizer fitted by the pipeline, so `ladder run` trains those."""
    return [
        name
        for name in MODEL_TYPES
        if MODEL_TYPES[name].trains_with_trainer and "text" not in MODEL_TYPES[name].inputs
    ]


def _section_cls(key: str) -> type[BaseModel] | None:
    """The config class of TrainConfig's field `key` when it is a section (optimizer, ...)."""
    annotation = TrainConfig.model_fields[key].annotation
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _neural_spec(model: Any, owner: str, task: TaskName) -> ModelSpec:
    """The registry spec of a neural `model` that learns `task`; ValueError naming the neural
    types otherwise (`owner`: the estimator's class name)."""
    neural = ", ".join(neural_types())
    if not isinstance(model, str) or model not in MODEL_TYPES:
        close = difflib.get_close_matches(str(model), neural_types(), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown model type {model!r}{hint} (neural types: {neural})")
    spec = MODEL_TYPES[model]
    if not spec.trains_with_trainer:
        if task == "classification":
            module, cls = ESTIMATORS.get(model, ("sklearn", model))
            instead = f"scikit-learn's {module}.{cls}"
        else:
            instead = f"a scikit-learn {task} model"
        raise ValueError(
            f"model={model!r} is a classical model; {owner} takes a neural type "
            f"({neural}). Use {instead} directly."
        )
    if "text" in spec.inputs:
        raise ValueError(
            f"model={model!r} is a text model; {owner} takes numeric arrays ({neural}). "
            "Train text models with `ladder run` (it fits their tokenizer)."
        )
    if task not in spec.tasks:
        raise ValueError(f"model={model!r} learns {' or '.join(spec.tasks)}, not {task}")
    return spec


# ----------------------------------------------------------------------------- fit helpers


def _validated(cls: type[BaseModel], raw: dict[str, Any], problems: list[str]) -> Any:
    """`cls` validated from `raw`; each problem is appended with its parameter name."""
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        for line in format_validation_error(exc, cls):
            loc, sep, msg = line.partition(": ")
            problems.append(f"{loc.replace('.', '__')}{sep}{msg}")
    except ValueError as exc:
        problems.append(str(exc))
    return None


def _resized(X: np.ndarray, model_cfg: BaseModel) -> np.ndarray:
    """Images resized to the model's `image_size` (cnn), when it sets one."""
    size = getattr(model_cfg, "image_size", None)
    if X.ndim != 4 or size is None or X.shape[2:] == (size, size):
        return X

    return resize_images(X, size, size)


def split_rows(
    n: int, fraction: float, seed: int, stratify: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and the validation rows (stratified by `stratify`, if given)."""
    from sklearn.model_selection import train_test_split

    try:
        rows, val_rows = train_test_split(
            np.arange(n), test_size=fraction, random_state=seed, stratify=stratify
        )
    except ValueError as exc:  # too few rows for the fraction (or for stratification)
        raise ValueError(f"validation_fraction={fraction}: {exc}") from exc
    return rows, val_rows


def _cuda_indices(device: str) -> list[int]:
    """The CUDA device whose RNG `fork_rng` should save and restore (none on CPU)."""
    import torch

    parsed = torch.device(device)
    if parsed.type != "cuda":
        return []
    return [parsed.index if parsed.index is not None else torch.cuda.current_device()]
