"""NearDedup in Beam (DirectRunner) on real web documents plus synthetic near duplicates and chains.

The Beam result is compared with an in-memory oracle built from the same pure functions plus a
union-find, and with ground truth constructed here (edited copies, chains, same-topic non-duplicates).
"""
from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from hypothesis import given, settings
from hypothesis import strategies as st

from replaymill.pipeline.near_dedup import NearDedup, id_of, node_key
from replaymill.schemas.dedup import NearDedupConfig
from replaymill.schemas.document import new_document
from replaymill.transforms.components import (
    is_converged,
    jaccard,
    large_star,
    large_star_round,
    normalize_edge,
    pair_edges,
    small_star,
    small_star_round,
    star_components,
    star_edges,
    union_find_components,
)
from replaymill.transforms.lsh import band_hashes, band_key
from replaymill.transforms.minhash import Permutations, batch_shingles, signatures_from_shingles

BOILERPLATE = "Share this article on Facebook Twitter Email. Copyright all rights reserved. Privacy policy Terms of use"


def run_near_dedup(docs, cfg: NearDedupConfig, out_dir: Path, **options) -> tuple[list[dict], list[dict], object]:
    """Run the stage and read its two outputs back from text files (nothing via driver memory)."""
    # Documents are read from a file, as in a build: a large beam.Create would be pickled into the
    # pipeline proto (and bz2-compressed) at every stage, which dominates a DirectRunner test.
    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / "input.jsonl"
    source.write_text("".join(json.dumps(d) + "\n" for d in docs))
    p = beam.Pipeline(options=PipelineOptions(flags=[], **options))
    read = p | "Read" >> beam.io.ReadFromText(str(source)) | "Parse" >> beam.Map(json.loads)
    kept, rejects = read | NearDedup(cfg)
    kept | "WriteKept" >> beam.Map(json.dumps, sort_keys=True) | "K" >> beam.io.WriteToText(
        str(out_dir / "kept"), shard_name_template=""
    )
    rejects | "WriteRejects" >> beam.Map(json.dumps, sort_keys=True) | "R" >> beam.io.WriteToText(
        str(out_dir / "rejects"), shard_name_template=""
    )
    result = p.run()
    result.wait_until_finish()

    def read(name):
        return sorted((json.loads(line) for line in (out_dir / name).read_text().splitlines()), key=lambda d: d["id"])

    return read("kept"), read("rejects"), result


def oracle(docs, cfg: NearDedupConfig) -> dict[str, tuple[str, int]]:
    """node -> (centre, size) for documents in non-trivial components, computed without Beam."""
    bands, rows = cfg.banding()
    keys = [node_key(d) for d in docs]
    shingles = batch_shingles([d["text"] for d in docs], cfg.ngram)
    sig = signatures_from_shingles(shingles, Permutations.create(bands * rows, cfg.seed))
    has = shingles.counts() > 0
    bh = band_hashes(sig, bands, rows)
    buckets: dict[bytes, set[str]] = defaultdict(set)
    for i in np.flatnonzero(has):
        for b in range(bands):
            buckets[band_key(b, int(bh[i, b]))].add(keys[i])
    edges = set()
    for members in buckets.values():
        if cfg.verify_jaccard is None:
            edges.update(star_edges(members))
        else:
            edges.update(pair_edges(members, cfg.verify_max_bucket))
    if cfg.verify_jaccard is not None:
        sets = {keys[i]: shingles.unique_of(i) for i in range(len(docs))}
        edges = {(u, v) for u, v in edges if jaccard(sets[u], sets[v]) >= cfg.verify_jaccard}
    roots = union_find_components(edges)
    sizes: dict[str, int] = defaultdict(int)
    for r in roots.values():
        sizes[r] += 1
    return {n: (r, sizes[r]) for n, r in roots.items()}


def exact_jaccard(a: str, b: str, ngram: int = 5) -> float:
    s = batch_shingles([a, b], ngram)
    return jaccard(s.unique_of(0), s.unique_of(1))


