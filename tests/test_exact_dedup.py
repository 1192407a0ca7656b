"""Exact dedup: one representative (smallest id) per normalized-text hash, independent of order and workers."""
from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import apache_beam as beam
import pytest
from hypothesis import given
from hypothesis import strategies as st

from replaymill.pipeline.exact_dedup import ExactDedup, MinRankCountFn
from replaymill.pipeline.options import make_options
from replaymill.schemas.dedup import ExactDedupConfig
from replaymill.schemas.document import new_document
from replaymill.transforms.normalize import normalize_for_dedup


def real_docs(shared_data: Path) -> list[dict]:
    """200 real Common Crawl documents, plus copies with case/punctuation/whitespace/digit changes and a plain copy."""
    docs = []
    with gzip.open(shared_data / "dolma-cc" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz", "rt") as f:
        for i, line in zip(range(200), f):
            rec = json.loads(line)
            docs.append(new_document(f"c4-{i:03d}", rec["text"], "cc"))
    variants = []
    for j, d in enumerate(docs[:10]):
        variants.append(new_document(f"b-copy-{j}", d["text"].upper().replace(".", " ! "), "copy"))
        variants.append(new_document(f"z-copy-{j}", "  " + d["text"].replace(" ", "\n").replace("1", "9") + " \t", "copy"))
    variants.append(new_document("a-first", docs[20]["text"], "copy"))  # smallest id of its cluster
    return docs + variants


def run_dedup(docs: list[dict], out: Path, running_mode: str, workers: int) -> tuple[list[dict], list[dict]]:
    """Run ExactDedup over `docs` and read back both outputs, sorted."""
    opts = make_options(workers=workers, running_mode=running_mode)
    with beam.Pipeline(options=opts) as p:
        kept, rejects = p | beam.Create(docs, reshuffle=False) | ExactDedup(ExactDedupConfig())
        kept | "K" >> beam.Map(json.dumps, sort_keys=True) | "WK" >> beam.io.WriteToText(str(out / "kept"))
        rejects | "R" >> beam.Map(json.dumps, sort_keys=True) | "WR" >> beam.io.WriteToText(str(out / "rejects"))

    def read(prefix: str) -> list[dict]:
        return sorted((json.loads(l) for f in out.glob(f"{prefix}-*") for l in f.open()), key=lambda d: d["id"])

    return read("kept"), read("rejects")


@pytest.fixture(scope="module")
def runs(shared_data, tmp_path_factory):
    docs = real_docs(shared_data)
    shuffled = docs[:]
    random.Random(7).shuffle(shuffled)
    base = tmp_path_factory.mktemp("exact")
    return {
        "docs": docs,
        "ordered": run_dedup(docs, base / "a", "in_memory", 1),
        "shuffled_2_workers": run_dedup(shuffled, base / "b", "multi_threading", 2),
    }


def test_keeps_smallest_id_and_counts_cluster(runs):
    kept, rejects = runs["ordered"]
    by_id = {d["id"]: d for d in kept}
    for j in range(10):
        assert f"b-copy-{j}" in by_id and by_id[f"b-copy-{j}"]["dup_exact_count"] == 3
        assert f"c4-{j:03d}" not in by_id and f"z-copy-{j}" not in by_id
    assert by_id["a-first"]["dup_exact_count"] == 2 and "c4-020" not in by_id
    assert by_id["c4-050"]["dup_exact_count"] == 1


def test_every_document_is_kept_or_rejected_once(runs):
    kept, rejects = runs["ordered"]
    assert len(kept) + len(rejects) == len(runs["docs"])
    assert sorted(d["id"] for d in kept + rejects) == sorted(d["id"] for d in runs["docs"])
    assert sum(d["dup_exact_count"] for d in kept) == len(runs["docs"])


def test_rejects_name_reason_and_representative(runs):
    kept, rejects = runs["ordered"]
    kept_ids = {d["id"] for d in kept}
    distinct = {normalize_for_dedup(d["text"]) for d in runs["docs"]}  # reference: a plain set
    assert len(kept) == len(distinct) and len(rejects) == len(runs["docs"]) - len(distinct) > 21
    for r in rejects:
        assert r["reason"] == "exact_duplicate" and r["stage"] == "exact_dedup"
        assert r["matched_id"] in kept_ids and r["matched_id"] < r["id"]
        assert len(r["sample"]) <= 200


def test_output_independent_of_order_and_workers(runs):
    assert runs["ordered"] == runs["shuffled_2_workers"]


ranks = st.tuples(st.text(max_size=4), st.text(max_size=2), st.text(max_size=2))


@given(st.lists(ranks, min_size=1, max_size=30), st.integers(0, 29), st.randoms())
def test_min_rank_count_fn_is_split_and_order_independent(values, cut, rnd):
    fn = MinRankCountFn()
    whole = fn.create_accumulator()
    for v in values:
        whole = fn.add_input(whole, (v, 1))
    shuffled = values[:]
    rnd.shuffle(shuffled)
    parts = [shuffled[: cut % len(values)], shuffled[cut % len(values):]]
    accs = []
    for part in parts:
        acc = fn.create_accumulator()
        for v in part:
            acc = fn.add_input(acc, (v, 1))
        accs.append(acc)
    assert fn.extract_output(fn.merge_accumulators(accs)) == fn.extract_output(whole) == (min(values), len(values))
