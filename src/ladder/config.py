"""The config schema (pydantic v2) and `load_config(path, overrides)`.

Every problem in a config is reported at once, each with its dotted path, what was expected and
what was found; unknown keys get a "did you mean" suggestion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ladder.errors import ConfigError
from ladder.models.numpy_support import numpy_lacks, numpy_refusal
from ladder.overrides import apply_overrides, did_you_mean, parse_overrides
from ladder.registry import MODEL_TYPES, get_spec, parameter_defaults
from ladder.run_folder import name_problem
from ladder.tuning.space import TuneBlock, parse_block, tunable_names


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# ----------------------------------------------------------------------------- data


class SplitConfig(Section):
    test: float = Field(0.2, gt=0, lt=1)
    val: float = Field(0.1, ge=0, lt=1)
    stratify: bool = True

    @model_validator(mode="after")
    def _fractions_leave_training_rows(self) -> SplitConfig:
        if self.test + self.val >= 1:
            raise ValueError(f"test + val must be below 1, got {self.test} + {self.val}")
        return self


class AugmentConfig(Section):
    """Training-time image augmentation (training split only)."""

    crop_padding: int = Field(0, ge=0)
    hflip: bool = False
    rotation: float = Field(0.0, ge=0, le=180)

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is switched on."""
        return self.crop_padding > 0 or self.hflip or self.rotation > 0


class DataConfig(Section):
    source: str
    target: str = "label"
    text: str | None = Field(None, description="the text column of a table (text data)")
    image: str | None = Field(
        None, description="the column of a table holding image file paths (image data)"
    )
    text_files: dict[str, str] | None = Field(
        None, description="label -> file of one text per line, in the source folder"
    )
    format: Literal["csv", "tsv", "parquet", "jsonl"] | None = Field(
        None, description="table format when the file name has no known suffix"
    )
    task: Literal["auto", "classification", "regression", "generation", "seq2seq"] = Field(
        "auto",
        description="auto: regression for a numeric target with many values; generation: "
        "a language model of the text (a text file, a folder of .txt, a table's `text` "
        "column, or prompt/completion .jsonl); seq2seq: source text -> target text (a table's "
        "source_column and target_column, or two aligned text files)",
    )
    source_column: str = Field("source", description="seq2seq: the table's source-text column")
    target_column: str = Field("target", description="seq2seq: the table's target-text column")
    target_file: str | None = Field(
        None,
        description="seq2seq: a text file of targets, one per line, aligned with the lines of "
        "the text file `source`",
    )
    target_transform: Literal["none", "log1p"] = Field(
        "none", description="regression: learn log1p(target); predictions come back in units"
    )
    columns: list[str] | None = None
    na_values: list[str] | None = None
    drop: list[str] = Field(default_factory=list)
    test_source: str | None = None
    split: SplitConfig = Field(default_factory=SplitConfig)
    balance: Literal["none", "class_weight", "oversample"] = "none"
    drop_missing_target: bool = False
    non_finite: Literal["error", "drop"] = Field(
        "error",
        description="a row with inf (or a number beyond float32) in a numeric feature: "
        "error, or drop the row",
    )
    image_size: int | None = Field(None, ge=4, description="resize images on load (folders, idx)")
    channels: Literal[1, 3] | None = None
    augment: AugmentConfig = Field(default_factory=AugmentConfig)


# ----------------------------------------------------------------------------- training


