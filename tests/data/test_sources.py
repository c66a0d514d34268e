"""load_dataset: builtin sets, table files, image folders, IDX files, and every bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from data_helpers import cfg, write_idx, write_image_folder, write_png

from ladder.data import Dataset, list_builtin_datasets, load_dataset
from ladder.errors import DataError

SMS_SPAM = Path("/work/shared/data/sms_spam/SMSSpamCollection")


# ----------------------------------------------------------------------------- builtin


def test_builtin_digits_is_an_image_dataset_in_unit_range():
    ds = load_dataset(cfg("builtin:digits"))
    assert ds.kind == "image"
    assert ds.X.shape == (1797, 1, 8, 8) and ds.X.dtype == np.float32
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0
    assert ds.labels == list(range(10))
    assert ds.y.dtype == np.int64 and set(ds.y.tolist()) == set(range(10))


def test_builtin_tabular_uses_feature_names_and_sorted_target_names():
    from sklearn.datasets import load_breast_cancer

    ds = load_dataset(cfg("builtin:breast_cancer"))
    raw = load_breast_cancer()
    assert ds.kind == "tabular"
    assert list(ds.X.columns) == list(raw.feature_names)
    assert ds.labels == ["benign", "malignant"]
    # sklearn codes malignant as 0; our ids index the sorted names
    assert np.array_equal(np.array(ds.labels)[ds.y], raw.target_names[raw.target])


def test_builtin_iris_labels_and_drop():
    ds = load_dataset(cfg("builtin:iris", drop=["petal width (cm)"]))
    assert ds.labels == ["setosa", "versicolor", "virginica"]
    assert "petal width (cm)" not in ds.X.columns and ds.X.shape == (150, 3)


def test_unknown_builtin_lists_the_valid_names():
    with pytest.raises(DataError, match=r"builtin:digts") as err:
        load_dataset(cfg("builtin:digts"))
    message = str(err.value)
    assert "did you mean 'builtin:digits'" in message
    assert all(f"builtin:{n}" in message for n in ("digits", "breast_cancer", "wine", "iris"))


def test_list_builtin_datasets():
    rows = {r["name"]: r for r in list_builtin_datasets()}
    assert set(rows) == {"digits", "breast_cancer", "wine", "iris", "pydoc", "numbers-en-fr"}
    assert rows["pydoc"]["kind"] == "corpus" and rows["pydoc"]["rows"] > 50
    assert rows["numbers-en-fr"] == {
        "name": "numbers-en-fr",
        "kind": "pairs",
        "rows": 5000,
        "classes": 0,
    }
    assert rows["digits"] == {"name": "digits", "kind": "image", "rows": 1797, "classes": 10}
    assert rows["iris"]["kind"] == "tabular" and rows["wine"]["classes"] == 3


# ----------------------------------------------------------------------------- tables


def test_csv_strips_whitespace_and_keeps_quoted_text(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(
        ' size , colour ,label\n1.5 , red ,  yes \n2,"blue, dark" ,no\n 3 ,"said ""hi""",yes\n'
    )
    ds = load_dataset(cfg(str(path)))
    assert list(ds.X.columns) == ["size", "colour"]
    assert pd.api.types.is_numeric_dtype(ds.X["size"])
    assert ds.X["size"].tolist() == [1.5, 2.0, 3.0]
    assert ds.X["colour"].tolist() == ["red", "blue, dark", 'said "hi"']
    assert ds.labels == ["no", "yes"] and ds.y.tolist() == [1, 0, 1]
    assert ds.target == "label" and ds.source_columns == ["size", "colour", "label"]


def test_csv_na_values_make_a_numeric_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("age,job,label\n30, ?,a\n ? ,clerk,b\n41 ,n/a ,a\n")
    ds = load_dataset(cfg(str(path), na_values=["?", "n/a"]))
    assert pd.api.types.is_numeric_dtype(ds.X["age"])
    assert ds.X["age"].isna().tolist() == [False, True, False]
    assert ds.X["job"].isna().tolist() == [True, False, True]


def test_tsv_quotes_inside_text_are_text(tmp_path):
    path = tmp_path / "sms.tsv"
    path.write_text(
        'ham\t"Happy day" I know its early\n'
        'spam\tWin a "prize" now\n'
        'ham\t"fully quoted, with ""inner"" quotes"\n'
        "ham\tplain text\n"
    )
    ds = load_dataset(cfg(str(path), columns=["label", "text"]))
    assert len(ds) == 4
    assert ds.X["text"].tolist() == [
        '"Happy day" I know its early',
        'Win a "prize" now',
        'fully quoted, with "inner" quotes',
        "plain text",
    ]
    assert ds.labels == ["ham", "spam"]


