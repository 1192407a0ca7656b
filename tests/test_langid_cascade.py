"""The language-ID cascade (fastText, then lingua) on real sentences from ../shared/data/lingua-sentences."""
from __future__ import annotations

import pickle

import pytest

from replaymill.bench.langid_accuracy import short_texts
from replaymill.pipeline.annotate import AnnotateBatchFn
from replaymill.pipeline.cli import main
from replaymill.schemas.document import new_document
from replaymill.schemas.langid import LangIdConfig
from replaymill.schemas.recipe import Recipe
from replaymill.transforms.langid_cascade import FASTTEXT, LINGUA, LanguageCascade, unknown_keep_codes


def _sentences(shared_data, lang: str, n: int = 40) -> list[str]:
    lines = (shared_data / "lingua-sentences" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip()][:n]


@pytest.fixture(scope="module")
def cascade() -> LanguageCascade:
    return LanguageCascade(LangIdConfig(cascade=True)).load()


class Spy:
    """Stands in for lingua: records the texts it is asked about and answers a fixed language."""

    def __init__(self, answer: str = "xh"):
        self.asked: list[tuple[str, tuple[str, ...] | None]] = []
        self.answer = answer

    def predict(self, text: str, among: tuple[str, ...] | None = None) -> tuple[str, float]:
        self.asked.append((text, among))
        return (among[0] if among else self.answer), 0.9


@pytest.mark.parametrize("lang", ["zu", "xh", "mi", "ts"])
def test_languages_fasttext_cannot_name_are_found_by_lingua(cascade, shared_data, lang):
    results = cascade.predict_batch(_sentences(shared_data, lang))
    assert sum(r.lang == lang for r in results) >= 0.85 * len(results), results[:5]
    assert all(r.model == LINGUA for r in results if r.lang == lang)
    assert all(0.0 <= r.score <= 1.0 for r in results)


def test_word_pairs_are_far_better_than_fasttext_alone(cascade, shared_data):
    langs = ("de", "nl", "da", "sv", "pt", "es")
    fasttext_right = cascade_right = total = 0
    for lang in langs:
        pairs, _ = short_texts(_sentences(shared_data, lang, 200), 60)
        total += len(pairs)
        fasttext_right += sum(code == lang for code, _ in cascade.fasttext.predict_batch(pairs))
        results = cascade.predict_batch(pairs)
        cascade_right += sum(r.lang == lang for r in results)
        assert sum(r.model == LINGUA for r in results) >= 0.9 * len(results)  # nearly all are short
    assert cascade_right >= 0.8 * total and cascade_right >= fasttext_right + 0.1 * total, (cascade_right, fasttext_right)


def test_confident_long_text_never_reaches_lingua(shared_data):
    cascade = LanguageCascade(LangIdConfig(cascade=True)).load()
    cascade.lingua = Spy()
    text = " ".join(_sentences(shared_data, "en", 5))
    assert cascade.predict(text) == (cascade.fasttext.predict(text)[0], cascade.fasttext.predict(text)[1], FASTTEXT)
    assert cascade.predict(text).lang == "en" and cascade.lingua.asked == []


def _decide(keep, top, text="x" * 200, defer=0.5):
    cascade = LanguageCascade(LangIdConfig(keep=keep, cascade={"enabled": True, "defer_score": defer})).load()
    cascade.lingua = Spy()
    return cascade.decide(text, top), cascade.lingua.asked


def test_lingua_is_asked_only_where_its_answer_can_change_the_outcome():
    weak_german = [("de", 0.5), ("nl", 0.2), ("af", 0.1)]
    assert _decide(["en"], weak_german) == (("de", 0.5, FASTTEXT), [])            # no kept language plausible
    assert _decide(["en"], weak_german + [("en", 0.05)])[1] == []                 # beyond top_k=3
    assert _decide(["nl"], weak_german)[0] == ("xh", 0.9, LINGUA)                 # a kept language is in top 3
    assert _decide(["zu"], weak_german)[0].model == LINGUA                        # fastText cannot name zu
    assert _decide(None, weak_german)[0].model == LINGUA                          # no keep-list: always
    assert _decide(None, [("en", 0.95)])[1] == []                                 # confident and long
    assert _decide(None, [("en", 0.95)], text="short text")[0].model == LINGUA    # confident but short


