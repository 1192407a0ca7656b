"""Decontamination by shared word n-grams: the index against a naive reference, the Beam stage in a
real build (drop and flag, counted in the funnel), the audit's per-evaluation-document report, and
bad evaluation files (one line, exit 2)."""
from __future__ import annotations

import gzip
import json
import random

import apache_beam as beam
import pyarrow.dataset as ds
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaymill.pipeline.cli import main
from replaymill.pipeline.decontaminate import CombineIndex, _partial
from replaymill.transforms.normalize import words
from replaymill.transforms.ngram_overlap import OverlapIndex, sample_around


def _naive(eval_texts: list[str], text: str, n: int) -> dict[int, int]:
    """Distinct shared n-grams per evaluation document, by tuples of normalized words."""
    def grams(t: str) -> set[tuple[str, ...]]:
        w = words(t)
        return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}
    mine = grams(text)
    return {e: len(grams(t) & mine) for e, t in enumerate(eval_texts) if grams(t) & mine}


VOCAB = ["alpha", "beta", "gamma", "delta", "Eps", "zeta!", "eta", "théta"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from(VOCAB), min_size=0, max_size=40), min_size=1, max_size=6),
       st.lists(st.lists(st.sampled_from(VOCAB), min_size=0, max_size=60), min_size=1, max_size=5),
       st.integers(1, 4), st.integers(1, 3))
def test_index_counts_match_a_naive_reference(evals, corpus, n, batch_size):
    eval_texts = [" ".join(e) for e in evals]
    texts = [" ".join(c) for c in corpus]
    index = OverlapIndex.build(eval_texts, n, batch_size=batch_size)
    for text, found in zip(texts, index.match(texts)):
        expected = _naive(eval_texts, text, n)
        assert {o.eval_index: o.ngrams for o in found} == expected
        for o in found:
            total = len({tuple(words(eval_texts[o.eval_index])[i:i + n])
                         for i in range(len(words(eval_texts[o.eval_index])) - n + 1)})
            assert o.overlap == pytest.approx(o.ngrams / total)
            assert tuple(words(text)[o.first_word:o.first_word + n]) in {
                tuple(words(eval_texts[o.eval_index])[i:i + n]) for i in range(len(words(eval_texts[o.eval_index])))}


def _real_docs(shared_data, n: int = 40) -> list[dict]:
    """`n` real web pages of 300-3000 words that share no 13-gram with each other (the crawl has
    near-duplicate pages and shared boilerplate; those would blur what each test plants)."""
    path = shared_data / "dolma-cc" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    chosen: list[dict] = []
    index = None  # of the chosen pages, rebuilt only when one is added
    for d in docs:
        if 300 <= len(d["text"].split()) <= 3000 and not (index is not None and index.match([d["text"]])[0]):
            chosen.append(d)
            if len(chosen) == n:
                break
            index = OverlapIndex.build([c["text"] for c in chosen])
    return chosen


def test_a_quoted_passage_is_found_inside_a_longer_page_with_a_sample(shared_data):
    docs = _real_docs(shared_data, 12)
    rng = random.Random(0)
    evals = [d["text"] for d in docs[:6]]
    hosts = [d["text"] for d in docs[6:12]]
    planted = []
    for i, host in enumerate(hosts):
        src = evals[i].split()
        start = rng.randrange(0, len(src) - 60)
        passage = src[start:start + 60]
        passage[30] = "EDITED"  # a light edit in the middle
        h = host.split()
        cut = len(h) // 2
        planted.append(" ".join(h[:cut] + passage + h[cut:]))
    index = OverlapIndex.build(evals)
    found = index.match(planted + hosts)
    for i, overlaps in enumerate(found[:6]):
        best = max(overlaps, key=lambda o: o.ngrams)
        # 48 13-grams in 60 words, 13 broken by the edit; a few more where raw tokens hold punctuation
        assert best.eval_index == i and best.ngrams >= 30
        sample = words(sample_around(planted[i], best.first_word, 13, context=0))
        assert len(sample) >= 13 and " ".join(sample[:13]) in " ".join(words(evals[i]))
    assert all(not any(o.ngrams >= 3 for o in overlaps) for overlaps in found[6:])