def test_headerless_file_with_drop(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("1,x,9,a\n2,y,8,b\n")
    ds = load_dataset(cfg(str(path), columns=["n", "s", "id", "label"], drop=["id"]))
    assert list(ds.X.columns) == ["n", "s"] and ds.X["n"].tolist() == [1, 2]
    assert ds.source_columns == ["n", "s", "id", "label"]


def test_parquet_jsonl_and_gzipped_csv(tmp_path):
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": ["a", "b", "a"]})
    frame.to_parquet(tmp_path / "t.parquet")
    (tmp_path / "t.jsonl").write_text(
        '{"x": 1.0, "label": "a"}\n\n{"x": 2.0, "label": "b"}\n{"x": 3.0, "label": "a"}\n'
    )
    with gzip.open(tmp_path / "t.csv.gz", "wt") as f:
        frame.to_csv(f, index=False)
    for name in ("t.parquet", "t.jsonl", "t.csv.gz"):
        ds = load_dataset(cfg(str(tmp_path / name)))
        assert ds.X["x"].tolist() == [1.0, 2.0, 3.0], name
        assert ds.labels == ["a", "b"] and ds.y.tolist() == [0, 1, 0], name


def test_integer_labels_are_json_native_ints(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,label\n1,3\n2,1\n3,\n4,3\n")
    ds = load_dataset(cfg(str(path), drop_missing_target=True))
    assert ds.labels == [1, 3] and all(type(v) is int for v in ds.labels)
    assert ds.y.tolist() == [1, 0, 1] and ds.X["x"].tolist() == [1, 2, 4]


def test_mixed_type_json_labels_are_compared_as_text(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"x": 1, "label": 1}\n{"x": 2, "label": "a"}\n{"x": 3, "label": 1}\n')
    ds = load_dataset(cfg(str(path)))
    assert ds.labels == ["1", "a"] and ds.y.tolist() == [0, 1, 0]


def test_source_argument_overrides_cfg_source(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("x,label\n1,a\n2,b\n")
    ds = load_dataset(cfg("builtin:digits"), source=str(path))
    assert ds.kind == "tabular" and len(ds) == 2


def test_missing_target_values_are_an_error_naming_rows(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,label\n1,a\n2,\n3,b\n4, \n")
    with pytest.raises(DataError) as err:
        load_dataset(cfg(str(path)))
    message = str(err.value)
    assert str(path) in message and "2 rows have no value in target column 'label'" in message
    assert "rows 2, 4" in message and "data.drop_missing_target: true" in message


def test_a_quantity_target_is_regression_unless_classification_is_asked(tmp_path):
    path = tmp_path / "t.csv"
    values = np.linspace(0.05, 10.3, 40)
    pd.DataFrame({"x": range(40), "price": values}).to_csv(path, index=False)
    ds = load_dataset(cfg(str(path), target="price"))
    assert ds.task == "regression" and ds.labels == []
    np.testing.assert_allclose(ds.y, values)
    assert ds.task_reason == (
        "target 'price' is numeric with 40 distinct values: regression; set data.task to override"
    )
    with pytest.raises(DataError, match=r"looks like regression; set data.task: regression"):
        load_dataset(cfg(str(path), target="price", task="classification"))


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("fields.csv", "a,label\n1,x\n2,y,extra\n", "line 3 has 3 fields, expected 2"),
        ("empty.csv", "", "file is empty"),
        ("header.csv", "a,label\n", "no rows"),
        ("target.csv", "a,klass\n1,x\n", "no target column 'label' (columns: a, klass)"),
        ("bad.jsonl", '{"a": 1, "label": "x"}\n{"a": 2,\n', "line 2 is not valid JSON"),
        ("list.jsonl", "[1, 2]\n", "line 1: expected a JSON object"),
        ("garbage.parquet", "not parquet at all", "not a readable Parquet file"),
        ("data.xlsx", "PK", "unsupported file type '.xlsx'"),
        ("only.csv", "label\na\nb\n", "no feature columns"),
    ],
)
def test_bad_table_files(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError) as err:
        load_dataset(cfg(str(path)))
    assert str(path) in str(err.value) and expected in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match=r"no such file or folder"):
        load_dataset(cfg(str(tmp_path / "nope.csv")))
    with pytest.raises(DataError, match=r"no such file or folder"):
        load_dataset(cfg(str(tmp_path / "no_folder")))


def test_headerless_column_count_mismatch(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("1,2,a\n")
    with pytest.raises(DataError, match=r"file has 3 columns but data.columns names 2"):
        load_dataset(cfg(str(path), columns=["x", "label"]))


def test_drop_of_unknown_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,label\n1,a\n")
    with pytest.raises(DataError, match=r"do not exist: idd"):
        load_dataset(cfg(str(path), drop=["idd"]))


def test_not_utf8(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"x,label\n1,\xff\xfe\n")
    with pytest.raises(DataError, match=r"not UTF-8"):
        load_dataset(cfg(str(path)))


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".csv.gz"])
def test_not_utf8_names_the_files_byte_offset_and_line(tmp_path, suffix):
    # far past the reader's first chunk, whose own offset pandas would report
    rows = [f'{{"x": {i}, "label": "a"}}' if "jsonl" in suffix else f"{i},a" for i in range(50000)]
    text = "\n".join(["x,label", *rows] if "csv" in suffix else rows).encode() + b"\n"
    offset = len(text) - 200
    data = text[:offset] + b"\xe9" + text[offset + 1 :]
    path = tmp_path / f"t{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    with pytest.raises(DataError) as info:
        load_dataset(cfg(str(path)))
    line = data[:offset].count(b"\n") + 1
    assert f"byte 0xe9 at offset {offset}, line {line}:" in str(info.value)


