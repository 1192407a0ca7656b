"""fastText language ID on real sentences from ../shared/data/lingua-sentences."""
from __future__ import annotations

import pickle

import pytest

from replaymill.transforms.langid import LanguageIdentifier, default_model_path, normalize_label, prepare_text

LANGS = ("en", "de", "fr", "zh", "ru", "ar")


@pytest.fixture(scope="module")
def lid() -> LanguageIdentifier:
    return LanguageIdentifier()


def _sentences(shared_data, lang: str, n: int = 50) -> list[str]:
    lines = (shared_data / "lingua-sentences" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip()][:n]


@pytest.mark.parametrize("lang", LANGS)
def test_real_sentences_are_identified(lid, shared_data, lang):
    predictions = lid.predict_batch(_sentences(shared_data, lang))
    correct = sum(code == lang for code, _ in predictions)
    assert correct >= 0.9 * len(predictions), predictions[:10]
    assert all(0.0 <= score <= 1.0 for _, score in predictions)


def test_a_paragraph_with_newlines_is_one_prediction(lid, shared_data):
    text = "\n".join(_sentences(shared_data, "de", 5))
    code, score = lid.predict(text)
    assert code == "de" and score > 0.9


def test_empty_and_blank_texts_are_undetermined(lid):
    assert lid.predict_batch(["", "  \n\t", "Guten Morgen, wie geht es dir heute?"])[:2] == [("und", 0.0), ("und", 0.0)]
    assert lid.predict_batch([]) == []


def test_batch_equals_one_at_a_time(lid, shared_data):
    texts = [s for lang in LANGS for s in _sentences(shared_data, lang, 5)]
    assert lid.predict_batch(texts) == [lid.predict(t) for t in texts]


def test_long_text_is_truncated_to_a_prefix_and_surrogates_do_not_crash(lid):
    long_text = "Das ist ein ganz normaler deutscher Satz über das Wetter. " * 5000
    assert len(prepare_text(long_text)) <= 2000
    assert lid.predict(long_text)[0] == "de"
    assert lid.predict("broken \udcff surrogate in an English sentence about the weather")[0] == "en"


def test_labels_are_normalized_to_iso_639_1_where_one_exists():
    assert normalize_label("__label__en") == "en"
    assert normalize_label("__label__eng_Latn") == "en"
    assert normalize_label("__label__cmn_Hani") == "zh"
    assert normalize_label("__label__nob_Latn") == "nb"
    assert normalize_label("__label__yue_Hani") == "yue"  # no 639-1 code: stays 639-3
    assert normalize_label("__label__als") == "als"


def test_missing_custom_model_path_gives_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"language-ID model not found: .*lid\.218\.bin"):
        LanguageIdentifier(str(tmp_path / "lid.218.bin"))


def test_a_file_that_is_not_a_model_gives_a_clear_error(tmp_path):
    bogus = tmp_path / "model.bin"
    bogus.write_bytes(b"this is not a fastText model")
    with pytest.raises(ValueError, match="is not a fastText model"):
        LanguageIdentifier(str(bogus))


def test_pickles_without_the_model_and_reloads(lid):
    lid.load()
    clone = pickle.loads(pickle.dumps(lid))
    assert clone.model_path == default_model_path() and clone._model is None
    assert clone.predict("This is an English sentence.")[0] == "en"


def test_model_labels_are_read_from_the_file_with_either_binding():
    """`labels` needs no `get_labels` (the prediction-only binding has none): the dictionary is read
    from the model file, and every prediction is one of its labels."""
    from replaymill.transforms.langid import LanguageIdentifier, model_labels

    lid = LanguageIdentifier()
    raw = model_labels(lid.model_path)
    assert len(raw) == 176 and "__label__en" in raw and all(label.startswith("__label__") for label in raw)
    got = lid.predict_batch(["Hello, how are you today?", "Das ist ein deutscher Satz.", "", "Ceci est une phrase."])
    assert [code for code, _ in got] == ["en", "de", "und", "fr"] and set(c for c, _ in got) - {"und"} <= set(lid.labels)