def edit_words(text: str, fraction: float, rng: random.Random) -> str:
    words = text.split(" ")
    for _ in range(max(1, int(len(words) * fraction))):
        words[rng.randrange(len(words))] = rng.choice(["lorem", "ipsum", "dolor", "amet", "sit"])
    return " ".join(words)


def shares_band(a: str, b: str, cfg: NearDedupConfig) -> bool:
    bands, rows = cfg.banding()
    sig = signatures_from_shingles(batch_shingles([a, b], cfg.ngram), Permutations.create(bands * rows, cfg.seed))
    h = band_hashes(sig, bands, rows)
    return bool(np.any(h[0] == h[1]))


def find_chain(units: list[str], cfg: NearDedupConfig) -> tuple[str, str, str]:
    """Three overlapping windows A, B, C of `units` where A~B and B~C collide in LSH but A and C do not."""
    width = 40
    for shift in range(2, 15):
        for start in range(0, len(units) - width - 2 * shift, 7):
            a, b, c = (" ".join(units[start + k * shift : start + k * shift + width]) for k in range(3))
            if shares_band(a, b, cfg) and shares_band(b, c, cfg) and not shares_band(a, c, cfg):
                return a, b, c
    raise AssertionError("no chain found in the real text (test setup)")


@pytest.fixture(scope="module")
def corpus(real_docs_by_domain):
    """Real web + news documents, edited near-duplicates of some of them, and one transitive chain."""
    real = real_docs_by_domain["web"] + real_docs_by_domain["news"]
    long_docs = [d for d in real if len(d["text"].split()) >= 300][:12]
    synthetic, near = [], {}
    for k, d in enumerate(long_docs):
        if k % 2 == 0:
            text = d["text"] + "\n" + BOILERPLATE
        else:
            text = edit_words(d["text"], 0.01, random.Random(k))
        assert exact_jaccard(d["text"], text) >= 0.85  # a true near duplicate (test precondition)
        dup = new_document(d["id"] + "~near", text, "synthetic", url=d["url"])
        synthetic.append(dup)
        near[dup["id"]] = d["id"]
    units = [s for d in real_docs_by_domain["news"] for s in d["text"].split(". ") if len(s.split()) >= 4]
    chain = [new_document(f"chain-{x}", t, "synthetic") for x, t in zip("abc", find_chain(units, NearDedupConfig()))]
    return {"docs": real + synthetic + chain, "near": near, "real": real}


@pytest.fixture(scope="module")
def default_run(corpus, tmp_path_factory):
    cfg = NearDedupConfig(enabled=True)
    kept, rejects, result = run_near_dedup(corpus["docs"], cfg, tmp_path_factory.mktemp("default"))
    return {"cfg": cfg, "kept": kept, "rejects": rejects, "result": result}


def as_labels(kept: list[dict], rejects: list[dict]) -> tuple[dict[str, int], dict[str, str]]:
    return {d["id"]: d["dup_near_count"] for d in kept}, {r["id"]: r["matched_id"] for r in rejects}


def test_every_document_is_kept_or_rejected_once(corpus, default_run):
    kept_ids = [d["id"] for d in default_run["kept"]]
    rejected_ids = [r["id"] for r in default_run["rejects"]]
    assert len(kept_ids) == len(set(kept_ids))
    assert sorted(kept_ids + rejected_ids) == sorted(d["id"] for d in corpus["docs"])


def test_matches_in_memory_oracle(corpus, default_run):
    expected = oracle(corpus["docs"], default_run["cfg"])
    counts, matched = as_labels(default_run["kept"], default_run["rejects"])
    exp_matched = {id_of(n): id_of(c) for n, (c, _) in expected.items() if n != c}
    exp_counts = {id_of(n): size for n, (c, size) in expected.items() if n == c}
    assert matched == exp_matched
    assert {i: c for i, c in counts.items() if c > 1} == exp_counts
    assert all(counts[i] == 1 for i in counts if i not in exp_counts)