def test_non_finite_feature_names_the_column_and_the_files_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('x,note,y,label\n1,a,2,p\n\n2,"two\nlines",1e39,q\n-inf,b,3,p\n')
    with pytest.raises(DataError) as info:
        load_dataset(cfg(str(path)))
    message = str(info.value)
    assert message.startswith(f"{path}: column 'y', line 4: 1e+39 is not a finite number")
    assert "data.non_finite: drop" in message
    path.write_text("1,p\n2,q\ninf,p\n")  # headerless: the first line is a row
    with pytest.raises(DataError, match=r"column 'x', line 3: inf"):
        load_dataset(cfg(str(path), columns=["x", "label"]))
    pd.DataFrame({"x": [1.0, np.inf], "label": ["p", "q"]}).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(DataError, match=r"t.parquet: column 'x', row 2: inf"):  # no lines
        load_dataset(cfg(str(tmp_path / "t.parquet")))


def test_non_finite_rows_are_dropped_and_counted_on_request(tmp_path, caplog):
    path = tmp_path / "t.jsonl"
    rows = ['{"x": 1, "label": "p"}', '{"x": null, "label": "q"}', '{"x": 3, "label": "p"}']
    path.write_text("\n".join([*rows, '{"x": 1e300, "label": "q"}', rows[0]]) + "\n")
    with pytest.raises(DataError, match=r"column 'x', line 4: 1e\+300"):
        load_dataset(cfg(str(path)))
    ds = load_dataset(cfg(str(path), non_finite="drop"))
    np.testing.assert_array_equal(ds.X["x"], [1, np.nan, 3, 1])  # null is missing, not dropped
    assert ds.dropped_non_finite == 1
    assert "dropped 1 rows with a non-finite number" in caplog.text


@pytest.mark.skipif(not SMS_SPAM.is_file(), reason="shared data not available")
def test_real_sms_spam_tsv_with_quotes(tmp_path):
    path = tmp_path / "sms.tsv"
    path.write_bytes(SMS_SPAM.read_bytes())
    ds = load_dataset(cfg(str(path), columns=["label", "text"]))
    assert len(ds) == 5574 and ds.labels == ["ham", "spam"]
    assert int((ds.y == 1).sum()) == 747


# ----------------------------------------------------------------------------- image folders


def test_grayscale_image_folder(tmp_path):
    root = write_image_folder(tmp_path / "img", per_class=3, size=(6, 5))
    ds = load_dataset(cfg(str(root)))
    assert ds.kind == "image" and ds.X.shape == (6, 1, 6, 5) and ds.X.dtype == np.float32
    assert ds.X.min() >= 0.0 and ds.X.max() <= 1.0
    assert ds.labels == ["a", "b"] and ds.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.X[ds.y == 0].mean() < 0.3 < 0.7 < ds.X[ds.y == 1].mean()


def test_rgb_folder_channels_and_resize(tmp_path):
    root = write_image_folder(tmp_path / "img", size=(6, 5), rgb=True)
    assert load_dataset(cfg(str(root))).X.shape == (6, 3, 6, 5)
    ds = load_dataset(cfg(str(root), channels=1, image_size=8))
    assert ds.X.shape == (6, 1, 8, 8)


def test_mixed_gray_and_rgb_becomes_rgb(tmp_path):
    root = write_image_folder(tmp_path / "img", size=(4, 4))
    write_png(root / "b" / "color.png", np.full((4, 4, 3), (255, 0, 0)))
    ds = load_dataset(cfg(str(root)))
    assert ds.X.shape == (7, 3, 4, 4)
    gray = ds.X[0]
    assert np.array_equal(gray[0], gray[1]) and np.array_equal(gray[1], gray[2])


