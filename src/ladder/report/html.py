"""The HTML report of a run folder: one self-contained file with no network requests.

Plots are PNGs inlined as `data:` URIs: the ones the run already wrote under
`models/<model>/plots/` are embedded as they are; the rest (class balance, accuracy vs latency,
accuracy with confidence intervals) are drawn here with `matplotlib.figure.Figure`. Runs with
compressed variants get a Compression section (`ladder.report.compression`), runs with a tuning
study under `tune/` a Tuning section (`ladder.report.tuning`). Every value read from the run
folder is HTML-escaped.
"""

from __future__ import annotations

import io
import json
import math
import os
import platform
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from html import escape
from importlib import metadata, resources
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
import pandas as pd  # noqa: TID253
import yaml
from matplotlib.figure import Figure  # noqa: TID253

from ladder import __version__
from ladder.errors import LadderError
from ladder.evaluate.plots import plot_confusion_matrix, plot_learning_curves
from ladder.io import atomic_write_text
from ladder.report.compression import compression_section
from ladder.report.parts import (
    drawn_png,
    embed_png,
    fact_list,
    fmt_bytes,
    fmt_int,
    img_tag,
    is_finished,
    is_missing,
    note,
    to_float,
)
from ladder.report.tuning import tuning_section

_SPLITS = ("train", "val", "test")
_PACKAGES = ("torch", "scikit-learn", "numpy", "pandas", "matplotlib", "onnxruntime")
_MAX_FEATURES_SHOWN = 200  # longer feature lists are cut (the count is still exact)


def render_report(run_dir: str | Path) -> Path:
    """Write `run_dir/report.html` (atomically) from the run folder's files; return its path."""
    run_dir = Path(run_dir)
    board_path = run_dir / "leaderboard.csv"
    if not board_path.is_file():
        raise LadderError(
            f"{run_dir}: no results to report (no leaderboard.csv); run `ladder run` first"
        )
    board = pd.read_csv(board_path)
    rows = board.to_dict("records")
    data = _read_json(run_dir / "data.json")
    config_path = run_dir / "config.yaml"
    config_text = config_path.read_text(encoding="utf-8") if config_path.is_file() else ""
    best = next((row for row in rows if is_finished(row)), None)
    primary = _seq2seq_primary(run_dir) if data.get("task") == "seq2seq" else None
    best_name = str(best["model"]) if best else "none"
    title = _run_name(config_text) or run_dir.name
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sha = data.get("sha256")
    subtitle = f"{len(rows)} models · data sha256 {str(sha)[:12] if sha else 'unknown'}"
    compression = compression_section(board)  # "" when the run has no compressed variants
    tuning = tuning_section(run_dir)  # "" when the run has no tuning study
    template = resources.files("ladder.report").joinpath("templates/report.html")
    page = Template(template.read_text(encoding="utf-8")).substitute(
        title=escape(title),
        subtitle=escape(f"{subtitle} · generated {generated}"),
        dataset=_dataset_section(data),
        leaderboard=_leaderboard_table(rows, best_name),
        tradeoffs=_tradeoff_section(rows, primary),
        compression=compression,
        compression_nav='<a href="#compression">Compression</a>' if compression else "",
        tuning=tuning,
        tuning_nav='<a href="#tuning">Tuning</a>' if tuning else "",
        learning=_learning_section(run_dir, rows),
        best_name=escape(best_name),
        best=_best_section(run_dir, best, rows),
        config=escape(config_text) if config_text else "(no config.yaml in the run folder)",
        environment=_environment_section(),
    )
    return atomic_write_text(run_dir / "report.html", page)


# ----------------------------------------------------------------------------- sections


