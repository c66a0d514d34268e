"""The `ladder` command: parses arguments, calls the library, maps errors to exit codes.

Exit codes: 0 success, 2 user error (one line, no traceback unless --debug), 1 internal error.
Heavy libraries (torch, scikit-learn) are imported inside the commands, so `--help` is instant.
"""

from __future__ import annotations

import shlex
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="ladder",
    help="From traditional models to large models: train, evaluate, compare and serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a config key: KEY=VALUE (e.g. train.epochs=3).", metavar="KEY=VALUE"
    ),
]

WaitOption = Annotated[
    bool,
    typer.Option("--wait", help="If another ladder process is using the run folder, wait for it."),
]


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print results and errors only.")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Also print other libraries' warnings and details."),
    ] = False,
) -> None:
    """From traditional models to large models: train, evaluate, compare and serve."""
    from ladder import console

    if quiet and verbose:
        raise typer.BadParameter("--quiet and --verbose exclude each other")
    level = console.QUIET if quiet else console.VERBOSE if verbose else console.verbosity()
    console.set_verbosity(level)
    console.set_debug(debug)


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="The YAML config.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Run folder (default runs/NAME).")
    ] = None,
    set_: SetOption = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Train only this model (repeatable).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Retrain models whose results exist.")
    ] = False,
    wait: WaitOption = False,
) -> None:
    """Train every model of a config on one split; print the leaderboard and the report path."""
    from ladder.runner.ladder import run as run_ladder

    with _resume_hint(config, out, set_ or [], rerun=True):
        result = run_ladder(config, out, overrides=set_ or [], only=only, force=force, wait=wait)
    _print_leaderboard(result.leaderboard)
    _say(f"run folder: {result.run_dir}")
    if result.report is not None:
        _say(f"report:     {result.report}")
    for name, why in result.failed.items():
        _say(f"{name} {why}", err=True)
    if result.failed:
        raise typer.Exit(1)


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="The YAML config.")],
    model: Annotated[str, typer.Option("--model", help="Name of the model entry to train.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Run folder (default runs/NAME).")
    ] = None,
    set_: SetOption = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the model's last checkpoint.")
    ] = False,
    nproc: Annotated[
        int | None,
        typer.Option("--nproc", help="Worker processes on this node (DDP via torchrun)."),
    ] = None,
    nnodes: Annotated[int, typer.Option("--nnodes", help="Number of machines.")] = 1,
    node_rank: Annotated[int, typer.Option("--node-rank", help="This machine's rank.")] = 0,
    rdzv_endpoint: Annotated[
        str | None, typer.Option("--rdzv-endpoint", help="HOST:PORT of the rendezvous.")
    ] = None,
    wait: WaitOption = False,
) -> None:
    """Train one model of a config; print its test metrics and the run folder."""
    if nproc is not None or nnodes > 1:
        raise typer.Exit(
            _launch_workers(
                config,
                model,
                out,
                set_ or [],
                resume,
                1 if nproc is None else nproc,
                nnodes,
                node_rank,
                rdzv_endpoint,
                wait,
            )
        )
    from ladder.runner.ladder import train as train_one

    with _resume_hint(config, out, set_ or []):
        result = train_one(config, model, out, overrides=set_ or [], resume=resume, wait=wait)
    if result is None:  # a worker other than rank 0: rank 0 reports
        return
    _print_metrics(f"{result.model}: test metrics", result.metrics)
    _say(f"device:     {result.device}")
    _say(f"run folder: {result.run_dir}")
    _say(f"artifact:   {result.artifact}")


@contextmanager
def _resume_hint(
    config: Path, out: Path | None, overrides: list[str], rerun: bool = False
) -> Iterator[None]:
    """An interrupted training (SIGTERM, Ctrl-C) says the exact command that resumes it (and,
    with `rerun`, the `ladder run` that then ranks it)."""
    from ladder.errors import TrainingInterrupted

    try:
        yield
    except TrainingInterrupted as stopped:
        if stopped.model is not None:
            options = ["--out", str(out)] if out is not None else []
            options += [word for item in overrides for word in ("--set", item)]
            train = ["ladder", "train", str(config), "--model", stopped.model, "--resume"]
            stopped.resume = shlex.join(train + options)
            if rerun:
                stopped.resume += ", then " + shlex.join(["ladder", "run", str(config), *options])
        raise