def test_near_duplicates_removed_with_matched_id(corpus, default_run):
    _, matched = as_labels(default_run["kept"], default_run["rejects"])
    for dup_id, orig_id in corpus["near"].items():
        assert dup_id in matched, dup_id
        # The original is the centre, or both sit in a larger component with a smaller centre.
        assert matched[dup_id] == orig_id or matched[dup_id] == matched.get(orig_id)
    by_id = {r["id"]: r for r in default_run["rejects"]}
    some = by_id[next(iter(corpus["near"]))]
    assert some["reason"] == "near_duplicate" and some["stage"] == "near_dedup"
    assert some["source"] == "synthetic" and len(some["sample"]) <= 200 and "14x8" in some["detail"]


def test_non_duplicates_kept(corpus, default_run):
    # Real documents from the same crawl (many from the same sites/topics) are mostly distinct:
    # every real document that was removed must really be similar to what it matched.
    texts = {d["id"]: d["text"] for d in corpus["docs"]}
    counts, matched = as_labels(default_run["kept"], default_run["rejects"])
    real_removed = [i for i in matched if i in {d["id"] for d in corpus["real"]}]
    assert len(real_removed) < 0.05 * len(corpus["real"])
    for i in real_removed:
        assert exact_jaccard(texts[i], texts[matched[i]]) >= 0.3, i
    assert sum(1 for d in corpus["real"] if counts.get(d["id"]) == 1) > 0.9 * len(corpus["real"])


def test_transitive_chain_is_one_component(default_run):
    counts, matched = as_labels(default_run["kept"], default_run["rejects"])
    assert counts["chain-a"] == 3
    assert matched["chain-b"] == "chain-a" and matched["chain-c"] == "chain-a"


def test_metrics_count_removals(default_run):
    metrics = default_run["result"].metrics().query(
        MetricsFilter().with_namespace("replaymill.rejects").with_name("near_duplicate"))
    assert sum(c.committed for c in metrics["counters"]) == len(default_run["rejects"])


def test_identical_for_shuffled_input_and_two_workers(corpus, default_run, tmp_path):
    docs = list(corpus["docs"])
    random.Random(7).shuffle(docs)
    kept, rejects, _ = run_near_dedup(
        docs, default_run["cfg"], tmp_path, direct_num_workers=2, direct_running_mode="multi_threading"
    )
    assert kept == default_run["kept"]
    assert rejects == default_run["rejects"]


