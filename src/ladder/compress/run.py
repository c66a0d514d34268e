"""The config's `compress:` section applied to a trained run (`ladder compress RUN_DIR`, and
the last step of `ladder run`).

Each method makes variant artifacts (`<model>+int8`, `<model>+prune90`, `<teacher>→<student>`)
that are evaluated on the run's own test split and ranked on its leaderboard beside the
originals, with their accuracy delta.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from ladder.compress.distill import distill
from ladder.compress.prune import prune
from ladder.compress.quantize import quantize
from ladder.compress.variant import CompressContext, Variant
from ladder.config import DistillConfig, PruneConfig, QuantizeConfig, load_run_config
from ladder.console import RungProgress
from ladder.errors import ConfigError, LadderError, TrainingInterrupted, first_line
from ladder.export.artifact import load
from ladder.export.s2s_artifact import load_translator
from ladder.io import atomic_write_text
from ladder.registry import get_spec
from ladder.run_folder import locked, record_failure
from ladder.runner.cache import cached_status
from ladder.runner.lm_rung import evaluate_generator
from ladder.runner.prepare import prepare
from ladder.runner.ranking import rank_run
from ladder.runner.s2s_rung import evaluate_translator
from ladder.tasks import get_task

Show = Callable[[str], None]
# the networks of a task that a method without `models:` works on: those with ONNX graphs
GRAPHED = {"generation": ("gpt",), "seq2seq": ("seq2seq_rnn", "seq2seq_transformer")}


def compress_run(
    run_dir: str | Path, overrides: list[str] | None = None, wait: bool = False
) -> Any:
    """Make, evaluate and rank every variant the run's `compress:` section asks for; returns
    a `ladder.runner.ranking.RunResult` whose leaderboard holds originals and variants. The run
    folder is locked meanwhile (`wait`: for another process that holds it)."""
    run_dir = Path(run_dir)
    config = load_run_config(run_dir, overrides)
    if not config.compress:
        raise ConfigError([f"{run_dir}: the config has no compress: section"])
    config, data = prepare(config)
    with locked(run_dir, wait):
        return _compress_locked(config, run_dir, data)


def _compress_locked(config: Any, run_dir: Path, data: Any) -> Any:
    """The body of `compress_run`, with the run folder locked."""
    saved = json.loads((run_dir / "data.json").read_text()).get("sha256")
    if saved != data.info["sha256"]:
        raise LadderError(f"{run_dir}: the data changed since the run (sha256 differs)")
    entries = {e["name"]: config.model(e["name"]) for e in config.models}
    context = CompressContext(config, run_dir, data, entries)
    status = {name: cached_status(run_dir, config, entry) for name, entry in entries.items()}
    if not _requests(context):
        names: dict[str, list[str]] = {}  # why -> the models left out for it
        for name, why in _passed_over(context).items():
            names.setdefault(why, []).append(name)
        reasons = "; ".join(f"{', '.join(n)}: {why}" for why, n in names.items())
        raise LadderError(
            f"{run_dir}: the compress: section has no model to work on"
            + (f" ({reasons})" if reasons else "; it compresses networks")
        )
    missing = [n for n in _originals(context) if status[n] == "absent"]
    if missing:
        raise LadderError(
            f"{', '.join(missing)}: no trained model in {run_dir}; train it with ladder run"
        )
    made = apply_compress(context, reuse=False, show=RungProgress(0, "compress").note)
    failed = {k: v.removeprefix("failed: ") for k, v in made.items() if v != "ok"}
    status.update({k: v for k, v in made.items() if v != "ok"})
    result = rank_run(config, entries, status, data, run_dir)  # the variants that were made
    if failed:
        raise LadderError("; ".join(f"{name}: {why}" for name, why in failed.items()))
    return result


def apply_compress(
    context: CompressContext,
    reuse: bool = True,
    show: Show | None = None,
    trained: Collection[str] | None = None,
) -> dict[str, str]:
    """Make and evaluate the variants of the config's `compress:` section; returns each
    variant's status ("ok", "cached" or "failed: <why>"). With `reuse`, a variant made by the
    same method from the same original is kept. A failure is recorded and the others go on;
    bad requests (nothing to quantize, a model type a method does not support) are failures.
    With `trained`, a variant of any other original is skipped (said once through `show`, no
    status): e.g. a model that `ladder run --only` left out."""
    status: dict[str, str] = {}
    if show is not None:
        for method in context.config.compress:
            if isinstance(method, DistillConfig) or method.models:
                continue
            for model, why in _passed_over(context).items():
                show(f"{method.variant_name(model)}: skipped ({why})")
    for method, model in _requests(context):
        name = method.variant_name() if model is None else method.variant_name(model)
        original = method.teacher if model is None else model
        if trained is not None and original not in trained:
            if show is not None:
                show(f"{name}: skipped ({original} has no trained model in this run)")
            continue
        stamp = method.model_dump(mode="json")
        if reuse and _made_by(context, name, stamp):
            status[name] = "cached"
            continue
        if not (context.model_dir(original) / "metrics.json").is_file():
            status[name] = f"failed: {original} has no trained model in {context.run_dir}"
            continue
        if show is not None:
            show(f"{name}: {method.method}")
        started = time.perf_counter()
        try:
            variant = _make(method, context, model)
            _evaluate(context, variant, stamp)
            status[name] = "ok"
            if show is not None:
                show(f"{name}: done in {time.perf_counter() - started:.1f}s")
        except TrainingInterrupted:
            raise  # SIGTERM or Ctrl-C while fine-tuning: stop the whole command
        except Exception as exc:
            (context.model_dir(name) / "metrics.json").unlink(missing_ok=True)
            record_failure(context.model_dir(name), exc)
            status[name] = f"failed: {first_line(exc)}"
            if show is not None:
                show(f"{name}: {status[name]}")
    return status


def _requests(context: CompressContext) -> list[tuple[Any, str | None]]:
    """(method, model) pairs in config order; a distill method has no model (its teacher)."""
    pairs: list[tuple[Any, str | None]] = []
    for method in context.config.compress:
        if isinstance(method, DistillConfig):
            pairs.append((method, None))
            continue
        passed_over = _passed_over(context)
        neural = [
            n for n, e in context.entries.items() if _is_neural(e.type) and n not in passed_over
        ]
        pairs.extend((method, name) for name in method.models or neural)
    return pairs


def _passed_over(context: CompressContext) -> dict[str, str]:
    """The networks a method without `models:` leaves out, each with why: of the language
    and seq2seq models, only those exported as ONNX graphs can be quantized."""
    graphed = GRAPHED.get(context.data.task)
    if graphed is None:
        return {}
    return {
        name: f"{entry.type} has no ONNX graphs to quantize; ONNX Runtime quantizes "
        f"{' and '.join(graphed)}"
        for name, entry in context.entries.items()
        if _is_neural(entry.type) and entry.type not in graphed
    }


def _originals(context: CompressContext) -> list[str]:
    names = [m.teacher if model is None else model for m, model in _requests(context)]
    return list(dict.fromkeys(names))


def _make(method: Any, context: CompressContext, model: str | None) -> Variant:
    if isinstance(method, QuantizeConfig):
        return quantize(method, context, model)
    if isinstance(method, PruneConfig):
        return prune(method, context, model)

    return distill(method, context)


def _evaluate(context: CompressContext, variant: Variant, stamp: dict[str, Any]) -> None:
    """The variant's test metrics, plots and predictions, with its delta vs the original."""
    data, model_dir = context.data, context.model_dir(variant.name)
    task = get_task(data.task)
    if data.task == "generation":
        metrics = evaluate_generator(context.artifact(variant.name), data.splits, model_dir)
    elif data.task == "seq2seq":
        translator = load_translator(context.artifact(variant.name))
        primary = context.config.evaluate.primary
        metrics = evaluate_translator(translator, data.splits, model_dir, primary)
    else:
        model = load(context.artifact(variant.name))
        test = data.splits.test
        outputs = model.predict_outputs_raw(test.X)
        radius = (model.manifest.get("interval") or {}).get("radius")
        metrics = task.evaluate(test.y, outputs, data.labels, model_dir, variant.history, radius)
    original = json.loads((context.model_dir(variant.original) / "metrics.json").read_text())
    headline = task.delta_metric
    metrics.update(
        train_seconds=variant.train_seconds
        if variant.train_seconds is not None
        else original.get("train_seconds"),
        params=variant.params if variant.params is not None else original.get("params"),
        model_type=variant.model_type,
        variant_of=variant.original,
        **{task.delta_column: metrics[headline] - original[headline]},
        compress=stamp,
        **variant.details,
    )
    atomic_write_text(model_dir / "metrics.json", json.dumps(metrics, indent=2))


def _made_by(context: CompressContext, name: str, stamp: dict[str, Any]) -> bool:
    path = context.model_dir(name) / "metrics.json"
    if not path.is_file() or not context.artifact(name).is_dir():
        return False
    return json.loads(path.read_text()).get("compress") == stamp


def _is_neural(model_type: str) -> bool:
    return get_spec(model_type).trains_with_trainer


__all__ = ["apply_compress", "compress_run"]