def _launch_workers(
    config: Path,
    model: str,
    out: Path | None,
    overrides: list[str],
    resume: bool,
    nproc: int,
    nnodes: int,
    node_rank: int,
    rdzv_endpoint: str | None,
    wait: bool,
) -> int:
    """Validate the config here, then start the workers through torchrun (holding the run
    folder's lock for them on the first machine)."""
    from contextlib import nullcontext

    from ladder.config import load_config
    from ladder.errors import LadderError
    from ladder.registry import get_spec
    from ladder.run_folder import locked
    from ladder.runner.rung import resolve_device
    from ladder.train.launch import LaunchPlan, launch

    cfg = load_config(config, overrides)
    entry = cfg.model(model)
    if not get_spec(entry.type).trains_with_trainer:
        raise LadderError(
            f"--nproc: {model} is a classical model ({entry.type}); it trains in one process"
        )
    device = resolve_device(cfg.device)
    args = ["train", str(config), "--model", model]
    args += ["--out", str(out)] if out is not None else []
    args += [a for item in overrides for a in ("--set", item)]
    args += ["--resume"] if resume else []
    plan = LaunchPlan(nproc, nnodes, node_rank, rdzv_endpoint)
    run_dir = out if out is not None else Path("runs") / cfg.name
    with locked(run_dir, wait) if node_rank == 0 else nullcontext():
        return launch(plan, args, run_id=f"ladder-{cfg.name}-{model}", device=device)


@app.command()
def evaluate(
    artifact: Annotated[Path, typer.Argument(help="An artifact folder.")],
    data: Annotated[
        str, typer.Argument(help="Labelled data: a file, an image folder or builtin:NAME.")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", help="Also write the metrics as JSON.")
    ] = None,
) -> None:
    """Metrics of a saved model on new labelled data."""
    import json

    from ladder.io import atomic_write_text
    from ladder.runner.score import evaluate_artifact

    metrics = evaluate_artifact(artifact, data)
    _print_metrics(f"metrics on {data}", metrics)
    if output is not None:
        atomic_write_text(output, json.dumps(metrics, indent=2))
        _say(f"wrote {output}")


@app.command()
def predict(
    artifact: Annotated[Path, typer.Argument(help="An artifact folder.")],
    input: Annotated[str, typer.Argument(help="CSV/TSV/JSONL/Parquet rows or an image folder.")],
    output: Annotated[
        Path | None, typer.Option("--output", help="CSV to write (default: stdout).")
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="onnxruntime, torch or sklearn (default: onnxruntime where model.onnx exists).",
        ),
    ] = None,
) -> None:
    """Predict with a saved model: CSV with the predicted label and one probability per class
    (a seq2seq model: a text file of sources, one per line, or a table's source column in;
    CSV with source and output out)."""
    from ladder.export.artifact import load
    from ladder.export.predictions import predictions_frame
    from ladder.export.s2s_artifact import is_seq2seq, load_translator
    from ladder.export.s2s_predictions import read_sources, translations_frame
    from ladder.io import atomic_write_text

    if is_seq2seq(artifact):
        translator = load_translator(artifact, backend)
        column = translator.manifest.get("input", {}).get("column", "source")
        frame = translations_frame(translator, read_sources(input, column))
    else:
        frame = predictions_frame(load(artifact, backend), input)
    text = frame.to_csv(index=False, float_format="%.6g")
    if output is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(output, text)
        _say(f"wrote {len(frame)} predictions to {output}", err=True)