def test_verification_drops_lsh_false_positives(corpus, tmp_path):
    a, b, x = [d for d in corpus["real"] if len(d["text"].split()) >= 300][20:23]
    a_near = new_document(a["id"] + "~near", a["text"] + " " + BOILERPLATE, "synthetic")
    # Two thirds of b glued to a third of an unrelated page: Jaccard ~0.5, a sure LSH candidate
    # under a loose 20 x 2 banding (p(0.5) = 0.997), but not a near duplicate at 0.8.
    b_part = b["text"][: 2 * len(b["text"]) // 3] + " " + x["text"][: len(x["text"]) // 3]
    b_mix = new_document(b["id"] + "~mix", b_part, "synthetic")
    docs = [a, a_near, b, b_mix]
    loose = NearDedupConfig(enabled=True, bands=20, rows=2)
    assert exact_jaccard(a["text"], a_near["text"]) >= 0.9
    assert 0.3 < exact_jaccard(b["text"], b_mix["text"]) < 0.75
    assert node_key(b_mix) in oracle(docs, loose)  # LSH alone merges the false positive
    cfg = loose.model_copy(update={"verify_jaccard": 0.8})
    kept, rejects, _ = run_near_dedup(docs, cfg, tmp_path)
    assert {r["id"]: r["matched_id"] for r in rejects} == {a_near["id"]: a["id"]}
    assert {d["id"]: d["dup_near_count"] for d in kept} == {a["id"]: 2, b["id"]: 1, b_mix["id"]: 1}


def test_fallback_union_find_when_rounds_do_not_converge(corpus, tmp_path):
    chain = [d for d in corpus["docs"] if d["id"].startswith("chain-")]
    others = corpus["real"][:30]
    # No star rounds at all: the bucket edges chain-c -> chain-b -> chain-a are not a star.
    cfg = NearDedupConfig(enabled=True, max_rounds=0)
    kept, rejects, result = run_near_dedup(chain + others, cfg, tmp_path / "fallback")
    counts, matched = as_labels(kept, rejects)
    assert counts["chain-a"] == 3
    assert {i: m for i, m in matched.items() if i.startswith("chain-")} == {"chain-b": "chain-a", "chain-c": "chain-a"}
    expected = oracle(chain + others, cfg)
    assert matched == {id_of(n): id_of(c) for n, (c, _) in expected.items() if n != c}
    fb = result.metrics().query(MetricsFilter().with_name("components_fallback_union_find"))
    assert sum(c.committed for c in fb["counters"]) == 1
    with pytest.raises(Exception, match="did not converge"):
        run_near_dedup(chain, cfg.model_copy(update={"max_fallback_edges": 1}), tmp_path / "guard")


# --- the pure connected-component steps, against a union-find oracle ------------------------------

def test_star_steps_on_the_paper_example():
    # Large-star links larger neighbours to the local minimum; small-star links smaller ones.
    assert large_star("c", ["a", "d", "e"]) == {("d", "a"), ("e", "a")}
    assert large_star("a", ["b"]) == {("b", "a")}
    assert small_star("d", ["b", "c"]) == {("c", "b"), ("d", "b")}
    assert small_star("a", []) == set()
    assert star_edges(["q", "b", "k", "b"]) == [("k", "b"), ("q", "b")]
    assert sorted(pair_edges(["c", "a", "b"], 8)) == [("b", "a"), ("c", "a"), ("c", "b")]
    assert pair_edges(["c", "a", "b"], 2) == star_edges(["c", "a", "b"])
    assert normalize_edge("a", "a") is None and normalize_edge("a", "b") == ("b", "a")


def test_a_long_path_converges_to_one_star():
    nodes = [f"n{i:03d}" for i in range(64)]
    edges = {(nodes[i + 1], nodes[i]) for i in range(63)}
    assert not is_converged(edges)
    stars, converged = star_components(edges, max_rounds=20)
    assert converged and stars == {(n, "n000") for n in nodes[1:]}


graphs = st.lists(
    st.tuples(st.integers(0, 40), st.integers(0, 40)).map(lambda e: (f"v{e[0]:02d}", f"v{e[1]:02d}")),
    max_size=80,
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(edges=graphs)
def test_star_rounds_reach_the_union_find_components(edges):
    expected = union_find_components(e for e in (normalize_edge(u, v) for u, v in edges) if e)
    stars, converged = star_components(edges, max_rounds=40)
    assert converged
    got = {c: p for c, p in stars}
    for node, root in expected.items():
        assert got.get(node, node) == root
    assert set(got) == {n for n, r in expected.items() if n != r}


@settings(max_examples=100, deadline=None, derandomize=True)
@given(edges=graphs)
def test_each_round_preserves_connectivity(edges):
    canon = {e for e in (normalize_edge(u, v) for u, v in edges) if e}
    before = union_find_components(canon)
    after_large = large_star_round(canon)
    after_small = small_star_round(after_large)
    for step in (after_large, after_small):
        roots = union_find_components(step)
        assert {n: roots.get(n, n) for n in before} == before


def test_jaccard_exact():
    a = np.array([1, 2, 3, 4], dtype=np.uint64)
    b = np.array([3, 4, 5], dtype=np.uint64)
    assert jaccard(a, b) == pytest.approx(2 / 5)
    assert jaccard(a, a) == 1.0
    assert jaccard(a[:0], b[:0]) == 0.0
