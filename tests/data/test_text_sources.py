"""Text sources through load_dataset: table columns, text files, class folders, hf: datasets.

Nothing here goes online: `hf:` tests use local folders, or block sockets and check that the
offline and unreachable cases fail fast.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import pytest
from data_helpers import cfg

from ladder.config import SplitConfig
from ladder.data import describe_data, load_dataset, split_dataset
from ladder.data.text_sources import count_empty
from ladder.errors import DataError, LadderError

# ----------------------------------------------------------------------------- tables


def test_csv_text_column(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text('id,body,label\n1,loved it,pos\n2,,neg\n3,"dull, slow",neg\n4, 42 ,pos\n')
    ds = load_dataset(cfg(str(path), text="body"))
    assert ds.kind == "text" and ds.text_column == "body" and ds.target == "label"
    assert isinstance(ds.X, np.ndarray) and ds.X.dtype == object and ds.X.ndim == 1
    assert ds.X.tolist() == ["loved it", "", "dull, slow", "42"]  # empty kept as ""
    assert ds.labels == ["neg", "pos"] and ds.y.tolist() == [1, 0, 0, 1]
    assert ds.source_columns == ["id", "body", "label"]


def test_rows_without_a_label_are_dropped_only_when_asked(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\na,x\nb,\nc,y\n")
    with pytest.raises(DataError, match="drop_missing_target"):
        load_dataset(cfg(str(path), text="text"))
    ds = load_dataset(cfg(str(path), text="text", drop_missing_target=True))
    assert ds.X.tolist() == ["a", "c"] and ds.y.tolist() == [0, 1]


def test_missing_text_column_lists_columns_and_suggests(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("review_text,label\na,x\nb,y\n")
    with pytest.raises(DataError) as info:
        load_dataset(cfg(str(path), text="review-text"))
    message = str(info.value)
    assert "no text column 'review-text'" in message and "did you mean 'review_text'?" in message
    assert "(columns: review_text, label)" in message and "data.text" in message
    with pytest.raises(DataError, match="no target column 'labels'; did you mean 'label'"):
        load_dataset(cfg(str(path), text="review_text", target="labels"))


def test_suffixless_tsv_like_sms_spam(tmp_path):
    path = tmp_path / "SMSSpamCollection"
    path.write_text(
        'ham\tGo until jurong point, crazy.. "Available" only\n'
        'spam\tFree entry in 2 a wkly comp. Text "WIN" to 80086\n'
        "ham\tU dun say so early hor... U c already then say...\n"
        "ham\t\n"
    )
    with pytest.raises(DataError, match=r"set data\.format"):
        load_dataset(cfg(str(path), columns=["label", "text"], text="text"))
    ds = load_dataset(cfg(str(path), format="tsv", columns=["label", "text"], text="text"))
    assert ds.X.tolist() == [
        'Go until jurong point, crazy.. "Available" only',
        'Free entry in 2 a wkly comp. Text "WIN" to 80086',
        "U dun say so early hor... U c already then say...",
        "",
    ]
    assert ds.labels == ["ham", "spam"] and ds.y.tolist() == [0, 1, 0, 0]


# ----------------------------------------------------------------------------- text files


def test_text_files_split_on_newline_only(tmp_path):
    (tmp_path / "pos.txt").write_text(
        "a fine film\nnext\x85line stays one text\nand\u2028this too\n", encoding="utf-8"
    )
    (tmp_path / "neg.txt").write_bytes(b"awful\r\nworse\r\n")
    ds = load_dataset(cfg(str(tmp_path), text_files={"pos": "pos.txt", "neg": "neg.txt"}))
    assert ds.kind == "text" and ds.text_column == "text"
    assert ds.labels == ["neg", "pos"]
    assert ds.X.tolist() == [
        "awful",
        "worse",
        "a fine film",
        "next\x85line stays one text",
        "and\u2028this too",
    ]
    assert ds.y.tolist() == [0, 0, 1, 1, 1]


def test_text_files_keep_inner_blank_lines_as_empty_texts(tmp_path):
    (tmp_path / "a.txt").write_text("one\n\ntwo")  # no final newline
    (tmp_path / "b.txt").write_text("three\n")
    ds = load_dataset(cfg(str(tmp_path), text_files={"a": "a.txt", "b": "b.txt"}))
    assert ds.X.tolist() == ["one", "", "two", "three"]
    assert count_empty(ds.X) == 1


def test_text_files_errors(tmp_path):
    (tmp_path / "pos.txt").write_text("good\n")
    with pytest.raises(DataError, match=r"data\.text_files\.neg: .*nope\.txt: file not found"):
        load_dataset(cfg(str(tmp_path), text_files={"pos": "pos.txt", "neg": "nope.txt"}))
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError, match=r"data\.text_files\.neg: .*empty\.txt: .*no texts"):
        load_dataset(cfg(str(tmp_path), text_files={"pos": "pos.txt", "neg": "empty.txt"}))
    with pytest.raises(DataError, match="at least one"):
        load_dataset(cfg(str(tmp_path), text_files={}))
    with pytest.raises(DataError, match=r"needs data\.source to be their folder"):
        load_dataset(cfg(str(tmp_path / "pos.txt"), text_files={"pos": "pos.txt"}))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_dataset(cfg(str(tmp_path), text_files={"pos": "pos.txt", "neg": "latin1.txt"}))


# ----------------------------------------------------------------------------- class folders


def write_imdb_like(root: Path) -> Path:
    """root/{neg,pos,unsup}/*.txt plus files beside the folders, as in aclImdb/train."""
    for label, n in (("neg", 3), ("pos", 2), ("unsup", 2)):
        (root / label).mkdir(parents=True)
        for i in range(n):
            (root / label / f"{i}_{label}.txt").write_text(f"{label} review {i}\nline two")
    (root / "pos" / "notes.md").write_text("not a review")
    (root / "urls_pos.txt").write_text("http://example.com")
    (root / "labeledBow.feat").write_text("0 1:2")
    return root


def test_class_folders_of_txt_files(tmp_path):
    root = write_imdb_like(tmp_path / "train")
    ds = load_dataset(cfg(str(root), drop=["unsup"]))
    assert ds.kind == "text" and ds.labels == ["neg", "pos"]
    assert ds.X.tolist() == [
        "neg review 0\nline two",
        "neg review 1\nline two",
        "neg review 2\nline two",
        "pos review 0\nline two",
        "pos review 1\nline two",
    ]
    assert ds.y.tolist() == [0, 0, 0, 1, 1]
    assert load_dataset(cfg(str(root))).labels == ["neg", "pos", "unsup"]


def test_empty_class_folder_is_an_error(tmp_path):
    root = write_imdb_like(tmp_path / "train")
    (root / "extra").mkdir()
    (root / "extra" / "readme.md").write_text("no texts here")
    with pytest.raises(DataError, match=r"extra: class folder has no \.txt files") as info:
        load_dataset(cfg(str(root), drop=["unsup"]))
    assert "data.drop" in str(info.value)
    assert load_dataset(cfg(str(root), drop=["unsup", "extra"])).labels == ["neg", "pos"]


# ----------------------------------------------------------------------------- splits


def test_describe_data_counts_empty_texts(tmp_path):
    rows = [f"{'' if i % 2 else f'text number {i}'},{'ab'[i % 4 // 2]}" for i in range(40)]
    path = tmp_path / "t.csv"
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    ds = load_dataset(cfg(str(path), text="text"))
    assert count_empty(ds.X) == 20
    splits = split_dataset(ds, SplitConfig(test=0.25, val=0.25), seed=0)
    info = describe_data(splits, str(path))
    assert info["kind"] == "text" and info["rows"]["total"] == 40
    features = info["features"]
    assert features["text_column"] == "text"
    assert features["empty_texts"] == 20  # in all splits
    assert sum(count_empty(ds.X) for _, ds in splits.items()) == 20
    assert features["max_words"] == 3
    assert info["sha256"] == describe_data(split_dataset(ds, SplitConfig(), 1), "x")["sha256"]


def test_count_empty_counts_whitespace_only():
    assert count_empty(np.array(["", " \t", "x", "\n"], dtype=object)) == 3


def test_one_class_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\na,spam\nb,spam\nc,spam\n")
    ds = load_dataset(cfg(str(path), text="text"))
    with pytest.raises(DataError, match=r"only one class \('spam'\)"):
        split_dataset(ds, SplitConfig(), seed=0)
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "a.txt").write_text("text")
    one_file = load_dataset(cfg(str(tmp_path / "only"), text_files={"a": "a.txt"}))
    with pytest.raises(DataError, match="only one class"):
        split_dataset(one_file, SplitConfig(), seed=0)


# ----------------------------------------------------------------------------- hf:


@pytest.fixture
def datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`datasets` caches what it loads; keep that in tmp_path (it read HF_HOME at import)."""
    datasets = pytest.importorskip("datasets")
    cache = tmp_path / "hf-datasets-cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    return cache


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, datasets_cache: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every name lookup or connection attempt is refused and recorded."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


def free_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_hf_local_folder_with_splits(tmp_path, offline, no_network, datasets_cache):
    folder = tmp_path / "reviews"
    folder.mkdir()
    (folder / "train.csv").write_text("text,label\ngreat,pos\nawful,neg\nfine,pos\n")
    (folder / "test.csv").write_text("text,label\nugh,neg\nlovely,pos\n")
    ds = load_dataset(cfg(f"hf:{folder}"))
    assert ds.kind == "text" and ds.text_column == "text"
    assert ds.X.tolist() == ["great", "awful", "fine"] and ds.labels == ["neg", "pos"]
    assert ds.y.tolist() == [1, 0, 1]
    test = load_dataset(cfg(f"hf:{folder}@test"))
    assert test.X.tolist() == ["ugh", "lovely"] and test.y.tolist() == [0, 1]
    with pytest.raises(DataError, match=r"@validation: cannot load the dataset: Unknown split"):
        load_dataset(cfg(f"hf:{folder}@validation"))  # a local folder: offline is no excuse
    with pytest.raises(DataError, match="no text column 'body'"):
        load_dataset(cfg(f"hf:{folder}", text="body"))
    assert no_network == []
    assert datasets_cache.is_dir()  # the Arrow cache went to tmp_path, not the home folder


def test_hf_single_csv_is_the_train_split(tmp_path, offline, no_network):
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "data.csv").write_text("body,label\nx,1\ny,2\n")
    ds = load_dataset(cfg(f"hf:{folder}", text="body"))
    assert ds.X.tolist() == ["x", "y"] and ds.labels == [1, 2]
    assert no_network == []


def test_hf_class_label_names_become_labels(tmp_path, offline, no_network):
    import datasets

    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    folder = tmp_path / "pq"
    folder.mkdir()
    rows = {"text": ["a", "b", "c", "hidden"], "label": [1, 0, 1, -1]}  # -1: no label
    datasets.Dataset.from_dict(rows, features).to_parquet(str(folder / "train.parquet"))
    with pytest.raises(DataError, match="1 rows have no value in target column 'label'"):
        load_dataset(cfg(f"hf:{folder}"))
    ds = load_dataset(cfg(f"hf:{folder}", drop_missing_target=True))
    assert ds.labels == ["neg", "pos"] and ds.y.tolist() == [1, 0, 1]
    assert ds.X.tolist() == ["a", "b", "c"]
    assert no_network == []


def test_hf_unknown_name_offline_fails_fast(offline, no_network, monkeypatch):
    import datasets
    import huggingface_hub.constants

    # as if both libraries were imported before HF_HUB_OFFLINE was set
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    start = time.perf_counter()
    with pytest.raises(DataError, match="HF_HUB_OFFLINE is set and it is not cached") as info:
        load_dataset(cfg("hf:some-unknown-name"))
    assert time.perf_counter() - start < 10
    assert "hf:some-unknown-name" in str(info.value)
    assert no_network == []
    # the libraries' own flags are as they were
    assert datasets.config.HF_HUB_OFFLINE is False
    assert huggingface_hub.constants.HF_HUB_OFFLINE is False


def test_hf_unreachable_hub_fails_fast(monkeypatch, datasets_cache):
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    start = time.perf_counter()
    with pytest.raises(LadderError, match=r"cannot reach the Hugging Face hub \(127\.0\.0\.1\)"):
        load_dataset(cfg("hf:some-org/some-dataset"))
    assert time.perf_counter() - start < 10


def test_hf_folder_under_home(tmp_path, offline, no_network, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "reviews").mkdir()
    (tmp_path / "reviews" / "train.csv").write_text("text,label\nyes,a\nno,b\n")
    ds = load_dataset(cfg("hf:~/reviews"))
    assert ds.X.tolist() == ["yes", "no"] and ds.labels == ["a", "b"]
    assert no_network == []
