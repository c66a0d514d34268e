"""TF-IDF text baselines: configs, pipeline structure, fit, seeds, class weights, persistence."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from pydantic import ValidationError
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from ladder.errors import ArtifactError
from ladder.evaluate.compare import count_params
from ladder.models import classical, tfidf
from ladder.models.classical import load_estimator, save_estimator, with_class_weight, with_seed
from ladder.models.tfidf import SPECS, TfidfLogRegConfig, TfidfRidgeConfig, TfidfSVMConfig

TYPES = ["tfidf_logreg", "tfidf_svm"]
CONFIGS = {"tfidf_logreg": TfidfLogRegConfig, "tfidf_svm": TfidfSVMConfig}
RT_POLARITY = Path(__file__).parents[2].parent / "shared" / "data" / "rt_polarity"

WORDS = {  # class -> words that give it away; every text mixes in shared filler
    0: ["awful", "boring", "dull", "bad", "worst"],
    1: ["great", "lovely", "superb", "fun", "best"],
    2: ["okay", "average", "fine", "middling", "so-so"],
}
FILLER = ["the", "movie", "film", "was", "plot", "actors"]


@pytest.fixture(autouse=True)
def one_thread():
    with threadpool_limits(1):
        yield


def texts(n_classes: int, per_class: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Tiny separable texts: `per_class` sentences of each class, as a 1-D object array."""
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for label in range(n_classes):
        for _ in range(per_class):
            words = [*rng.choice(WORDS[label], 2), *rng.choice(FILLER, 3)]
            rows.append(" ".join(rng.permutation(words)))
            labels.append(label)
    return np.array(rows, dtype=object), np.array(labels)


def make(model_type: str, seed: int | None = 0, **params):
    """An unfitted pipeline of `model_type` built through its config, as ladder does."""
    pipeline = tfidf.build(CONFIGS[model_type].model_validate(params), (64, 1000), 2)
    return pipeline if seed is None else with_seed(pipeline, seed)


def fitted(model_type: str, n_classes: int = 2, **params):
    return make(model_type, **params).fit(*texts(n_classes))