def test_the_combined_index_does_not_depend_on_partial_order(shared_data):
    records = [(f"f{i % 2}.jsonl", f"id{i}", d["text"]) for i, d in enumerate(_real_docs(shared_data, 12))]
    parts = [_partial(records[lo:lo + 5], 13) for lo in range(0, 12, 5)]
    fn = CombineIndex(13)
    one = fn.extract_output(fn.add_input(fn.add_input(fn.add_input(fn.create_accumulator(), parts[0]), parts[1]), parts[2]))
    other = fn.extract_output(fn.merge_accumulators([fn.add_input(fn.create_accumulator(), parts[2]),
                                                     fn.add_input(fn.add_input(fn.create_accumulator(), parts[1]), parts[0])]))
    assert one.ids == other.ids and one.files == other.files
    assert (one.index.keys == other.index.keys).all() and (one.index.owners == other.index.owners).all()
    direct = OverlapIndex.build([t for _, _, t in sorted(records)], 13)
    assert (direct.keys == one.index.keys).all() and (direct.eval_ngrams == one.index.eval_ngrams).all()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shared_data):
    """A Dolma-shaped input of 30 real pages, 3 of which quote an evaluation file, plus the eval file."""
    tmp = tmp_path_factory.mktemp("decontam")
    docs = _real_docs(shared_data, 36)
    evals, pages = docs[:6], docs[6:]
    for k, i in enumerate((0, 1, 2)):  # pages 0-2 quote 80 words of eval docs 0-2
        quote = evals[k]["text"].split()[20:100]
        pages[i] = dict(pages[i], text=pages[i]["text"] + "\n\n" + " ".join(quote))
    with gzip.open(tmp / "pages.jsonl.gz", "wt", encoding="utf-8") as f:
        for d in pages:
            f.write(json.dumps({"id": d["id"], "text": d["text"], "source": "cc"}) + "\n")
    with open(tmp / "evals.jsonl", "w", encoding="utf-8") as f:
        for k, d in enumerate(evals):
            f.write(json.dumps({"id": f"item-{k}", "question": d["text"], "answer": "A"}) + "\n")
    return tmp, [p["id"] for p in pages[:3]]


def _funnel(out) -> dict:
    return json.loads((out / "_manifest.json").read_text())["funnel"]


def test_build_drops_contaminated_pages_and_counts_them(corpus):
    tmp, contaminated = corpus
    out = tmp / "drop"
    assert main(["build", "-i", str(tmp / "pages.jsonl.gz"), "-o", str(out), "--decontaminate",
                 str(tmp / "evals.jsonl"), "--write-rejects"]) == 0
    funnel = _funnel(out)
    assert funnel["dropped"].get("contaminated") == 3
    assert funnel["read"] == funnel["kept"] + sum(funnel["dropped"].values())
    kept = set(ds.dataset(str(out), format="arrow", partitioning="hive").to_table(columns=["id"]).column("id").to_pylist())
    assert not kept & set(contaminated) and len(kept) == 27
    rejects = [json.loads(line) for p in (out / "_rejects").glob("*.jsonl.gz") for line in gzip.open(p, "rt")]
    details = {r["id"]: r["detail"] for r in rejects if r["reason"] == "contaminated"}
    assert set(details) == set(contaminated)
    assert all("evaluation document item-" in d and "13-grams" in d for d in details.values())