class OptimizerConfig(Section):
    name: Literal["sgd", "adam", "adamw", "adagrad", "rmsprop"] = "adamw"
    lr: float = Field(1.0e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    nesterov: bool = False

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> OptimizerConfig:
        if self.nesterov and (self.name != "sgd" or self.momentum <= 0):
            raise ValueError("nesterov needs name: sgd and momentum > 0")
        return self


class SchedulerConfig(Section):
    name: Literal["none", "step", "cosine", "onecycle", "linear"] = "none"
    warmup_epochs: float = Field(0.0, ge=0)
    warmup_fraction: float = Field(0.0, ge=0, lt=1, description="warm-up as a share of all steps")
    step_size: int = Field(10, ge=1, description="epochs between decays (step)")
    gamma: float = Field(0.1, gt=0, le=1, description="decay factor (step)")
    min_lr: float = Field(0.0, ge=0, description="floor of the cosine schedule")


class EarlyStoppingConfig(Section):
    monitor: str = "val_loss"
    patience: int = Field(5, ge=1)
    mode: Literal["auto", "min", "max"] = "auto"
    min_delta: float = Field(0.0, ge=0)

    @property
    def minimize(self) -> bool:
        """True when a smaller monitored value is better."""
        if self.mode == "auto":
            return "loss" in self.monitor
        return self.mode == "min"


class TrainConfig(Section):
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    init: Literal["default", "xavier", "kaiming"] = "default"
    l1: float = Field(0.0, ge=0)
    grad_clip: float | None = Field(None, gt=0)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    early_stopping: EarlyStoppingConfig | None = Field(default_factory=EarlyStoppingConfig)
    checkpoint_every_steps: int | None = Field(None, ge=1, description="also checkpoint mid-epoch")
    accumulate_steps: int = Field(1, ge=1, description="batches per optimizer step")
    compile: bool = False
    strategy: Literal["ddp", "fsdp"] = "ddp"
    loss: Literal["auto", "cross_entropy", "mse", "mae", "huber"] = Field(
        "auto", description="auto: cross_entropy (classification), mse (regression)"
    )
    huber_delta: float = Field(1.0, gt=0, description="huber: where squared becomes linear")
    max_steps: int = Field(
        2000, ge=1, description="generation: optimizer steps over random windows of the corpus"
    )
    eval_interval: int = Field(
        200, ge=1, description="generation: steps between validation (and checkpoints)"
    )
    eval_batches: int = Field(
        20, ge=1, description="generation: validation batches of windows at each evaluation"
    )


# ----------------------------------------------------------------------------- text


class TextConfig(Section):
    """How neural text models turn text into token ids (fitted on the training split only)."""

    tokenizer: Literal["wordpiece", "bpe", "word", "char", "pretrained"] = Field(
        "wordpiece",
        description="generation: char (the default there), bpe (byte-level) or pretrained",
    )
    tokenizer_path: str | None = Field(
        None, description="the pretrained model folder or hub id whose tokenizer to use"
    )
    vocab_size: int = Field(20000, ge=10)
    lowercase: bool = True
    min_frequency: int = Field(1, ge=1)
    max_length: int = Field(128, ge=2, description="tokens per text, [CLS] included")
    bucketing: bool = Field(True, description="batch texts of similar length together")

    @model_validator(mode="after")
    def _pretrained_needs_a_path(self) -> TextConfig:
        if self.tokenizer_path is not None and self.tokenizer != "pretrained":
            raise ValueError("tokenizer_path is used only with tokenizer: pretrained")
        return self


# ----------------------------------------------------------------------------- evaluation


METRIC_NAMES = (
    "accuracy",
    "balanced_accuracy",
    "f1_macro",
    "f1_weighted",
    "precision_macro",
    "recall_macro",
    "roc_auc",
    "log_loss",
)


class EvaluateConfig(Section):
    metrics: list[str] | None = Field(
        None, description="default: accuracy, f1_macro, roc_auc (classification); all (regression)"
    )
    primary: str | None = Field(None, description="default: accuracy (classification), rmse")
    intervals: float | None = Field(
        None, gt=0, lt=1, description="regression: split-conformal prediction intervals"
    )
    cv: int | None = Field(None, ge=2)
    bootstrap: int = Field(1000, ge=0)
    prompts: list[str] | None = Field(
        None,
        description="generation: the prompts of each model's samples in the report (default: "
        "the starts of a few test segments)",
    )
    sample_tokens: int = Field(80, ge=1, le=4096, description="generation: tokens per sample")
    beam_size: int = Field(
        4, ge=1, description="seq2seq: beams of the test decoding (1: greedy search)"
    )
    length_penalty: float = Field(
        1.0, ge=0, description="seq2seq: beam scores are divided by length ** length_penalty"
    )
    no_repeat_ngram_size: int = Field(
        0, ge=0, description="seq2seq: never repeat an n-gram of this size in an output (0: off)"
    )
    max_new_tokens: int | None = Field(
        None, ge=1, description="seq2seq: the longest output (default: the model's maximum)"
    )
    examples: int = Field(8, ge=0, le=100, description="seq2seq: test examples in the report")


class QuantizeConfig(Section):
    """int8 quantization of a model. ONNX Runtime: `dynamic` (weights int8, activations
    quantized on the fly; MatMul/Gemm, Conv and recurrent ops) or `static` (activations too,
    with scales calibrated on training rows; for CNNs). torch: dynamic int8 of Linear and LSTM
    layers with torch.ao. Variants: `<model>+int8`, `<model>+int8-static`, `<model>+int8-torch`."""

    method: Literal["quantize"]
    backend: Literal["onnxruntime", "torch"] = "onnxruntime"
    mode: Literal["dynamic", "static"] = "dynamic"
    calibration_rows: int = Field(256, ge=1, description="training rows for static calibration")
    models: list[str] | None = Field(None, description="default: every neural model")

    @model_validator(mode="after")
    def _static_needs_onnxruntime(self) -> QuantizeConfig:
        if self.mode == "static" and self.backend != "onnxruntime":
            raise ValueError(
                "mode static needs backend onnxruntime (torch quantizes dynamically only), "
                f"got backend {self.backend}"
            )
        return self

    def variant_name(self, model: str) -> str:
        """The name of the variant this method makes of `model`."""
        if self.backend == "torch":
            return f"{model}+int8-torch"
        return f"{model}+int8-static" if self.mode == "static" else f"{model}+int8"


class PruneConfig(Section):
    """Magnitude pruning with fine-tuning, made permanent. Unstructured: the `amount` fraction
    of all prunable weights with the smallest magnitudes (global) become zeros. Structured:
    that fraction of each hidden layer's channels/neurons with the smallest L1 norms is removed,
    so the layers really shrink. `steps` > 1 prunes iteratively, fine-tuning after each step.
    Variants: `<model>+prune90`, `<model>+prune50-structured`."""

    method: Literal["prune"]
    amount: float = Field(0.8, gt=0, lt=1, description="the fraction pruned, in (0, 1)")
    finetune_epochs: int = Field(3, ge=0, description="fine-tuning epochs after each step")
    structured: bool = False
    steps: int = Field(1, ge=1, description="prune in this many steps up to `amount`")
    lr: float | None = Field(
        None, gt=0, description="fine-tuning learning rate (default: the model's own)"
    )
    models: list[str] | None = Field(None, description="default: every neural model")

    def variant_name(self, model: str) -> str:
        """The name of the variant this method makes of `model`."""
        percent = round(self.amount * 100)
        return f"{model}+prune{percent}" + ("-structured" if self.structured else "")


class DistillConfig(Section):
    """Knowledge distillation: a student model (a `models:` entry without a name) trained on
    loss = alpha * CE(labels) + (1 - alpha) * T^2 * KL(p_teacher || p_student), where
    p = softmax(logits / T), with the teacher's logits computed once. The variant is called
    `<teacher>→<student name or type>`."""

    method: Literal["distill"]
    teacher: str
    student: dict[str, Any] = Field(description="a model entry: type, hyperparameters, train keys")
    alpha: float = Field(0.5, ge=0, le=1, description="weight of the hard-label loss")
    temperature: float = Field(4.0, gt=0)
    epochs: int | None = Field(None, ge=1, description="default: the student's train.epochs")
    augment: int = Field(
        0,
        ge=0,
        description="text data: perturbed copies of each training text (words masked, texts "
        "cut to n-grams) that only the teacher labels, a transfer set for the student",
    )
    embeddings_from_teacher: bool = Field(
        False,
        description="a text student of a pretrained-encoder teacher tokenizes with the "
        "teacher's tokenizer, its token embeddings initialised from the teacher's output for "
        "each token alone (PCA to the student's width)",
    )

    def variant_name(self) -> str:
        """The name of the distilled student."""
        student = self.student.get("name") or self.student.get("type")
        return f"{self.teacher}→{student}"


CompressMethod = Annotated[
    QuantizeConfig | PruneConfig | DistillConfig, Field(discriminator="method")
]
_METHOD_TAGS = ("quantize", "prune", "distill")


class ServeConfig(Section):
    port: int = Field(8000, ge=1, le=65535)


class TrackingConfig(Section):
    """Experiment tracking: every run, rung and tuning trial logged to MLflow."""

    mlflow: str | None = Field(
        None, description="an MLflow tracking URI (default: $MLFLOW_TRACKING_URI; none: off)"
    )
    experiment: str | None = Field(None, description="the MLflow experiment (default: name)")
    required: bool = Field(
        False, description="an unreachable tracking server fails the run instead of a warning"
    )


# ----------------------------------------------------------------------------- models


class ModelEntry(BaseModel):
    """One rung of the ladder after validation: its model hyperparameters and training config."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    type: str
    params: BaseModel
    train: TrainConfig
    text: TextConfig = Field(default_factory=TextConfig)
    tune: TuneBlock | None = None  # the entry's own `tune:` block

    def describe(self) -> dict[str, Any]:
        """The entry as plain data (for manifests and the resolved config)."""
        return {"name": self.name, "type": self.type, **self.params.model_dump(mode="json")}


class Config(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="the run folder: runs/<name>")
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    data: DataConfig
    models: list[dict[str, Any]]
    train: TrainConfig = Field(default_factory=TrainConfig)
    text: TextConfig = Field(default_factory=TextConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    compress: list[CompressMethod] = Field(default_factory=list)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    tune: dict[str, Any] | None = Field(
        None,
        description="the search of `ladder tune` for every model: settings (trials, timeout, "
        "pruner, metric) and parameter spaces; a model entry's own tune: block adds to it",
    )
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    base_dir: Path = Field(Path("."), exclude=True)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        problem = name_problem(name)
        if problem is not None:
            raise ValueError(problem)
        return name

    def model(self, name: str) -> ModelEntry:
        """The validated entry of the model called `name`."""
        entries = {e["name"]: e for e in self.models}
        if name not in entries:
            suggestion = did_you_mean(name, list(entries))
            raise ConfigError(
                [f"no model named '{name}'{suggestion} (models: {', '.join(entries)})"]
            )
        index = list(entries).index(name)
        problems: list[str] = []
        entry = _validate_model_entry(entries[name], index, self.train, self.text, problems)
        if problems or entry is None:
            raise ConfigError(problems)
        return entry

    def student(self, method: DistillConfig) -> ModelEntry:
        """The validated model entry of a distill method's student (named after the variant)."""
        problems: list[str] = []
        index = self.compress.index(method)
        entry = _validate_student(method, index, self.train, self.text, problems)
        if problems or entry is None:
            raise ConfigError(problems)
        return entry

    def resolve_path(self, source: str) -> str:
        """A data source string with file paths made relative to the config's folder."""
        scheme, sep, rest = source.partition(":")
        if sep and "/" not in scheme and not Path(source).exists():
            if scheme == "idx":  # idx:IMAGES,LABELS holds two paths
                return "idx:" + ",".join(self.resolve_path(p) for p in rest.split(","))
            name, at, split = rest.partition("@")
            if scheme == "hf" and (self.base_dir / name).expanduser().exists():
                return f"hf:{self.base_dir / name}{at}{split}"  # a local dataset folder
            return source  # builtin:NAME, hf:NAME
        path = Path(source).expanduser()
        return str(path if path.is_absolute() else (self.base_dir / path))


# ----------------------------------------------------------------------------- loading


def load_config(path: str | Path, overrides: dict[str, Any] | list[str] | None = None) -> Config:
    """Read, override and validate a YAML config; raises ConfigError listing every problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([f"file not found: {path}"], source=str(path))
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"YAML syntax error at {where}{problem}"], source=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not a UTF-8 text file ({exc.reason})"], source=str(path)) from exc
    if not isinstance(raw, dict):
        raise ConfigError(["expected a mapping of keys (name, data, models, ...)"], str(path))
    apply_overrides(raw, parse_overrides(overrides))
    return validate_config(raw, base_dir=path.parent, source=str(path))


def validate_config(
    raw: dict[str, Any], base_dir: Path = Path("."), source: str = "config"
) -> Config:
    """Validate a config mapping; every problem (top level and each model) is collected."""
    problems: list[str] = []
    config: Config | None = None
    try:
        config = Config.model_validate({**raw, "base_dir": base_dir})
    except ValidationError as exc:
        problems.extend(format_validation_error(exc, Config))
    models = raw.get("models")
    if isinstance(models, list):
        if not models:
            problems.append("models: expected at least one model, got an empty list")
        train = config.train if config else TrainConfig()
        text = config.text if config else TextConfig()
        names: set[str] = set()
        for i, entry in enumerate(models):
            _validate_model_entry(entry, i, train, text, problems)
            if isinstance(entry, dict) and entry.get("name") in names:
                problems.append(f"models[{i}].name: duplicate model name '{entry['name']}'")
            if isinstance(entry, dict):
                names.add(entry.get("name"))
    if config is not None and isinstance(models, list):
        _check_compress(config, problems)
        _check_top_tune(config, problems)
    if problems or config is None:
        raise ConfigError(problems, source=source)
    return config


def _check_compress(config: Config, problems: list[str]) -> None:
    """The models a compress: entry names exist; a distill student is a valid neural entry."""
    names = [e.get("name") for e in config.models if isinstance(e, dict)]
    for i, method in enumerate(config.compress):
        where = f"compress[{i}]"
        wanted = [("teacher", method.teacher)] if isinstance(method, DistillConfig) else []
        wanted += [(f"models[{k}]", n) for k, n in enumerate(getattr(method, "models", None) or [])]
        for key, name in wanted:
            if name not in names:
                problems.append(
                    f"{where}.{key}: no model named {name!r}{did_you_mean(str(name), names)} "
                    f"(models: {', '.join(map(str, names))})"
                )
        if isinstance(method, DistillConfig):
            entry = _validate_student(method, i, config.train, config.text, problems)
            if entry is not None and not get_spec(entry.type).trains_with_trainer:
                problems.append(
                    f"{where}.student.type: a student is trained on the teacher's logits, so it "
                    f"must be a neural model, got {entry.type}"
                )


def _validate_student(
    method: DistillConfig, index: int, train: TrainConfig, text: TextConfig, problems: list[str]
) -> ModelEntry | None:
    """A distill student as a model entry called after its variant."""
    student = {k: v for k, v in method.student.items() if k != "name"}
    entry = {"name": method.variant_name(), **student}
    if method.epochs is not None:
        entry["epochs"] = method.epochs
    return _validate_model_entry(entry, index, train, text, problems, f"compress[{index}].student")


def _validate_model_entry(
    entry: Any,
    index: int,
    train: TrainConfig,
    text: TextConfig,
    problems: list[str],
    where: str | None = None,
) -> ModelEntry | None:
    """Split one `models:` entry into model params, train and text overrides; validate all.

    A neural entry may override any `train:` key; a neural text model also the `text:` section
    (as a `text:` mapping). A type with `train_defaults` (pretrained models) replaces the
    top-level values of those keys with its own unless the entry sets them.
    """
    where = where or f"models[{index}]"
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected a mapping with name and type, got {entry!r}")
        return None
    entry = dict(entry)
    name, model_type = entry.pop("name", None), entry.pop("type", None)
    if not isinstance(name, str) or not name:
        problems.append(f"{where}.name: expected a model name (string), got {name!r}")
    elif name_problem(name) is not None:
        problems.append(f"{where}.name: {name_problem(name)}")
        name = None
    if model_type not in MODEL_TYPES:
        hint = did_you_mean(str(model_type), list(MODEL_TYPES))
        problems.append(
            f"{where}.type: unknown model type {model_type!r}{hint}; "
            f"(valid types: {', '.join(MODEL_TYPES)})"
        )
        return None
    spec = get_spec(model_type)
    neural = spec.trains_with_trainer  # classical models take no train keys (and may share names)
    train_keys = {k: entry.pop(k) for k in list(entry) if neural and k in TrainConfig.model_fields}
    # a neural text model tokenizes; so does every language model (the n-gram counts tokens)
    tokens = (neural or "generation" in spec.tasks) and "text" in spec.inputs
    text_keys = entry.pop("text", None) if tokens else None
    n_before = len(problems)
    tune = parse_block(entry.pop("tune", None), tunable_of(model_type), f"{where}.tune", problems)
    extra = TrainConfig if neural else None
    params = _validate_section(spec.config_cls, entry, where, problems, extra_fields=extra)
    base = {**train.model_dump(), **(spec.train_defaults or {})}
    train_cfg = _validate_section(TrainConfig, _deep_merge(base, train_keys), where, problems)
    text_cfg = _entry_text(text, text_keys, spec, params, f"{where}.text", problems)
    if spec.pytorch_twin is not None and train_cfg is not None:  # a NumPy rung
        lacks = numpy_lacks(train_cfg)
        if lacks:
            problems.append(f"{where}: {numpy_refusal(model_type, spec.pytorch_twin, lacks)}")
    if len(problems) > n_before or params is None or train_cfg is None or not name:
        return None
    return ModelEntry(
        name=name, type=model_type, params=params, train=train_cfg, text=text_cfg, tune=tune
    )


def tunable_of(model_type: str) -> list[str]:
    """The parameters a search space of `model_type` may name."""
    neural = get_spec(model_type).trains_with_trainer
    train_keys = list(TrainConfig.model_fields) if neural else None
    return tunable_names(list(parameter_defaults(model_type)), train_keys)


def _check_top_tune(config: Config, problems: list[str]) -> None:
    """A top-level tune: block is well formed and each parameter fits at least one model."""
    types = [e.get("type") for e in config.models if isinstance(e, dict)]
    known = sorted({n for t in types if t in MODEL_TYPES for n in tunable_of(str(t))})
    parse_block(config.tune, known, "tune", problems)


def _entry_text(
    text: TextConfig, keys: Any, spec: Any, params: Any, where: str, problems: list[str]
) -> TextConfig:
    """The text section of one entry: the top-level one with the entry's `text:` keys merged;
    a model with its own tokenizer (pretrained) always uses it."""
    if keys is not None and not isinstance(keys, dict):
        problems.append(f"{where}: expected a mapping of text settings, got {keys!r}")
        return text
    merged = _deep_merge(text.model_dump(), keys or {})
    if spec.own_tokenizer:
        chosen = (keys or {}).get("tokenizer", "pretrained")
        if chosen != "pretrained":
            problems.append(
                f"{where}.tokenizer: a {spec.type} model uses its own tokenizer, got {chosen!r}"
            )
        path = getattr(params, "path", None)
        merged.update(tokenizer="pretrained", tokenizer_path=path)
    out = _validate_section(TextConfig, merged, where, problems)
    return out if out is not None else text


def _validate_section(
    cls: type[BaseModel],
    data: dict[str, Any],
    where: str,
    problems: list[str],
    extra_fields: type[BaseModel] | None = None,
) -> Any:
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        problems.extend(format_validation_error(exc, cls, extra_fields, prefix=where))
    except ValueError as exc:  # raised by a model-specific check (e.g. scikit-learn's own)
        problems.append(f"{where}: {exc}")
    return None


def format_validation_error(
    exc: ValidationError,
    root: type[BaseModel],
    extra_fields: type[BaseModel] | None = None,
    prefix: str = "",
) -> list[str]:
    """One line per pydantic error: dotted path, what was expected, what was found."""
    lines = []
    for err in exc.errors():
        loc = ".".join(p for p in (prefix, _dotted(err["loc"])) if p).replace(".[", "[")
        if not err["loc"]:  # a check of the whole section (e.g. scikit-learn's own validation)
            lines.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
            continue
        if err["type"] == "extra_forbidden":
            key = str(err["loc"][-1])
            known = _known_keys(root, err["loc"][:-1])
            if extra_fields is not None and len(err["loc"]) == 1:
                known += list(extra_fields.model_fields)
            lines.append(f"{loc}: unknown key '{key}'{did_you_mean(key, known)}")
        elif err["type"] == "missing":
            lines.append(f"{loc}: required key is missing")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            found = (
                "" if "got" in msg.lower() or msg.endswith("?") else f", got {err.get('input')!r}"
            )
            lines.append(f"{loc}: {msg}{found}")
    return lines


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("literal[", "function-after", "constrained-")):
            continue  # pydantic's union/validator tags are noise for users
        elif part in _METHOD_TAGS and i > 0 and isinstance(loc[i - 1], int):
            continue  # the tag of a compress: entry
        else:
            out += f".{part}" if out else str(part)
    return out


def _known_keys(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the section at `loc` (for did-you-mean suggestions)."""
    classes: list[Any] = [root]
    for part in loc:
        if isinstance(part, int):
            continue
        tagged = [c for c in classes if part in _method_tags(c)]
        if tagged:  # a compress: entry's method tag selects its class
            classes = tagged
            continue
        field = next((c.model_fields[part] for c in classes if part in c.model_fields), None)
        if field is None:
            return []
        classes = _model_classes(field.annotation)
        if not classes:
            return []
    return [name for c in classes for name in c.model_fields]


def _method_tags(cls: type[BaseModel]) -> tuple[Any, ...]:
    method = cls.model_fields.get("method")
    return get_args(method.annotation) if method is not None else ()


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    """The config sections an annotation holds (through list[...], unions and Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [c for arg in get_args(annotation) for c in _model_classes(arg)]


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def dump_config(config: Config, version: str) -> str:
    """The resolved config as YAML text, with ladder's version and the folder its relative
    paths start from (so that `load_run_config` can read the same data again)."""
    data = config.model_dump(mode="json", exclude={"base_dir"})
    data = {"ladder_version": version, "config_dir": str(config.base_dir.resolve()), **data}
    return yaml.safe_dump(data, sort_keys=False)


def load_run_config(run_dir: str | Path, overrides: list[str] | None = None) -> Config:
    """The config a run folder was made with (its config.yaml), with `--set` overrides."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError([f"{run_dir}: not a run folder (no config.yaml); run ladder run first"])
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    raw.pop("ladder_version", None)
    base_dir = Path(raw.pop("config_dir", "."))
    apply_overrides(raw, parse_overrides(overrides))
    return validate_config(raw, base_dir=base_dir, source=str(path))