def test_16_bit_and_palette_images_are_grayscale(tmp_path):
    from PIL import Image

    root = tmp_path / "img"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    Image.fromarray(np.full((3, 3), 65535, dtype=np.uint16)).save(root / "a" / "deep.png")
    Image.fromarray(np.full((3, 3), 51, dtype=np.uint8)).convert("P").save(root / "b" / "p.png")
    ds = load_dataset(cfg(str(root)))
    assert ds.X.shape == (2, 1, 3, 3)
    np.testing.assert_allclose(ds.X[0], 1.0)
    np.testing.assert_allclose(ds.X[1], 0.2, atol=1e-6)


def test_different_sizes_need_image_size(tmp_path):
    root = write_image_folder(tmp_path / "img", size=(4, 4))
    write_png(root / "b" / "big.png", np.zeros((9, 7)))
    with pytest.raises(DataError, match=r"set data.image_size") as err:
        load_dataset(cfg(str(root)))
    assert "big.png is 7x9" in str(err.value)
    assert load_dataset(cfg(str(root), image_size=5)).X.shape == (7, 1, 5, 5)


def test_corrupt_image_is_named(tmp_path):
    root = write_image_folder(tmp_path / "img")
    (root / "a" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match=r"broken.png: cannot decode image"):
        load_dataset(cfg(str(root)))


def test_empty_class_folder_and_no_class_folders(tmp_path):
    root = write_image_folder(tmp_path / "img")
    (root / "c").mkdir()
    (root / "c" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"class folder has no images") as err:
        load_dataset(cfg(str(root)))
    assert str(root / "c") in str(err.value)
    flat = tmp_path / "flat"
    write_png(flat / "x.png", np.zeros((3, 3)))
    with pytest.raises(DataError, match=r"no class folders"):
        load_dataset(cfg(str(flat)))


# ----------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("compress", [False, True])
def test_idx_files(tmp_path, compress):
    images = np.arange(4 * 3 * 2, dtype=np.uint8).reshape(4, 3, 2) * 10
    write_idx(tmp_path / "img.idx", images, compress)
    write_idx(tmp_path / "lab.idx", np.array([7, 2, 7, 5], dtype=np.uint8), compress)
    ds = load_dataset(cfg(f"idx:{tmp_path / 'img.idx'},{tmp_path / 'lab.idx'}"))
    assert ds.kind == "image" and ds.X.shape == (4, 1, 3, 2)
    np.testing.assert_allclose(ds.X[:, 0], images / 255.0, rtol=1e-6)
    assert ds.labels == [2, 5, 7] and ds.y.tolist() == [2, 0, 2, 1]


def test_idx_relative_paths_and_resize(tmp_path, monkeypatch):
    write_idx(tmp_path / "img.idx", np.zeros((2, 4, 4), dtype=np.uint8))
    write_idx(tmp_path / "lab.idx", np.array([0, 1], dtype=np.uint8))
    monkeypatch.chdir(tmp_path)
    ds = load_dataset(cfg("idx:img.idx,lab.idx", image_size=6, channels=3))
    assert ds.X.shape == (2, 3, 6, 6)


def test_bad_idx_files(tmp_path):
    labels = write_idx(tmp_path / "lab.idx", np.array([0, 1, 1], dtype=np.uint8))
    images = write_idx(tmp_path / "img.idx", np.zeros((2, 4, 4), dtype=np.uint8))
    with pytest.raises(DataError, match=r"has 2 images but .* has 3 labels"):
        load_dataset(cfg(f"idx:{images},{labels}"))
    garbage = tmp_path / "garbage.idx"
    garbage.write_bytes(b"hello world")
    with pytest.raises(DataError, match=r"garbage.idx: not an IDX file"):
        load_dataset(cfg(f"idx:{garbage},{labels}"))
    truncated = tmp_path / "short.idx"
    truncated.write_bytes(images.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"short.idx: IDX header says shape"):
        load_dataset(cfg(f"idx:{truncated},{labels}"))
    with pytest.raises(DataError, match=r"missing.idx: file not found"):
        load_dataset(cfg(f"idx:{tmp_path / 'missing.idx'},{labels}"))
    with pytest.raises(DataError, match=r"expected idx:IMAGES_FILE,LABELS_FILE"):
        load_dataset(cfg(f"idx:{images}"))


def test_dataset_subset_keeps_labels():
    ds = Dataset("tabular", pd.DataFrame({"x": [1, 2, 3]}), np.array([0, 1, 0]), ["a", "b"])
    sub = ds.subset(np.array([2, 1]))
    assert sub.X["x"].tolist() == [3, 2] and list(sub.X.index) == [0, 1]
    assert sub.y.tolist() == [0, 1] and sub.labels == ["a", "b"] and len(sub) == 2