def test_flag_keeps_pages_and_fills_the_contamination_column(corpus):
    tmp, contaminated = corpus
    (tmp / "flag.yaml").write_text(
        f"name: flag\ndecontaminate:\n  eval_files: ['{tmp}/evals.jsonl']\n  action: flag\n", encoding="utf-8")
    out = tmp / "flag"
    assert main(["build", "-i", str(tmp / "pages.jsonl.gz"), "-o", str(out), "-r", str(tmp / "flag.yaml")]) == 0
    assert "contaminated" not in _funnel(out)["dropped"]
    rows = ds.dataset(str(out), format="arrow", partitioning="hive").to_table(columns=["id", "contamination"]).to_pylist()
    flagged = {r["id"]: r["contamination"] for r in rows if r["contamination"]}
    assert set(flagged) == set(contaminated) and len(rows) == 30
    for i, page in enumerate(contaminated):
        assert flagged[page]["eval_id"] == f"item-{i}" and flagged[page]["ngrams"] >= 60


def test_audit_lists_per_evaluation_document_the_pages_that_overlap_it(corpus, tmp_path):
    tmp, contaminated = corpus
    report = tmp_path / "r.json"
    assert main(["audit", str(tmp / "pages.jsonl.gz"), "-q", "--no-distinct", "--in-memory",
                 "--contamination", str(tmp / "evals.jsonl"), "--json", str(report)]) == 0
    cont = json.loads(report.read_text())["contamination"]
    assert cont["method"] == "ngram" and cont["eval_docs"] == 6 and cont["eval_docs_matched"] == 3
    by_eval = {e["eval_id"]: e for e in cont["by_eval"]}
    for i, page in enumerate(contaminated):
        entry = by_eval[f"item-{i}"]
        assert entry["corpus_docs"] == 1 and entry["matches"][0]["corpus_id"] == page
        assert 0 < entry["matches"][0]["overlap"] < 1 and entry["matches"][0]["sample"]


@pytest.mark.parametrize("content, message", [
    ("", "no evaluation text"),
    ('{"id": 1, "text": "ok"}\nnot json\n', "not JSON"),
])
@pytest.mark.parametrize("command", ["build", "audit"])
def test_bad_evaluation_files_exit_2_with_one_line(corpus, tmp_path, capsys, content, message, command):
    tmp, _ = corpus
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content, encoding="utf-8")
    if command == "build":
        args = ["build", "-i", str(tmp / "pages.jsonl.gz"), "-o", str(tmp_path / "out"), "--decontaminate", str(bad)]
    else:
        args = ["audit", str(tmp / "pages.jsonl.gz"), "-q", "--contamination", str(bad)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(bad) in err[0], err
    assert not (tmp_path / "out" / "_manifest.json").exists()


def test_an_eval_pattern_matching_nothing_exits_2(corpus, tmp_path, capsys):
    tmp, _ = corpus
    assert main(["build", "-i", str(tmp / "pages.jsonl.gz"), "-o", str(tmp_path / "o"),
                 "--decontaminate", str(tmp_path / "missing-*.jsonl")]) == 2
    assert "matches no file" in capsys.readouterr().err


def test_the_stage_runs_in_a_plain_pipeline(corpus):
    """Decontaminate as a library PTransform: the side input reaches a multi-bundle ParDo."""
    from apache_beam.testing.util import assert_that, equal_to

    from replaymill.pipeline.decontaminate import Decontaminate
    from replaymill.schemas.decontam import DecontaminateConfig

    tmp, contaminated = corpus
    with gzip.open(tmp / "pages.jsonl.gz", "rt", encoding="utf-8") as f:
        pages = [json.loads(line) for line in f]
    config = DecontaminateConfig(eval_files=[str(tmp / "evals.jsonl")])
    with beam.Pipeline() as p:
        kept, rejects = p | beam.Create(pages) | Decontaminate(config, [str(tmp / "evals.jsonl")])
        assert_that(rejects | beam.Map(lambda r: r["id"]), equal_to(contaminated), label="rejected")
        assert_that(kept | beam.Map(lambda d: d["id"]), equal_to([p["id"] for p in pages[3:]]), label="kept")