def messages(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return {".".join(map(str, e["loc"])): e["msg"] for e in exc.value.errors()}


# ----------------------------------------------------------------------------- specs and building


def test_specs_register_the_types_as_classical_text_models():
    assert [s.type for s in SPECS] == [*TYPES, "tfidf_ridge"]
    assert all(s.family == "classical" and s.inputs == ("text",) for s in SPECS)
    assert [s.config_cls for s in SPECS] == [TfidfLogRegConfig, TfidfSVMConfig, TfidfRidgeConfig]
    classifiers, ridge = SPECS[:2], SPECS[2]
    assert all(s.summary and s.build is tfidf.build for s in classifiers)
    assert ridge.tasks == ("regression",) and ridge.builder("regression") is tfidf.build


def test_default_params_list_the_config_defaults():
    shared = {
        "word_ngrams": [1, 2],
        "char_ngrams": [2, 5],
        "min_df": 1,
        "max_features": None,
        "sublinear_tf": True,
        "lowercase": True,
    }
    assert classical.default_params("tfidf_logreg") == {**shared, "C": 5.0, "max_iter": 1000}
    assert classical.default_params("tfidf_svm") == {**shared, "C": 0.3}
    assert "max_iter" in classical.default_params("logistic_regression")  # others unchanged


def test_logreg_pipeline_has_word_and_char_vectorizers():
    pipeline = make("tfidf_logreg", min_df=2, max_features=500, lowercase=False, C=2.0)
    assert type(pipeline) is Pipeline
    assert [name for name, _ in pipeline.steps] == ["features", "clf"]
    features, clf = pipeline.named_steps["features"], pipeline.named_steps["clf"]
    assert type(features) is FeatureUnion
    (word_name, word), (char_name, char) = features.transformer_list
    assert (word_name, char_name) == ("word", "char")
    assert (word.analyzer, word.ngram_range) == ("word", (1, 2))
    assert (char.analyzer, char.ngram_range) == ("char_wb", (2, 5))
    for vectorizer in (word, char):
        assert type(vectorizer) is TfidfVectorizer
        assert (vectorizer.min_df, vectorizer.max_features) == (2, 500)
        assert (vectorizer.sublinear_tf, vectorizer.lowercase) == (True, False)
    assert type(clf) is LogisticRegression
    assert (clf.C, clf.max_iter, clf.class_weight) == (2.0, 1000, None)


def test_words_only_uses_a_single_vectorizer():
    pipeline = make("tfidf_svm", char_ngrams=None, word_ngrams=[1, 3])
    features = pipeline.named_steps["features"]
    assert type(features) is TfidfVectorizer
    assert (features.analyzer, features.ngram_range) == ("word", (1, 3))


def test_svm_is_a_calibrated_linear_svc():
    clf = make("tfidf_svm", C=0.7).named_steps["clf"]
    assert type(clf) is CalibratedClassifierCV
    assert clf.ensemble is False
    assert type(clf.estimator) is LinearSVC
    assert clf.estimator.C == 0.7


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("bad", [[2, 1], [0, 2], [1], [1, 2, 3]])
def test_bad_ngram_range_is_rejected(bad):
    with pytest.raises(ValidationError) as exc:
        TfidfLogRegConfig.model_validate({"word_ngrams": bad})
    assert "must be [min_n, max_n] with 1 <= min_n <= max_n" in messages(exc)["word_ngrams"]


def test_every_problem_is_reported_at_once():
    with pytest.raises(ValidationError) as exc:
        TfidfSVMConfig.model_validate(
            {"char_ngrams": [5, 2], "C": 0, "min_df": 0, "max_iter": 10, "ngrams": [1, 2]}
        )
    found = messages(exc)
    assert set(found) == {"char_ngrams", "C", "min_df", "max_iter", "ngrams"}
    assert found["C"] == "Input should be greater than 0"
    assert found["max_iter"] == "Extra inputs are not permitted"  # svm has no max_iter
    assert found["ngrams"] == "Extra inputs are not permitted"


def test_class_weight_is_not_a_config_field():
    with pytest.raises(ValidationError, match="class_weight"):
        TfidfLogRegConfig.model_validate({"class_weight": "balanced"})


def test_char_ngrams_null_is_accepted():
    assert TfidfLogRegConfig.model_validate({"char_ngrams": None}).char_ngrams is None


# ----------------------------------------------------------------------------- fit and predict


@pytest.mark.parametrize("model_type", TYPES)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_fit_predicts_probabilities_for_any_text(model_type, n_classes):
    x, y = texts(n_classes)
    model = make(model_type).fit(x, y)
    assert (model.predict(x) == y).mean() > 0.9  # it learned the giveaway words
    new = ["", "zebra quantum xylophone", "GREAT superb fun", "awful"]  # empty, unseen, caps
    prob = model.predict_proba(new)
    assert prob.shape == (4, n_classes)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-9)
    assert prob[2].argmax() == 1 and prob[3].argmax() == 0
    assert model.predict_proba(list(x[:3])).shape == (3, n_classes)  # a list works too


def test_count_params_counts_the_classifier_weights():
    model = fitted("tfidf_logreg", char_ngrams=None)
    n_features = len(model.named_steps["features"].vocabulary_)
    assert count_params(model) == n_features + 1  # binary: one weight per feature + intercept
    assert count_params(fitted("tfidf_svm")) > 0


# ----------------------------------------------------------------------------- seed and balance


def test_with_seed_reaches_the_nested_classifier():
    assert make("tfidf_logreg", seed=7).named_steps["clf"].random_state == 7
    assert make("tfidf_svm", seed=7).named_steps["clf"].estimator.random_state == 7


@pytest.mark.parametrize("model_type", TYPES)
def test_with_class_weight_balances_the_nested_classifier(model_type):
    pipeline = with_class_weight(make(model_type), model_type)
    clf = pipeline.named_steps["clf"]
    inner = clf.estimator if model_type == "tfidf_svm" else clf
    assert inner.class_weight == "balanced"
    x, y = texts(2)
    keep = np.r_[0:10, 10:15]  # 10 vs 5: imbalanced, still fits
    assert pipeline.fit(x[keep], y[keep]).predict_proba(x).shape == (20, 2)


