"""The numpy TF-IDF runtime: scikit-learn's analyzers and TF-IDF vectors reproduced exactly
(unicode, empty and whitespace-only texts included), padded graph batches, and metadata that
is refused when damaged."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from threadpoolctl import threadpool_limits

from ladder.errors import ArtifactError
from ladder.export.onnx import OnnxPredictor, export_tfidf
from ladder.export.tfidf_runtime import (
    SparseRows,
    TfidfPart,
    TfidfRuntime,
    char_wb_ngrams,
    padded_batches,
    word_ngrams,
)
from ladder.models import tfidf
from ladder.models.classical import with_seed

TRICKY = [
    "",
    " ",
    " \t\n ",
    "a",
    "I",
    "ab",
    "Hello,  World!\t\nfoo   bar",
    "naïve café Ünïcödé",
    "日本語のテキスト 中文 한국어",
    "😀 emoji😀😀 ok",
    "İstanbul ΟΔΟΣ straße",  # lowercasing that changes length or depends on context
    "don't stop-believing 42 x2",
    "word " * 12,
]
TRAIN = [
    "the movie was great fun",
    "an awful boring film",
    "naïve café culture, très bien",
    "日本語 のテキスト 中文",
    "😀 emoji party 😀",
    "straße İstanbul ΟΔΟΣ",
    "I liked it a lot",
    "",
    "the film was great, a lot of fun",
    "the movie was awful",
]


@pytest.fixture(autouse=True)
def one_thread():
    with threadpool_limits(1):
        yield


@pytest.mark.parametrize("ngram_range", [(1, 1), (1, 2), (2, 3), (3, 5)])
def test_word_ngrams_match_scikit_learn(ngram_range):
    analyzer = TfidfVectorizer(analyzer="word", ngram_range=ngram_range).build_analyzer()
    for text in TRICKY:
        assert word_ngrams(text.lower(), ngram_range) == analyzer(text), text


@pytest.mark.parametrize("ngram_range", [(1, 1), (1, 3), (2, 5), (3, 3), (5, 7)])
def test_char_wb_ngrams_match_scikit_learn(ngram_range):
    analyzer = TfidfVectorizer(analyzer="char_wb", ngram_range=ngram_range).build_analyzer()
    for text in TRICKY:
        assert char_wb_ngrams(text.lower(), ngram_range) == analyzer(text), text


def fitted(n_classes: int = 2, **params):
    config = tfidf.TfidfLogRegConfig.model_validate(params)
    labels = np.arange(len(TRAIN)) % n_classes
    return with_seed(tfidf.build(config, (), n_classes), 0).fit(np.array(TRAIN, object), labels)


def runtime_of(pipeline, model_type: str = "tfidf_logreg") -> TfidfRuntime:
    runtime = OnnxPredictor(export_tfidf(pipeline, model_type), "classical").tfidf
    assert runtime is not None
    return runtime


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"char_ngrams": None},
        {"lowercase": False, "sublinear_tf": False, "word_ngrams": [1, 3], "char_ngrams": [1, 4]},
        {"min_df": 2},
    ],
)
def test_features_equal_scikit_learns(params):
    pipeline = fitted(**params)
    texts = TRICKY + TRAIN + ["the the the great great movie", "FUN fun Fun"]
    rows = runtime_of(pipeline).transform(np.array(texts, dtype=object))
    expected = sparse.csr_array(pipeline.steps[0][1].transform(texts))
    expected.sort_indices()
    np.testing.assert_array_equal(rows.indptr, expected.indptr)
    np.testing.assert_array_equal(rows.columns, expected.indices)
    np.testing.assert_allclose(rows.values, expected.data, rtol=1e-15, atol=0)


def test_an_empty_text_has_no_features_and_a_batch_of_none_is_empty():
    runtime = runtime_of(fitted())
    rows = runtime.transform(["", "zzzz qqqq"])
    assert list(rows.indptr) == [0, 0, 0] and len(rows.columns) == 0
    assert len(runtime.transform([])) == 0


def test_repeated_words_are_looked_up_once_and_the_cache_stays_bounded(monkeypatch):
    import ladder.export.tfidf_runtime as module

    runtime = runtime_of(fitted())
    char = runtime.parts[-1]
    first = runtime.transform(["great fun great"])
    assert set(char._cache) == {"great", "fun"}
    monkeypatch.setattr(module, "_CACHE_LIMIT", 1)
    again = runtime.transform(["great fun great", "movie"])
    assert len(char._cache) <= 3  # cleared once past the limit, then refilled
    np.testing.assert_array_equal(again.values[: len(first.values)], first.values)


def test_padded_batches_cover_each_row_once_within_the_budget():
    lengths = [0, 3, 1, 7, 2, 0, 5]
    columns = np.concatenate([np.arange(n) + 10 * i for i, n in enumerate(lengths)])
    rows = SparseRows(np.cumsum([0, *lengths]), columns, columns.astype(float) + 0.5)
    seen = []
    for chosen, ids, values in padded_batches(rows, pad_id=99, budget=8):
        assert ids.shape == values.shape and ids.shape[1] >= 1
        assert ids.size <= 8 or len(chosen) == 1  # one wide row may exceed the budget alone
        for line, row in enumerate(chosen):
            n = lengths[row]
            np.testing.assert_array_equal(ids[line, :n], np.arange(n) + 10 * row)
            np.testing.assert_array_equal(values[line, :n], ids[line, :n] + 0.5)
            assert (ids[line, n:] == 99).all() and (values[line, n:] == 0).all()
        seen += list(chosen)
    assert sorted(seen) == list(range(len(lengths)))


def test_metadata_round_trips_unicode_terms_and_exact_idf():
    part = TfidfPart(
        "char_wb",
        (2, 4),
        True,
        True,
        ["😀", "日本", "é", "\udce9x"],
        np.array([1.0, 1 / 3, np.pi, 2.5]),
    )
    back = TfidfRuntime.from_metadata(TfidfRuntime([part]).to_metadata())
    (got,) = back.parts
    assert got.terms == part.terms and got.ngram_range == (2, 4) and back.pad_id == 4
    np.testing.assert_array_equal(got.idf, part.idf)  # bit for bit


def valid_metadata() -> dict:
    part = TfidfPart("word", (1, 2), True, True, ["good", "bad"], np.array([1.5, 2.0]))
    return json.loads(TfidfRuntime([part]).to_metadata())


@pytest.mark.parametrize(
    "damage",
    [
        lambda m: m.update(format=2),
        lambda m: m.update(pad_id=5),
        lambda m: m.update(parts=[]),
        lambda m: m["parts"][0].update(analyzer="char"),
        lambda m: m["parts"][0].update(norm="l1"),
        lambda m: m["parts"][0].update(ngram_range=[2, 1]),
        lambda m: m["parts"][0].update(ngram_range=[1.0, 2]),
        lambda m: m["parts"][0].update(lowercase="yes"),
        lambda m: m["parts"][0].update(terms=["good", "good"]),
        lambda m: m["parts"][0].update(terms=["good", 3]),
        lambda m: m["parts"][0].update(terms=["good"]),
        lambda m: m["parts"][0].update(idf="not base64!"),
        lambda m: m["parts"][0].update(idf="AAAAAAAA8L8AAAAAAAAAQA=="),  # [-1.0, 2.0]
        lambda m: m["parts"][0].pop("terms"),
    ],
)
def test_damaged_metadata_is_refused(damage):
    metadata = valid_metadata()
    damage(metadata)
    with pytest.raises(ArtifactError, match="invalid TF-IDF vectoriser metadata"):
        TfidfRuntime.from_metadata(json.dumps(metadata))


def test_metadata_that_is_not_json_is_refused():
    with pytest.raises(ArtifactError, match="invalid TF-IDF vectoriser metadata"):
        TfidfRuntime.from_metadata("[" * 10**5)