@app.command()
def compress(
    run_dir: Annotated[Path, typer.Argument(help="A run folder of `ladder run`.")],
    set_: SetOption = None,
    wait: WaitOption = False,
) -> None:
    """Apply the config's compress: section to a finished run; print the new leaderboard."""
    from ladder.compress.run import compress_run

    result = compress_run(run_dir, set_ or [], wait=wait)
    _print_leaderboard(result.leaderboard)
    if result.report is not None:
        _say(f"report:     {result.report}")


@app.command()
def generate(
    artifact: Annotated[Path, typer.Argument(help="A generation or seq2seq artifact folder.")],
    prompt: Annotated[
        str,
        typer.Option("--prompt", "-p", help="The text to continue (seq2seq: the source text)."),
    ],
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", "-n", help="Tokens to generate at most.")
    ] = 100,
    temperature: Annotated[
        float | None,
        typer.Option(
            "--temperature",
            "-t",
            help="0: greedy; higher: more varied (default 0.8; seq2seq: the artifact's beam "
            "search, printed whole).",
        ),
    ] = None,
    beam_size: Annotated[
        int | None,
        typer.Option("--beam-size", help="seq2seq: beam search with this many beams."),
    ] = None,
    top_k: Annotated[
        int | None, typer.Option("--top-k", help="Sample from the k most likely tokens only.")
    ] = None,
    top_p: Annotated[
        float | None,
        typer.Option("--top-p", help="Sample from the smallest set holding this probability."),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Makes sampling repeatable.")] = None,
    stop: Annotated[
        list[str] | None, typer.Option("--stop", help="Stop before this text (repeatable).")
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option("--backend", help="torch, onnxruntime (a GPT's model.onnx) or numpy."),
    ] = None,
) -> None:
    """Continue a prompt with a language model, or translate a source with a seq2seq model,
    streaming the text as it is generated (a seq2seq beam search prints its output whole)."""
    from ladder.console import say
    from ladder.errors import LadderError
    from ladder.export.lm_artifact import load_generator
    from ladder.export.s2s_artifact import is_seq2seq, load_translator
    from ladder.generate.stream import SamplingParams

    seq2seq = is_seq2seq(artifact)
    if beam_size is not None and not seq2seq:
        raise LadderError("--beam-size: beam search is for seq2seq artifacts")
    chosen = 0.8 if temperature is None else temperature
    params = SamplingParams(max_new_tokens, chosen, top_k, top_p, seed, tuple(stop or ()))
    problems = params.problems()
    if problems:
        raise LadderError(f"--{problems[0].replace('_', '-', 2)}")
    generator = load_translator(artifact, backend) if seq2seq else load_generator(artifact, backend)
    try:
        ids, cut = generator.prompt_ids(prompt)
    except ValueError as exc:
        raise LadderError(f"--prompt: {exc}") from exc
    if cut and seq2seq:
        say(
            f"warning: the source is {len(ids) + cut} tokens and the model reads {len(ids)}: "
            f"its last {cut} tokens are left out"
        )
    elif cut:
        say(
            f"warning: the prompt is {len(ids) + cut} tokens and the model reads "
            f"{generator.context_length}: its first {cut} tokens are left out"
        )
    if seq2seq and temperature is None:
        search = generator.search if hasattr(generator, "search") else None
        if beam_size is not None and search is not None:
            search = replace(search, beam_size=beam_size)
        if search is not None:
            search = replace(search, max_new_tokens=min(max_new_tokens, search.max_new_tokens))
            problems = search.problems()
            if problems:
                raise LadderError(f"--{problems[0].replace('_', '-', 2)}")
        sys.stdout.write(generator.translate([prompt], search)[0] + "\n")
        return
    for chunk in generator.stream(prompt, params):
        sys.stdout.write(chunk)
        sys.stdout.flush()
    sys.stdout.write("\n")


class ExportFormat(str, Enum):
    onnx = "onnx"


