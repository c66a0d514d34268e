"""The translation memory: nearest training source by TF-IDF cosine, ties to the first pair,
and pickle-free persistence."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from ladder.errors import ArtifactError
from ladder.models.memory import JSON_FILE, MemoryConfig, TranslationMemory

SOURCES = ["twenty-one", "thirty-two", "one hundred", "seven"]
TARGETS = ["vingt et un", "trente-deux", "cent", "sept"]


def fitted(**config) -> TranslationMemory:
    return TranslationMemory(MemoryConfig(**config)).fit(SOURCES, TARGETS)


def test_a_training_source_gets_its_own_target():
    assert fitted().predict(SOURCES) == TARGETS


def test_a_new_source_gets_the_target_of_the_most_similar_source():
    memory = fitted()
    assert memory.predict(["twenty-two", "THIRTY-TWO", "one hundred and one", "seventeen"]) == [
        "vingt et un",
        "trente-deux",  # lowercased by default
        "cent",
        "sept",
    ]


def test_word_ngrams_and_case_sensitivity():
    memory = fitted(analyzer="word", ngram_min=1, ngram_max=2, lowercase=False)
    assert memory.predict(["one hundred and two", "Seven"]) == ["cent", "vingt et un"]
    # "Seven" shares no word with any source (case counts): every cosine is 0, the first wins


def test_ties_go_to_the_earliest_pair():
    memory = TranslationMemory().fit(["hello", "hello", "world"], ["first", "second", "third"])
    assert memory.predict(["hello", "unrelated qqq"]) == ["first", "first"]
    assert list(memory.nearest(["world"])) == [2]


def test_n_params_counts_the_stored_weights():
    memory = fitted()
    assert memory.n_params() == memory.matrix_.nnz + len(memory.vectorizer_.idf_) > 0


def test_save_and_load_give_the_same_predictions_without_pickle(tmp_path):
    memory = fitted(analyzer="word", ngram_max=2)
    assert memory.save(tmp_path) == [JSON_FILE]
    body = json.loads((tmp_path / JSON_FILE).read_text(encoding="utf-8"))
    assert body["sources"] == SOURCES and body["config"]["analyzer"] == "word"
    loaded = TranslationMemory.load(tmp_path)
    queries = ["twenty-two", "one hundred and one", "seventy", "nothing"]
    assert loaded.predict(queries) == memory.predict(queries)
    assert loaded.config == memory.config and loaded.n_params() == memory.n_params()


def test_non_ascii_text_survives_a_round_trip(tmp_path):
    memory = TranslationMemory().fit(["zéro", "deux"], ["zero", "two"])
    memory.save(tmp_path)
    assert TranslationMemory.load(tmp_path).predict(["zéros"]) == ["zero"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", r"not a readable translation memory"),
        ('{"format": "other"}', r"not a ladder.translation_memory file"),
        ('{"format": "ladder.translation_memory", "version": 9}', r"version 9 is not 1"),
        (
            '{"format": "ladder.translation_memory", "version": 1, "config": {"analyzer": "x"},'
            ' "sources": ["a"], "targets": ["b"]}',
            r"invalid config \(1 problems\)",
        ),
        (
            '{"format": "ladder.translation_memory", "version": 1, "config": {},'
            ' "sources": ["a", "b"], "targets": ["c"]}',
            r"two non-empty lists of strings of one length",
        ),
        (
            '{"format": "ladder.translation_memory", "version": 1, "config": {},'
            ' "sources": [" "], "targets": ["c"]}',
            r"cannot refit the memory",
        ),
    ],
)
def test_a_damaged_file_is_an_artifact_error(tmp_path, body, message):
    (tmp_path / JSON_FILE).write_text(body)
    with pytest.raises(ArtifactError, match=message):
        TranslationMemory.load(tmp_path)


def test_a_missing_file_is_an_artifact_error(tmp_path):
    with pytest.raises(ArtifactError, match=r"memory.json: not a readable translation memory"):
        TranslationMemory.load(tmp_path)


def test_config_is_validated():
    with pytest.raises(ValidationError, match=r"ngram_min must be <= ngram_max"):
        MemoryConfig(ngram_min=3, ngram_max=2)
    with pytest.raises(ValidationError, match=r"Extra inputs are not permitted"):
        MemoryConfig(ngrams=2)
    with pytest.raises(ValidationError):
        MemoryConfig(analyzer="char")


def test_fitting_and_predicting_errors():
    with pytest.raises(ValueError, match=r"got 2 sources and 1 targets"):
        TranslationMemory().fit(["a", "b"], ["c"])
    with pytest.raises(ValueError, match=r"at least one pair"):
        TranslationMemory().fit([], [])
    with pytest.raises(ValueError, match=r"no training source has a word n-gram"):
        TranslationMemory(MemoryConfig(analyzer="word")).fit(["!", "?"], ["a", "b"])
    with pytest.raises(RuntimeError, match=r"not fitted yet"):
        TranslationMemory().predict(["a"])
    assert fitted().predict([]) == []