# ----------------------------------------------------------------------------- persistence

ROUND_TRIPS = [
    (t, n, params) for t in TYPES for n in (2, 3) for params in ({}, {"char_ngrams": None})
]


@pytest.mark.parametrize(("model_type", "n_classes", "params"), ROUND_TRIPS)
def test_save_load_round_trip_gives_identical_probabilities(
    model_type, n_classes, params, tmp_path
):
    model = fitted(model_type, n_classes, **params)
    x = [*texts(n_classes)[0], "", "never seen words"]
    vocabularies = [v.vocabulary_.copy() for v in tfidf.fitted_vectorizers(model)]
    save_estimator(model, tmp_path / "m.skops")
    # saving packs the vocabularies only while writing
    assert [v.vocabulary_ for v in tfidf.fitted_vectorizers(model)] == vocabularies
    loaded = load_estimator(tmp_path / "m.skops", model_type)
    assert [v.vocabulary_ for v in tfidf.fitted_vectorizers(loaded)] == vocabularies
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert type(load_estimator(tmp_path / "m.skops")) is Pipeline  # no type: any classical


def test_vocabulary_is_saved_as_one_string(tmp_path):
    model = fitted("tfidf_logreg")
    save_estimator(model, tmp_path / "m.skops")
    # read with plain skops (no unpacking): each vocabulary is its terms in column order
    raw = sio.load(tmp_path / "m.skops", trusted=list(classical.TRUSTED_TYPES))
    for saved, vectorizer in zip(
        tfidf.fitted_vectorizers(raw), tfidf.fitted_vectorizers(model), strict=True
    ):
        terms = json.loads(saved.vocabulary_)
        assert {term: i for i, term in enumerate(terms)} == vectorizer.vocabulary_