@app.command()
def export(
    artifact: Annotated[Path, typer.Argument(help="An artifact folder.")],
    format: Annotated[
        ExportFormat, typer.Option("--format", help="The export format.")
    ] = ExportFormat.onnx,
) -> None:
    """(Re)export an artifact's model.onnx, verified against its own model, in place."""
    from ladder.export.reexport import export_artifact

    info = export_artifact(artifact)
    _say(
        f"wrote {artifact / 'model.onnx'} (opset {info['opset']}; max abs difference "
        f"{info['max_abs_diff']:.1e} on {info['rows_checked']} synthetic rows)"
    )


class LogLevel(str, Enum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


@app.command()
def serve(
    artifacts: Annotated[list[Path], typer.Argument(help="Artifact folders to serve.")],
    host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0: every interface).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="REST port.")] = 8000,
    grpc_port: Annotated[int, typer.Option(help="gRPC port; 0: no gRPC server.")] = 8001,
    max_batch_size: Annotated[int, typer.Option(min=1, help="Rows per merged batch.")] = 64,
    max_batch_delay_ms: Annotated[
        float, typer.Option(min=0, help="How long the oldest request may wait for more (ms).")
    ] = 0.0,
    max_queue: Annotated[int, typer.Option(min=1, help="Requests waiting per model.")] = 100,
    timeout_s: Annotated[float, typer.Option(min=0.001, help="Per-request timeout (s).")] = 30.0,
    workers: Annotated[int, typer.Option(min=1, help="Batches running at once per model.")] = 1,
    threads: Annotated[int, typer.Option(min=1, help="ONNX Runtime threads per batch.")] = 1,
    api_key_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the API key.")
    ] = None,
    max_request_rows: Annotated[
        int | None,
        typer.Option(min=1, help="Rows one request may hold (default: --max-batch-size)."),
    ] = None,
    max_body_mb: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="Request body limit in MiB (default: twice what --max-request-rows rows of "
            "the widest model take as JSON, at least 8).",
        ),
    ] = None,
    drain_timeout_s: Annotated[float, typer.Option(min=0, help="Graceful shutdown limit (s).")] = (
        30.0
    ),
    log_level: Annotated[
        LogLevel, typer.Option(help="Log level; info shows the access log, one line a request.")
    ] = LogLevel.info,
    max_sequences: Annotated[
        int,
        typer.Option(
            min=1, help="Language models: sequences decoded together (continuous batching)."
        ),
    ] = 16,
    max_new_tokens: Annotated[
        int,
        typer.Option(min=1, help="Language models: the most new tokens one request may ask for."),
    ] = 512,
) -> None:
    """Serve artifacts over the Open Inference Protocol (REST and gRPC) with /metrics;
    language models also answer Triton's generate and generate_stream."""
    from ladder.serve.batcher import BatchSettings
    from ladder.serve.generation import GenerationSettings
    from ladder.serve.server import ServeSettings
    from ladder.serve.server import serve as run_server

    batching = BatchSettings(
        max_batch_size,
        max_batch_delay_ms / 1000.0,
        max_queue,
        timeout_s,
        workers,
        max_request_rows,
    )
    settings = ServeSettings(
        list(artifacts),
        host,
        port,
        grpc_port or None,
        batching,
        api_key_env,
        None if max_body_mb is None else int(max_body_mb * 1024 * 1024),
        drain_timeout_s,
        threads,
        log_level.value,
        GenerationSettings(max_sequences, max_new_tokens),
    )
    run_server(settings, say=lambda m: _say(m, err=True))


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="A run folder of `ladder run`.")]) -> None:
    """Re-render report.html from a run folder, without retraining."""
    from ladder.report import render_report

    _say(f"report: {render_report(run_dir)}")