def _dataset_section(data: dict[str, Any]) -> str:
    if not data:
        return '<p class="note">No data.json in the run folder.</p>'
    if data.get("task") == "generation":
        return _corpus_section(data)
    if data.get("task") == "seq2seq":
        return _pairs_section(data)
    regression = data.get("task") == "regression"
    facts = {
        "source": data.get("source", ""),
        "kind": data.get("kind", ""),
        **({"task": "regression"} if regression else {}),
        **({} if regression else {"classes": len(data.get("labels") or data.get("classes") or [])}),
        "sha256": data.get("sha256", ""),
    }
    rows = data.get("rows", {})
    splits = [s for s in (*_SPLITS, "total") if s in rows]
    split_table = _table(["split", "rows"], [[s, fmt_int(rows[s])] for s in splits])
    if regression:
        target = data.get("target") or {}
        stats = ["mean", "std", "min", "max"]
        table = _table(
            ["split", *stats],
            [[s, *(f"{target[s][k]:.4g}" for k in stats)] for s in _SPLITS if s in target],
        )
        return (
            f'<div class="grid"><div>{fact_list(facts)}<h3>Rows per split</h3>{split_table}'
            f"<h3>Features</h3>{_features(data.get('features') or {})}</div>"
            f"<div><h3>Target</h3>{table}</div></div>"
        )
    classes = data.get("classes") or []
    chart = (
        _figure_img(lambda: _class_balance_figure(classes), "Rows per class and split")
        if classes
        else ""
    )
    columns = ["label", *(s for s in splits if any(s in c for c in classes))]
    counts = _table(columns, [[c.get(k, "") for k in columns] for c in classes])
    chart += f"<details><summary>Counts per class</summary>{counts}</details>"
    return (
        f'<div class="grid"><div>{fact_list(facts)}<h3>Rows per split</h3>{split_table}'
        f"<h3>Features</h3>{_features(data.get('features') or {})}</div>"
        f"<div><h3>Class balance</h3>{chart if classes else note('No class counts.')}</div></div>"
    )


def _features(features: dict[str, Any]) -> str:
    if "text_column" in features:
        return (
            f"<p>Text (column {escape(str(features['text_column']))}): "
            f"{features.get('mean_words', 0)} words on average, at most "
            f"{features.get('max_words', 0)} (training split); "
            f"{features.get('empty_texts', 0)} empty texts</p>"
        )
    if "channels" in features:
        shape = f"{features['channels']} × {features['height']} × {features['width']}"
        return f"<p>Images, channels × height × width: {escape(shape)}</p>"
    columns = features.get("columns") or []
    count = features.get("count", len(columns))
    shown = columns[:_MAX_FEATURES_SHOWN]
    table = _table(["column", "dtype"], [[c.get("name", ""), c.get("dtype", "")] for c in shown])
    more = f" (first {len(shown)} shown)" if len(shown) < len(columns) else ""
    return (
        f"<details><summary>{escape(str(count))} feature columns{more}</summary>"
        f'<div class="scroll">{table}</div></details>'
    )