def test_a_failed_save_leaves_the_model_usable(tmp_path, monkeypatch):
    model = fitted("tfidf_logreg")

    def broken(obj, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(sio, "dumps", broken)
    with pytest.raises(OSError, match="disk full"):
        save_estimator(model, tmp_path / "m.skops")
    assert model.predict_proba(["great fun"]).shape == (1, 2)


@pytest.mark.parametrize(
    ("saved", "expected"),
    [
        ("tfidf_logreg", "logistic_regression"),
        ("tfidf_logreg", "tfidf_svm"),
        ("tfidf_svm", "tfidf_logreg"),
        ("logistic_regression", "tfidf_logreg"),
    ],
)
def test_load_refuses_a_model_of_another_type(saved, expected, tmp_path):
    if saved == "logistic_regression":
        model = LogisticRegression().fit(np.eye(4), [0, 1, 0, 1])
    else:
        model = fitted(saved)
    save_estimator(model, tmp_path / "m.skops")
    with pytest.raises(ArtifactError, match=f"expected {expected}$"):
        load_estimator(tmp_path / "m.skops", expected)


@pytest.mark.parametrize(
    ("name", "value"),
    [("token_pattern", r"(a+)+$"), ("stop_words", np.array(["a", "b"])), ("analyzer", "char")],
)
def test_load_refuses_a_vectorizer_build_never_makes(name, value, tmp_path):
    model = fitted("tfidf_logreg")
    setattr(model.named_steps["features"].transformer_list[0][1], name, value)
    sio.dump(model, tmp_path / "m.skops")
    with pytest.raises(ArtifactError, match="holds a Pipeline, expected tfidf_logreg"):
        load_estimator(tmp_path / "m.skops", "tfidf_logreg")


@pytest.mark.parametrize("index", [10**6, -1])
def test_unpacked_vocabulary_index_out_of_range_is_refused(index, tmp_path):
    model = fitted("tfidf_logreg")
    word = model.named_steps["features"].transformer_list[0][1]
    word.vocabulary_["great"] = index  # would become a sparse column index, unchecked
    sio.dump(model, tmp_path / "m.skops")  # written without ladder's packing
    with pytest.raises(ArtifactError, match="inconsistent TF-IDF vocabulary"):
        load_estimator(tmp_path / "m.skops", "tfidf_logreg")


@pytest.mark.parametrize(
    "packed", ['["great","great"]', "not json", "[1, 2]", '{"great": 0}', "[" * 10**5]
)
def test_tampered_packed_vocabulary_is_refused(packed, tmp_path):
    model = fitted("tfidf_logreg", char_ngrams=None)
    with tfidf.packed_vocabularies(model):
        model.named_steps["features"].vocabulary_ = packed
        sio.dump(model, tmp_path / "m.skops")
    with pytest.raises(ArtifactError, match="inconsistent TF-IDF vocabulary"):
        load_estimator(tmp_path / "m.skops", "tfidf_logreg")


def test_vocabulary_shorter_than_idf_is_refused(tmp_path):
    model = fitted("tfidf_svm", char_ngrams=None)
    vocabulary = model.named_steps["features"].vocabulary_
    del vocabulary[max(vocabulary, key=vocabulary.__getitem__)]
    save_estimator(model, tmp_path / "m.skops")
    with pytest.raises(ArtifactError, match="inconsistent TF-IDF vocabulary"):
        load_estimator(tmp_path / "m.skops", "tfidf_svm")


@pytest.mark.parametrize("model_type", TYPES)
def test_classifier_of_another_width_is_refused(model_type, tmp_path):
    model = fitted(model_type)
    other = fitted(model_type, char_ngrams=None)  # fewer features
    model.steps[1] = other.steps[1]
    save_estimator(model, tmp_path / "m.skops")
    with pytest.raises(ArtifactError, match=r"classifier expects \d+ features but the TF-IDF"):
        load_estimator(tmp_path / "m.skops", model_type)


def test_fitted_vectorizers_come_in_column_order_and_only_when_fitted():
    word, char = tfidf.fitted_vectorizers(fitted("tfidf_logreg"))
    assert (word.analyzer, char.analyzer) == ("word", "char_wb")
    assert tfidf.fitted_vectorizers(make("tfidf_logreg")) == []  # not fitted yet
    assert tfidf.fitted_vectorizers(LogisticRegression()) == []


def test_sample_texts_draw_on_the_vocabulary_and_include_hard_cases():
    model = fitted("tfidf_svm", 3)
    texts = tfidf.sample_texts(model, 20, seed=1)
    assert texts.dtype == object and len(texts) == 20
    assert texts[0] == "" and any(ord(c) > 127 for c in texts[1])  # empty, non-ASCII
    vocabulary = tfidf.fitted_vectorizers(model)[0].vocabulary_
    assert all(word in vocabulary for text in texts[2:] for word in text.split())
    assert model.predict_proba(texts).shape == (20, 3)
    np.testing.assert_array_equal(tfidf.sample_texts(model, 20, seed=1), texts)  # seeded
    assert list(tfidf.sample_texts(model, 1)) == [""]


# ----------------------------------------------------------------------------- measured goal


def read_rt_polarity() -> tuple[np.ndarray, np.ndarray]:
    """The 10,662 rt-polarity sentences (split on "\\n" only) and their labels (1 = positive)."""
    rows, labels = [], []
    for label, name in [(1, "rt-polarity.pos"), (0, "rt-polarity.neg")]:
        lines = (RT_POLARITY / name).read_bytes().decode("utf-8").split("\n")
        lines = lines[:-1] if lines[-1] == "" else lines
        rows += lines
        labels += [label] * len(lines)
    return np.array(rows, dtype=object), np.array(labels)


@pytest.mark.slow
@pytest.mark.skipif(not RT_POLARITY.is_dir(), reason="rt_polarity data not present")
def test_logreg_defaults_reach_76_percent_on_rt_polarity():
    from sklearn.model_selection import train_test_split

    x, y = read_rt_polarity()
    assert len(x) == 10_662
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.1, random_state=0, stratify=y
    )
    start = time.perf_counter()
    model = make("tfidf_logreg").fit(x_train, y_train)
    seconds = time.perf_counter() - start
    accuracy = float((model.predict(x_test) == y_test).mean())
    assert accuracy >= 0.76, f"accuracy {accuracy:.4f} after {seconds:.1f} s"
