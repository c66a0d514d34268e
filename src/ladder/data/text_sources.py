"""Text data sources: a table's text column, class folders of .txt files (the aclImdb
layout), files of one text per line per class, and Hugging Face datasets (`hf:NAME[@SPLIT]`).

A missing or empty text is kept as the empty string; `describe_data` counts them.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # noqa: TID253

from ladder.config import DataConfig
from ladder.data.dataset import Dataset
from ladder.data.images import IMAGE_SUFFIXES
from ladder.data.target import encode_any_target
from ladder.data.text import as_texts
from ladder.errors import DataError, first_line
from ladder.hub import ensure_hub_reachable, hf_offline

DEFAULT_COLUMN = "text"


def text_from_frame(
    df: pd.DataFrame, cfg: DataConfig, where: str, text_column: str | None = None
) -> Dataset:
    """The text column (`cfg.text`) and target of a table as a text Dataset."""
    column = text_column or cfg.text or DEFAULT_COLUMN
    columns = [str(c) for c in df.columns]
    for name, key in ((column, "data.text"), (cfg.target, "data.target")):
        if name not in df.columns:
            hint = difflib.get_close_matches(name, columns, n=1)
            did_you_mean = f"; did you mean '{hint[0]}'?" if hint else ""
            what = "text" if key == "data.text" else "target"
            raise DataError(
                f"{where}: no {what} column '{name}'{did_you_mean} (columns: "
                f"{', '.join(columns)}); set {key}"
            )
    keep, y, labels, task, why = encode_any_target(
        df[cfg.target], where, cfg.target, cfg.task, cfg.drop_missing_target
    )
    texts = as_texts(df[column].to_numpy(dtype=object)[keep])
    return Dataset(
        "text",
        texts,
        y,
        labels,
        target=cfg.target,
        source_columns=columns,
        text_column=column,
        task=task,
        task_reason=why,
    )


def is_text_folder(root: Path) -> bool:
    """True when some class subfolder of `root` holds .txt files and none holds images."""
    folders = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")]
    files = [f for d in folders for f in d.iterdir() if f.is_file()]
    suffixes = {f.suffix.lower() for f in files}
    return ".txt" in suffixes and not suffixes & set(IMAGE_SUFFIXES)


def load_text_folder(root: Path, cfg: DataConfig) -> Dataset:
    """root/<class>/*.txt, one text per file (class folders named in `data.drop` skipped)."""
    classes = sorted(
        d
        for d in root.iterdir()
        if d.is_dir() and not d.name.startswith(".") and d.name not in cfg.drop
    )
    texts, y = [], []
    for label, folder in enumerate(classes):
        files = sorted(folder.glob("*.txt"))
        if not files:
            raise DataError(
                f"{folder}: class folder has no .txt files; add texts, remove the folder or "
                "name it in data.drop"
            )
        for file in files:
            texts.append(_read_text(file))
            y.append(label)
    return _dataset(texts, y, [d.name for d in classes])


def load_text_files(root: Path, cfg: DataConfig) -> Dataset:
    """`data.text_files` (label -> file in `root`): one text per line, split on "\\n" only."""
    assert cfg.text_files is not None
    if not cfg.text_files:
        raise DataError("data.text_files: expected at least one label: file entry")
    labels = sorted(cfg.text_files)
    texts, y = [], []
    for label_id, label in enumerate(labels):
        file = root / cfg.text_files[label]
        if not file.is_file():
            raise DataError(f"data.text_files.{label}: {file}: file not found")
        # split on \n only: a line may hold other characters Python counts as line breaks
        lines = _read_text(file).split("\n")
        if lines and lines[-1].strip() == "":
            lines.pop()  # the newline that ends the last line
        if not lines:  # else the label would be a class without a single example
            raise DataError(f"data.text_files.{label}: {file}: the file holds no texts")
        texts.extend(line.rstrip("\r") for line in lines)
        y.extend([label_id] * len(lines))
    return _dataset(texts, y, labels)


def load_hf(spec: str, cfg: DataConfig) -> Dataset:
    """`hf:NAME[@SPLIT]`: a Hugging Face dataset (hub name or local folder), split `train` by
    default, through the `datasets` library; its ClassLabel names become the labels."""
    name, _, split = spec.partition("@")
    split = split or "train"
    try:
        import datasets
    except ImportError as exc:
        raise DataError(
            f"hf:{spec}: Hugging Face datasets need the `datasets` package "
            "(pip install 'ladder-ml[text]')"
        ) from exc
    folder = Path(name).expanduser()
    local = folder.exists()
    if not local and not hf_offline():
        ensure_hub_reachable(f"hf:{spec}")
    try:
        with _offline_now(datasets):  # `datasets` does not expand "~" itself
            data = datasets.load_dataset(str(folder) if local else name, split=split)
    except (FileNotFoundError, ConnectionError, ValueError) as exc:
        first = first_line(exc)
        offline = (
            " (HF_HUB_OFFLINE is set and it is not cached)" if hf_offline() and not local else ""
        )
        raise DataError(f"hf:{spec}: cannot load the dataset{offline}: {first}") from exc
    frame = data.to_pandas()
    feature = data.features.get(cfg.target)
    if isinstance(feature, datasets.ClassLabel) and cfg.target in frame.columns:
        # -1 is the datasets convention for "no label" (e.g. hidden test labels): missing
        names = [feature.int2str(int(v)) if int(v) >= 0 else None for v in frame[cfg.target]]
        frame[cfg.target] = names
    return text_from_frame(frame, cfg, f"hf:{spec}")


@contextlib.contextmanager
def _offline_now(datasets: Any) -> Iterator[None]:
    """Offline for the duration when HF_HUB_OFFLINE is set now: `datasets` and huggingface_hub
    read it once, at import, and would otherwise retry the hub for half a minute."""
    import huggingface_hub.constants as hub_constants

    if not hf_offline():
        yield
        return
    saved = datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved


def count_empty(texts: np.ndarray) -> int:
    """The number of empty (or whitespace-only) texts."""
    return int(sum(1 for t in texts if not str(t).strip()))


def _dataset(texts: list[str], y: list[int], labels: list[str]) -> Dataset:
    return Dataset(
        "text",
        np.array(texts, dtype=object),
        np.asarray(y, dtype=np.int64),
        labels,
        text_column=DEFAULT_COLUMN,
    )


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{file}: not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    except OSError as exc:
        raise DataError(f"{file}: cannot read file ({exc})") from exc