def _leaderboard_table(rows: list[dict[str, Any]], best_name: str) -> str:
    if not rows:
        return note("The leaderboard is empty.")
    columns = list(rows[0])
    head = "".join(f'<th scope="col">{escape(str(c))}</th>' for c in columns)
    body = []
    for row in rows:
        classes = [] if is_finished(row) else ["failed"]
        if str(row.get("model")) == best_name:
            classes.append("best")
        cells = "".join(_cell(column, row[column]) for column in columns)
        body.append(f'<tr class="{" ".join(classes)}">{cells}</tr>')
    return (
        f'<div class="scroll"><table id="leaderboard"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _corpus_section(data: dict[str, Any]) -> str:
    """A language-model run's text: source, kind, and examples, characters and bytes per part."""
    facts = {k: data.get(k, "") for k in ("source", "kind", "task", "sha256")}
    parts = [p for p in _SPLITS if p in data.get("bytes", {})]
    table = _table(
        ["part", "examples", "characters", "bytes"],
        [
            [
                p,
                fmt_int(data["examples"][p]),
                fmt_int(data["characters"][p]),
                fmt_int(data["bytes"][p]),
            ]
            for p in parts
        ],
    )
    return (
        f'<div class="grid"><div>{fact_list(facts)}</div><div><h3>Parts (contiguous, in order)'
        f"</h3>{table}</div></div>"
    )


def _pairs_section(data: dict[str, Any]) -> str:
    """A seq2seq run's pairs: source, counts per split, what was dropped or moved, lengths."""
    facts = {
        k: v
        for k, v in data.items()
        if isinstance(v, (str, int, float)) and not isinstance(v, bool)
    }
    tables = "".join(
        f"<h3>{escape(key.replace('_', ' '))}</h3>"
        + _table(["", *map(str, value)], [["", *(_fmt(key, v) for v in value.values())]])
        for key, value in data.items()
        if isinstance(value, dict)
        and value
        and all(not isinstance(v, dict) for v in value.values())
    )
    return f'<div class="grid"><div>{fact_list(facts)}</div><div>{tables}</div></div>'


def _seq2seq_primary(run_dir: Path) -> str:
    """The metric a seq2seq run ranks by (its metrics.json files say; default bleu)."""
    for path in sorted((run_dir / "models").glob("*/metrics.json")):
        primary = _read_json(path).get("primary")
        if isinstance(primary, str):
            return primary
    return "bleu"


def _tradeoff_section(rows: list[dict[str, Any]], primary: str | None = None) -> str:
    ok = [row for row in rows if is_finished(row)]
    metric = _headline(ok, primary).replace("_", " ")
    scatter = _figure_img(lambda: _tradeoff_figure(ok, primary), f"{metric} against latency")
    bars = _figure_img(lambda: _ci_figure(ok, primary), f"{metric} with confidence intervals")
    return (
        f'<div class="grid"><div><h3>{escape(metric.capitalize())} vs latency</h3>{scatter}'
        '<p class="note">Red points are on the Pareto front: no other model is both faster and '
        f"better.</p></div><div><h3>{escape(metric.capitalize())} with confidence interval</h3>"
        f"{bars}</div></div>"
    )


def _learning_section(run_dir: Path, rows: list[dict[str, Any]]) -> str:
    parts = []
    for row in rows:
        name = str(row.get("model"))
        model_dir = run_dir / "models" / name
        image = embed_png(model_dir / "plots" / "learning_curve.png", f"Learning curve, {name}")
        if image is None and (model_dir / "history.csv").is_file():
            history = pd.read_csv(model_dir / "history.csv")
            image = drawn_png(lambda p, h=history: plot_learning_curves(h, p), name)
        if image is not None:
            parts.append(f"<div><h3>{escape(name)}</h3>{image}</div>")
    if not parts:
        return note("No model in this run has a training history (classical models fit once).")
    return f'<div class="grid">{"".join(parts)}</div>'


def _best_section(run_dir: Path, best: dict[str, Any] | None, rows: list[dict[str, Any]]) -> str:
    if best is None:
        return note("No model finished successfully.")
    name = str(best["model"])
    model_dir = run_dir / "models" / name
    metrics = _read_json(model_dir / "metrics.json")
    scalars = {k: _fmt(k, v) for k, v in metrics.items() if isinstance(v, (int, float))}
    if "bits_per_byte" in metrics:  # language models: samples from each
        return f"{fact_list(scalars) if scalars else ''}{_samples_section(run_dir)}"
    if "signatures" in metrics:  # seq2seq: every model's outputs for the same test sources
        signed = fact_list({k: str(v) for k, v in metrics["signatures"].items()})
        examples = _examples_section(run_dir, [str(r["model"]) for r in rows if is_finished(r)])
        summary = fact_list(scalars) if scalars else ""
        return f"{summary}<h3>Metric signatures</h3>{signed}{examples}"
    scatter = embed_png(model_dir / "plots" / "predicted_vs_actual.png", f"Predicted, {name}")
    if scatter is not None:  # a regression model
        residuals = embed_png(model_dir / "plots" / "residuals.png", f"Residuals, {name}")
        return (
            f'{fact_list(scalars) if scalars else ""}<div class="grid">'
            f"<div><h3>Predicted vs actual</h3>{scatter}</div>"
            f"<div><h3>Residuals</h3>{residuals or note('No residual plot saved.')}</div></div>"
        )
    cm = embed_png(model_dir / "plots" / "confusion_matrix.png", f"Confusion matrix, {name}")
    if cm is None and metrics.get("confusion_matrix") is not None:
        matrix, labels = metrics["confusion_matrix"], metrics.get("labels") or []
        labels = labels or list(range(len(matrix)))
        cm = drawn_png(lambda p: plot_confusion_matrix(matrix, labels, p), f"Confusion, {name}")
    roc = embed_png(model_dir / "plots" / "roc.png", f"ROC curve, {name}")
    return (
        f'{fact_list(scalars) if scalars else ""}<div class="grid">'
        f"<div><h3>Confusion matrix</h3>{cm or note('No confusion matrix saved.')}</div>"
        f"<div><h3>ROC</h3>{roc or note('No ROC plot saved (plots/roc.png).')}</div></div>"
    )


def _examples_section(run_dir: Path, models: list[str], n: int | None = None) -> str:
    """A table of the first test pairs: source, reference and each model's output."""
    config = run_dir / "config.yaml"
    if n is None:
        settings = yaml.safe_load(config.read_text(encoding="utf-8")) if config.is_file() else {}
        n = int(((settings or {}).get("evaluate") or {}).get("examples", 8))
    outputs: dict[str, pd.DataFrame] = {}
    for name in models:
        path = run_dir / "models" / name / "test_predictions.csv"
        if path.is_file():
            outputs[name] = pd.read_csv(path, keep_default_na=False).head(n)
    if not outputs or n == 0:
        return note("No test outputs saved.")
    first = next(iter(outputs.values()))
    header = ["source", "reference", *outputs]
    body = [
        [first["source"].iloc[i], first["reference"].iloc[i]]
        + [frame["hypothesis"].iloc[i] if i < len(frame) else "" for frame in outputs.values()]
        for i in range(len(first))
    ]
    return (
        f'<h3>Examples</h3><p class="note">The first {len(first)} test pairs and every '
        "model's output (its configured decoding).</p>" + _table(header, body)
    )


def _samples_section(run_dir: Path) -> str:
    """Each language model's continuations of the same prompts (fixed seed)."""
    rows = []
    for path in sorted((run_dir / "models").glob("*/samples.json")):
        for sample in json.loads(path.read_text(encoding="utf-8")):
            rows.append(
                f"<tr><td>{escape(path.parent.name)}</td><td><pre>{escape(sample['prompt'])}</pre>"
                f"</td><td><pre>{escape(sample['completion'])}</pre></td></tr>"
            )
    if not rows:
        return note("No samples saved.")
    return (
        '<h3>Samples</h3><p class="note">The same prompts for every model, the run\'s seed, '
        "temperature 0.8, top-k 40.</p><table><thead><tr><th>model</th><th>prompt</th>"
        f"<th>continuation</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _environment_section() -> str:
    facts: dict[str, Any] = {"ladder": __version__, "python": platform.python_version()}
    for package in _PACKAGES:
        try:
            facts[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            facts[package] = "not installed"
    facts["platform"] = platform.platform()
    facts["cpu"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical cores"
    facts["gpu"] = _gpu_name()
    return fact_list(facts) + note(
        "Where this report was rendered; config.yaml names the version "
        "of ladder that ran the models."
    )


def _gpu_name() -> str:
    """The CUDA device name, only if torch is already imported (the report never imports it)."""
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            return str(torch.cuda.get_device_name(0))
    except Exception:  # a broken CUDA set-up must not stop the report
        pass
    return "none detected"


# ----------------------------------------------------------------------------- figures


def _class_balance_figure(classes: Sequence[dict[str, Any]]) -> Figure:
    """Stacked bars: rows per class, split by train/val/test."""
    labels = [str(c.get("label", "")) for c in classes]
    width = min(max(5.0, 0.35 * len(labels) + 2.5), 14.0)
    fig = Figure(figsize=(width, 3.8), layout="constrained")
    ax = fig.subplots()
    bottom = np.zeros(len(labels))
    for split in _SPLITS:
        counts = np.array([float(c.get(split, 0) or 0) for c in classes])
        if counts.any():
            ax.bar(range(len(labels)), counts, bottom=bottom, label=split)
            bottom += counts
    slanted = len(labels) > 12 or max((len(s) for s in labels), default=0) > 4
    tilt = {"rotation": 45, "ha": "right"} if slanted else {}
    ax.set_xticks(range(len(labels)), labels, **tilt)
    ax.set(xlabel="class", ylabel="rows")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _headline(rows: Sequence[dict[str, Any]], primary: str | None = None) -> str:
    """The metric a run's leaderboard leads with: a seq2seq run's primary metric, rmse for
    regression, bits per byte for generation, else accuracy."""
    if primary is not None:
        return primary
    if any("bits_per_byte" in r for r in rows):
        return "bits_per_byte"
    return "rmse" if any("rmse" in r for r in rows) else "accuracy"


def _ci_columns(metric: str, primary: str | None = None) -> tuple[str, str]:
    if primary is not None:  # seq2seq: the interval is of the primary metric
        return "ci_low", "ci_high"
    prefix = "bpb" if metric == "bits_per_byte" else metric
    return f"{prefix}_ci_low", f"{prefix}_ci_high"


def _tradeoff_figure(rows: Sequence[dict[str, Any]], primary: str | None = None) -> Figure:
    """Accuracy (regression: RMSE) against latency, the Pareto front connected in red."""
    metric = _headline(rows, primary)
    points = [
        (to_float(r.get("latency_ms")), to_float(r.get(metric)), str(r["model"]), _truthy(r))
        for r in rows
    ]
    points = [p for p in points if math.isfinite(p[0]) and math.isfinite(p[1])]
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.subplots()
    front = sorted((x, y) for x, y, _, pareto in points if pareto)
    others = [(x, y) for x, y, _, pareto in points if not pareto]
    if others:
        ax.scatter(*zip(*others, strict=True), color="tab:blue", label="model", zorder=3)
    if front:
        ax.plot(
            *zip(*front, strict=True), color="tab:red", marker="o", label="Pareto front", zorder=4
        )
    for x, y, name, _ in points:
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.margins(x=0.15, y=0.12)  # room for the model names
    xs = [x for x, *_ in points]
    if xs and min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
    ax.set(xlabel="latency per row (ms)", ylabel=f"test {metric}")
    ax.grid(alpha=0.3)
    if points:
        ax.legend(fontsize=8)
    else:
        ax.text(
            0.5, 0.5, "no model has both accuracy and latency", ha="center", transform=ax.transAxes
        )
    return fig


def _ci_figure(rows: Sequence[dict[str, Any]], primary: str | None = None) -> Figure:
    """One horizontal bar per model, best at the top, with its accuracy confidence interval."""
    names = [str(r["model"]) for r in rows]
    metric = _headline(rows, primary)
    acc = np.array([to_float(r.get(metric)) for r in rows])
    low_column, high_column = _ci_columns(metric, primary)
    low = np.array([to_float(r.get(low_column, math.nan)) for r in rows])
    high = np.array([to_float(r.get(high_column, math.nan)) for r in rows])
    err = np.nan_to_num(np.vstack([acc - low, high - acc]), nan=0.0).clip(min=0)
    fig = Figure(figsize=(6.4, max(2.2, 0.45 * len(names) + 1.4)), layout="constrained")
    ax = fig.subplots()
    positions = np.arange(len(names))[::-1]
    ax.barh(positions, np.nan_to_num(acc), xerr=err, capsize=4, color="tab:blue", alpha=0.8)
    ax.set_yticks(positions, names)
    finite = np.concatenate([low[np.isfinite(low)], acc[np.isfinite(acc)]])
    label = f"test {metric} (bars: confidence interval)"
    if metric == "accuracy":
        left = max(0.0, float(finite.min()) - 0.05) if finite.size else 0.0
        ax.set(xlim=(left, 1.0), xlabel=label)
    else:
        ax.set(xlabel=label)
    ax.grid(axis="x", alpha=0.3)
    return fig


# ----------------------------------------------------------------------------- helpers


def _figure_img(build: Callable[[], Figure], alt: str) -> str:
    fig = build()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=100)
    finally:
        fig.clear()
    return img_tag(buffer.getvalue(), alt)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(column: str, value: Any) -> str:
    """A leaderboard cell: formatted text, with the raw value in data-value for sorting."""
    if column == "pareto":
        yes = _truthy({"pareto": value})
        mark = '<span class="pareto-yes">yes</span>' if yes else ""
        return f'<td data-value="{int(yes)}">{mark}</td>'
    if is_missing(value):
        return '<td class="num" data-value="">–</td>'
    number = to_float(value)
    if isinstance(value, str) or not math.isfinite(number):  # text (model, type, status) or inf
        text = escape(str(value))
        if column == "status":  # long error messages are cut; the tooltip has all of it
            return f'<td class="status" data-value="{text}" title="{text}">{text}</td>'
        return f'<td data-value="{text}">{text}</td>'
    return f'<td class="num" data-value="{number!r}">{escape(_fmt(column, number))}</td>'


def _fmt(column: str, value: Any) -> str:
    number = to_float(value)
    if not math.isfinite(number):
        return "–"
    if column in ("params",):
        return fmt_int(number)
    if column == "size_bytes":
        return fmt_bytes(number)
    if column in ("throughput_per_s",):
        return f"{number:,.0f}"
    if column in ("train_seconds",):
        return f"{number:.2f}"
    if column == "accuracy_delta":
        return f"{number:+.4f}"
    if column == "latency_ms" or column.endswith("_p"):
        return f"{number:.3g}"
    if float(number).is_integer() and abs(number) >= 1:
        return fmt_int(number)
    return f"{number:.4f}"


def _truthy(row: dict[str, Any]) -> bool:
    value = row.get("pareto")
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return bool(value) and not is_missing(value)


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _run_name(config_text: str) -> str | None:
    try:
        config = yaml.safe_load(config_text)
    except yaml.YAMLError:
        return None
    name = config.get("name") if isinstance(config, dict) else None
    return str(name) if name else None
