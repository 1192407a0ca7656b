"""Stratified DSIR: the reference's mixture over pool keys is estimated (EM on hashed n-grams) and
each key's share is selected within the key, so the selection keeps the reference's mixture where
one global top-k collapses onto a single domain."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.dataset as pds
import pytest

from replaymill.pipeline.cli import main
from replaymill.shards.io import read_manifest
from replaymill.transforms.dsir import bucket_counts, estimate_mixture, feature_ids, key_reference_counts


def _split(docs: list[dict], every: int) -> tuple[list[dict], list[dict]]:
    """(pool part, held-out part): every `every`-th document is held out."""
    return [d for i, d in enumerate(docs) if i % every], [d for i, d in enumerate(docs) if i % every == 0]


@pytest.fixture(scope="module")
def pool_and_reference(real_docs_by_domain):
    """Pool: web, news, English and German books; reference: held-out documents, 60% web and 40% English books."""
    web_pool, web_held = _split(real_docs_by_domain["web"], 4)
    books_en = [d for d in real_docs_by_domain["books"] if d.get("lang") == "en"]
    books_pool, books_held = _split(books_en, 4)
    german = [d for d in real_docs_by_domain["books"] if d.get("lang") == "de"]
    pool = {"web": web_pool, "news": real_docs_by_domain["news"], "books": books_pool + german}
    reference = [d["text"] for d in web_held[:60]] + [d["text"] for d in books_held[:40]]
    return pool, reference


def test_estimate_mixture_recovers_the_reference_shares(pool_and_reference):
    pool, reference = pool_and_reference
    key_counts = {k: bucket_counts(d["text"] for d in docs) for k, docs in pool.items()}
    features = [feature_ids(t) for t in reference]
    shares, post, keys = estimate_mixture(features, key_counts)
    assert abs(sum(shares.values()) - 1) < 1e-9 and post.shape[1] == 3 and keys == sorted(pool)
    assert abs(shares["web"] - 0.6) < 0.1 and abs(shares["books"] - 0.4) < 0.1, shares
    per_key = key_reference_counts(features, post, keys)
    assert per_key["books"].sum() > 0 and per_key["news"].sum() < per_key["web"].sum()
    with pytest.raises(ValueError):
        estimate_mixture([np.zeros(0, dtype=np.int64)], key_counts)


@pytest.fixture(scope="module")
def pool_set(tmp_path_factory, pool_and_reference, make_shard_set) -> tuple[str, str]:
    """(shard set root, reference JSONL path): the pool written once for every selection test."""
    pool, reference = pool_and_reference
    base = tmp_path_factory.mktemp("dsir")
    root = make_shard_set(base / "pool", pool, rows_per_shard=80)
    ref = base / "ref.jsonl"
    ref.write_text("".join(json.dumps({"text": t}) + "\n" for t in reference))
    return root, str(ref)


def test_stratified_selection_keeps_the_mixture_global_top_k_does_not(tmp_path, pool_set):
    """By documents: stratified and mixture modes keep the reference's 60/40 web/books split (their
    budgets are the same estimate); one global top-k does not."""
    root, ref = pool_set
    shares = {}
    for mode in ("stratified", "mixture", "global"):
        out = tmp_path / mode
        assert main(["sample", "--shards", root, "--reference", str(ref), "--docs", "60", "--dsir", mode,
                     "--output", str(out), "--in-memory"]) == 0
        table = pds.dataset(str(out), format="arrow", partitioning="hive").to_table(columns=["domain"])
        domains = table.column("domain").to_pylist()
        shares[mode] = {d: domains.count(d) / len(domains) for d in ("web", "news", "books")}
        dsir = read_manifest(str(out)).extra["sampling"]["dsir"]
        assert dsir["mode"] == mode and dsir["stratified"] is (mode != "global")
    tv = {m: 0.5 * (abs(s["web"] - 0.6) + abs(s["books"] - 0.4) + s["news"]) for m, s in shares.items()}
    assert tv["stratified"] < 0.1 and tv["mixture"] < 0.1, shares
    assert tv["stratified"] < tv["global"], shares
    est = read_manifest(str(tmp_path / "stratified")).extra["sampling"]["dsir"]["estimated_mixture"]
    assert abs(est["web/en"]["doc_share"] - 0.6) < 0.1 and est["books/en"]["budget"] > 0 and "books/de" not in est


def test_mixture_mode_draws_at_random_within_a_key_seeded(tmp_path, pool_set):
    """`mixture` keeps the estimated shares but ignores in-key DSIR scores: the same seed gives the
    same documents, another seed others; a bad mode through the API is an InputError."""
    import replaymill
    from replaymill.pipeline.errors import InputError

    root, ref = pool_set
    ids = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        out = tmp_path / name
        assert main(["sample", "--shards", root, "--reference", str(ref), "--docs", "40", "--seed", str(seed),
                     "--output", str(out), "--in-memory"]) == 0
        ids[name] = sorted(pds.dataset(str(out), format="arrow", partitioning="hive", exclude_invalid_files=True)
                           .to_table(columns=["id"]).column("id").to_pylist())
    assert ids["a"] == ids["b"] and ids["a"] != ids["c"]
    with pytest.raises(InputError, match="must be one of mixture, stratified, global"):
        replaymill.sample(root, str(tmp_path / "d"), reference=str(ref), docs=10, dsir="local")
