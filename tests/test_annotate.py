"""The Annotate PTransform on real Common Crawl documents, in one DirectRunner run shared by the tests."""
from __future__ import annotations

import gzip
import json
import math
from collections import Counter

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter

from replaymill.pipeline.annotate import REJECTS, Annotate, AnnotateBatchFn
from replaymill.pipeline.options import make_options
from replaymill.schemas.domains import DOMAINS
from replaymill.schemas.document import new_document, to_record_batch
from replaymill.schemas.recipe import Recipe
from replaymill.transforms.langid_cascade import LanguageCascade
from replaymill.transforms.quality import SIGNAL_NAMES, check_rules, compute_signals

N_DOCS = 120
RECIPE = Recipe.model_validate({
    "langid": {"keep": ["en", "de", "fr", "es", "ru"], "min_score": 0.5},
    "quality": {"gopher_quality": True, "gopher_repetition": True, "c4": True, "fineweb": True,
                "min_chars": 200, "max_chars": 20_000},
})


def _dolma_docs(shared_data) -> list[dict]:
    path = shared_data / "dolma-cc" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
    docs = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            docs.append(new_document(r["id"], r["text"], "dolma", source_label=r.get("source"),
                                     url=r["metadata"].get("warc_url"), metadata=json.dumps(r["metadata"])))
            if len(docs) == N_DOCS:
                break
    return docs


@pytest.fixture(scope="module")
def annotated(shared_data, tmp_path_factory):
    """One in-memory DirectRunner run; both outputs written as JSON lines and read back."""
    docs = _dolma_docs(shared_data)
    out = tmp_path_factory.mktemp("annotate")
    p = beam.Pipeline(options=make_options(running_mode="in_memory", workers=1))
    kept, rejects = p | beam.Create(docs, reshuffle=False) | Annotate(RECIPE)
    kept | "K" >> beam.Map(json.dumps) | "WK" >> beam.io.WriteToText(str(out / "kept"))
    rejects | "R" >> beam.Map(json.dumps) | "WR" >> beam.io.WriteToText(str(out / "rejects"))
    result = p.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter().with_namespace("replaymill.rejects"))["counters"]
    }

    def read(prefix: str) -> list[dict]:
        return [json.loads(line) for f in sorted(out.glob(f"{prefix}-*")) for line in f.open()]

    return docs, read("kept"), read("rejects"), counters


def test_every_document_is_kept_or_rejected_once(annotated):
    docs, kept, rejects, _ = annotated
    assert len(kept) + len(rejects) == len(docs)
    assert sorted([d["id"] for d in kept] + [r["id"] for r in rejects]) == sorted(d["id"] for d in docs)
    assert kept and rejects


def test_kept_documents_are_fully_annotated_and_fit_the_schema(annotated):
    _, kept, _, _ = annotated
    for doc in kept:
        assert doc["lang"] in RECIPE.langid.keep and doc["lang_score"] >= 0.5
        assert doc["domain"] in DOMAINS
        assert 0.0 <= doc["quality"] <= 1.0
        assert doc["n_chars"] == len(doc["text"]) and doc["n_tokens"] > 0
        assert set(doc["signals"]) == set(SIGNAL_NAMES)
        assert all(math.isfinite(v) for v in doc["signals"].values())
        assert check_rules(doc["signals"], RECIPE.quality) is None
    assert to_record_batch(kept).num_rows == len(kept)


def test_rejects_carry_a_reason_that_matches_the_document(annotated):
    docs, _, rejects, _ = annotated
    by_id = {d["id"]: d for d in docs}
    reasons = Counter(r["reason"] for r in rejects)
    assert {"lang_not_kept", "too_short"} <= set(reasons), reasons
    assert any(":" in reason for reason in reasons), reasons  # at least one quality rule fired
    for r in rejects:
        assert r["stage"] == "annotate" and r["detail"] and len(r["sample"]) <= 200
        doc = by_id[r["id"]]
        if r["reason"] == "too_short":
            assert len(doc["text"]) < 200
        elif r["reason"] == "too_long":
            assert len(doc["text"]) > 20_000
        elif ":" in r["reason"]:
            lang = LanguageCascade(RECIPE.langid).predict(doc["text"]).lang  # rules are per language
            assert check_rules(compute_signals(doc["text"], lang), RECIPE.quality, lang) == r["reason"]


def test_a_beam_counter_per_reason_matches_the_rejects(annotated):
    _, _, rejects, counters = annotated
    assert counters == dict(Counter(r["reason"] for r in rejects))


def test_an_exception_on_one_document_dead_letters_it(shared_data, monkeypatch):
    import replaymill.pipeline.annotate as annotate_module

    docs = _dolma_docs(shared_data)[:20]
    victim = next(d for d in docs if len(d["text"]) > 2000)
    real = annotate_module.compute_signals

    def flaky(text: str, lang: str | None = None, stop_word_files: dict | None = None) -> dict:
        if text == victim["text"]:
            raise RuntimeError("boom")
        return real(text, lang)

    monkeypatch.setattr(annotate_module, "compute_signals", flaky)
    fn = AnnotateBatchFn(Recipe.model_validate({"quality": {"min_chars": 1}}))
    fn.setup()
    kept, rejects = _run_fn(fn, [docs])
    assert rejects[victim["id"]]["reason"] == "annotate_error" and "boom" in rejects[victim["id"]]["detail"]
    assert len(kept) + len(rejects) == len(docs)


def test_wrong_model_path_fails_when_the_pipeline_is_built(tmp_path):
    recipe = Recipe.model_validate({"langid": {"model_path": str(tmp_path / "missing.bin")}})
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        AnnotateBatchFn(recipe)


def _run_fn(fn: AnnotateBatchFn, batches: list[list[dict]]) -> tuple[dict, dict]:
    kept, rejects = {}, {}
    for batch in batches:
        for item in fn.process(batch):
            if isinstance(item, beam.pvalue.TaggedOutput):
                assert item.tag == REJECTS
                rejects[item.value["id"]] = item.value
            else:
                kept[item["id"]] = item
    return kept, rejects


def test_results_do_not_depend_on_batching_or_order(shared_data):
    docs = _dolma_docs(shared_data)[:60]
    fn = AnnotateBatchFn(RECIPE)
    fn.setup()
    whole = _run_fn(fn, [docs])
    reversed_small = _run_fn(fn, [docs[::-1][i:i + 7] for i in range(0, len(docs), 7)])
    assert whole == reversed_small