def test_fasttext_keeps_a_language_lingua_cannot_name_unless_weak():
    assert _decide(None, [("gl", 0.6)]) == (("gl", 0.6, FASTTEXT), [])
    assert _decide(None, [("gl", 0.4)])[0] == ("xh", 0.9, LINGUA)
    assert _decide(None, [("gl", 0.6)], defer=1.01)[0].model == LINGUA


def test_macrolanguages_are_split_among_their_members_only():
    result, asked = _decide(None, [("no", 0.95)])
    assert result == ("nb", 0.95, LINGUA) and asked == [("x" * 200, ("nb", "nn"))]
    result, asked = _decide(None, [("sh", 0.9)])
    assert result.lang == "bs" and asked[0][1] == ("bs", "hr", "sr")


def test_real_nynorsk_said_no_by_fasttext_becomes_nn(cascade, shared_data):
    sents = [s for s in _sentences(shared_data, "nn", 200)]
    said_no = [s for s, (code, score) in zip(sents, cascade.fasttext.predict_batch(sents)) if code == "no" and score >= 0.8]
    assert len(said_no) >= 5
    results = cascade.predict_batch(said_no)
    assert sum(r.lang == "nn" for r in results) >= 0.7 * len(results)


def test_disabled_cascade_is_fasttext_alone(shared_data):
    off = LanguageCascade(LangIdConfig())
    texts = _sentences(shared_data, "de", 10) + ["", "ok"]
    assert [(r.lang, r.score) for r in off.predict_batch(texts)] == off.fasttext.predict_batch(texts)
    assert {r.model for r in off.predict_batch(texts)} == {FASTTEXT}


def test_empty_text_is_undetermined_and_the_cascade_pickles(cascade):
    assert cascade.predict_batch(["", " \n "]) == [("und", 0.0, FASTTEXT)] * 2
    clone = pickle.loads(pickle.dumps(cascade))
    assert clone.predict("Ngiyabonga kakhulu ngosizo lwakho namhlanje").model == LINGUA


def test_annotate_stores_which_model_decided(shared_data):
    recipe = Recipe.model_validate({"langid": {"keep": ["zu", "en"], "cascade": True}})
    fn = AnnotateBatchFn(recipe)
    fn.setup()
    docs = [new_document(f"zu{i}", s, "t") for i, s in enumerate(_sentences(shared_data, "zu", 10))]
    docs += [new_document("en", " ".join(_sentences(shared_data, "en", 8)), "t")]
    kept = [d for d in fn.process(docs) if isinstance(d, dict)]
    by_id = {d["id"]: d for d in kept}
    assert by_id["en"]["lang_model"] == FASTTEXT and by_id["en"]["lang"] == "en"
    zulu = [d for d in kept if d["id"].startswith("zu")]
    assert len(zulu) >= 8 and all(d["lang"] == "zu" and d["lang_model"] == LINGUA for d in zulu)


def test_unknown_language_codes_are_refused_before_the_build(tmp_path, capsys):
    assert unknown_keep_codes(LangIdConfig(keep=["en", "de"])) == []
    assert unknown_keep_codes(LangIdConfig(keep=["zu"], cascade=True)) == []
    assert unknown_keep_codes(LangIdConfig(keep=["zu"]))[0].startswith("zu (known to lingua")
    assert main(["build", "--output", str(tmp_path / "out"), "--langs", "en,xx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown language code xx" in err[0], err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_lingua_on_its_thread_pool_answers_as_one_at_a_time(cascade, shared_data):
    texts = _sentences(shared_data, "zu", 5) + _sentences(shared_data, "de", 5) + ["", "12345 !!!"]
    pooled, single = cascade.lingua.predict_many(texts), [cascade.lingua.predict(t) for t in texts]
    assert [c for c, _ in pooled] == [c for c, _ in single]
    assert [s for _, s in pooled] == pytest.approx([s for _, s in single])  # summation order may differ


def test_lingua_scores_are_the_same_in_every_process():
    """lingua's confidences differ in their last bits between processes (its hash-map order); the
    rounded score, and with it a document's content hash, must not: three processes agree."""
    import subprocess
    import sys

    script = ("from replaymill.transforms.langid_cascade import LinguaIdentifier\n"
              "l = LinguaIdentifier()\n"
              "for t in ['Dies ist ein kurzer Satz auf Deutsch, glaube ich.', 'ok merci bien', "
              "'Hola amigos, que tal?', 'tak to jest']:\n"
              "    print(repr(l.predict(t)), repr(l.predict_many([t])[0]))\n")
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = {p.communicate(timeout=300)[0] for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(outputs) == 1, outputs