@app.command()
def tune(
    config: Annotated[Path, typer.Argument(help="The YAML config.")],
    model: Annotated[str, typer.Option("--model", help="Name of the model entry to tune.")],
    trials: Annotated[
        int | None,
        typer.Option("--trials", help="Trials the study should hold (default: tune.trials, 30)."),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Stop starting trials after S seconds.")
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", help="Trials at once on this machine (processes).")
    ] = 1,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="A database URL shared by many machines (postgresql://USER@HOST/DB); "
            "default: a journal file in the run folder.",
        ),
    ] = None,
    study: Annotated[
        str | None, typer.Option("--study", help="The study's name (default: NAME-MODEL).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Run folder (default runs/NAME).")
    ] = None,
    set_: SetOption = None,
) -> None:
    """Search a model's hyperparameters (Optuna), then test the best once as `MODEL (tuned)`."""
    from ladder.runner.tune import TuneRequest
    from ladder.runner.tune import tune as tune_one

    request = TuneRequest(model, trials, timeout, jobs, storage, study)
    result = tune_one(config, request, out, overrides=set_ or [])
    _say(
        f"best {result.metric} on the validation split: {result.best_value:.4f} "
        f"(of {len(result.trials)} trials)"
    )
    for name, value in result.best_params.items():
        _say(f"  {name}: {value}")
    if result.run is not None:
        _print_leaderboard(result.run.leaderboard)
    _say(f"best values as config: {result.tune_dir / 'best.yaml'}")
    if result.run is not None and result.run.report is not None:
        _say(f"report: {result.run.report}")


class ListWhat(str, Enum):
    models = "models"
    datasets = "datasets"


@app.command(name="list")
def list_(
    what: Annotated[
        ListWhat | None, typer.Argument(help="models or datasets (default: models)")
    ] = None,
    tune_spaces: Annotated[
        bool, typer.Option("--tune", help="Each model type's default search space.")
    ] = False,
) -> None:
    """List the registered model types (with parameters and defaults, or with `--tune` their
    default search spaces) or the builtin datasets."""
    from rich.console import Console
    from rich.table import Table

    if tune_spaces:
        if what is ListWhat.datasets:
            raise typer.BadParameter("--tune lists the models' default search spaces")
        from ladder.registry import MODEL_TYPES
        from ladder.tuning.defaults import default_space
        from ladder.tuning.space import canonical_name

        table = Table("type", "parameter", "search space")
        for name in MODEL_TYPES:
            for i, (param, space) in enumerate(default_space(name).items()):
                shown = ", ".join(f"{k}: {v}" for k, v in space.items())
                table.add_row(name if i == 0 else "", canonical_name(param), f"{{{shown}}}")
    elif what in (None, ListWhat.models):
        from ladder.registry import describe_models

        table = Table("type", "family", "parameters (defaults)", "summary")
        for row in describe_models():
            params = ", ".join(f"{k}={v}" for k, v in row["params"].items())
            table.add_row(row["type"], row["family"], params, row["summary"])
    else:
        from ladder.data import list_builtin_datasets

        rows = list_builtin_datasets()
        table = Table(*rows[0].keys())
        for row in rows:
            table.add_row(*(str(v) for v in row.values()))
    Console(width=160 if not sys.stdout.isatty() else None).print(table)


def _print_leaderboard(board: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    hidden = {"variant_of", "log_loss", "params", "size_bytes", "train_seconds", "throughput_per_s"}
    # the CSV has them all; the terminal leaves out the above and columns empty in every row
    columns = [
        c for c in board.columns if c not in hidden and (board.empty or not board[c].isna().all())
    ]
    table = Table(*columns, title="leaderboard")
    for row in board.to_dict(orient="records"):
        table.add_row(*(_cell(row.get(c)) for c in columns))
    Console(width=160 if not sys.stdout.isatty() else None).print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.4g}"  # NaN prints as blank
    return "" if value is None else str(value)


def _print_metrics(title: str, metrics: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("metric", "value", title=title)
    for key, value in metrics.items():
        if isinstance(value, float):
            table.add_row(key, f"{value:.4f}")
        elif isinstance(value, int | str) or value is None:
            table.add_row(key, str(value))
    Console().print(table)


def _say(message: str, err: bool = False) -> None:
    print(message, file=sys.stderr if err else sys.stdout)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    from ladder.errors import LadderError

    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        app(args=args, prog_name="ladder", standalone_mode=True)  # usage errors exit 2 here
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    except LadderError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
