"""Audit accumulators and report: numbers equal an independent pyarrow count on real shards; merges are exact."""
from __future__ import annotations

import json
import math
import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaymill.audit.compare import amounts_by_key, compare_to_target, kl_divergence, total_variation
from replaymill.audit.gates import GateError, apply_gates, parse_gates
from replaymill.audit.report import build_report
from replaymill.audit.shardset import audit_shard_sets
from replaymill.audit.stats import HLL_PRECISION, LENGTH_EDGES, QUALITY_BINS, AuditStats, hll_add, url_hosts
from replaymill.schemas.document import to_record_batch
from replaymill.transforms.normalize import dedup_key


def _decorate(docs_by_domain: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Give real documents the tags a build would: varied quality (some unscored), languages,
    cluster sizes and missing token counts, deterministically, so every statistic is exercised."""
    rng = random.Random(7)
    out = {}
    for dom, docs in docs_by_domain.items():
        out[dom] = []
        for d in docs:
            d = dict(d)
            d["quality"] = None if rng.random() < 0.1 else rng.choice([0.0, 1.0, rng.random()])
            d["dup_exact_count"] = rng.choice([1, 1, 1, 2, 5])
            d["dup_near_count"] = rng.choice([1, 1, 3])
            d["lang"] = d.get("lang") or rng.choice(["en", "en", "fr", "und"])
            out[dom].append(d)
    return out


@pytest.fixture(scope="module")
def shard_root(tmp_path_factory, make_shard_set, real_docs_by_domain):
    docs = _decorate(real_docs_by_domain)
    root = tmp_path_factory.mktemp("audit-shards")
    return make_shard_set(root, docs, rows_per_shard=50), docs


@pytest.fixture(scope="module")
def audited(shard_root):
    root, _ = shard_root
    stats, cont, funnel = audit_shard_sets([root])
    return stats, build_report(stats, inputs=[root], input_kind="shards", funnel=funnel)


def test_counts_match_pyarrow_group_by(shard_root, audited):
    root, _ = shard_root
    _, report = audited
    table = ds.dataset(root, format="arrow", partitioning="hive").to_table(
        columns=["domain", "lang", "n_chars", "n_tokens"])
    expected = table.group_by(["domain", "lang"]).aggregate(
        [("n_chars", "count"), ("n_chars", "sum"), ("n_tokens", "sum")]).to_pylist()
    got = {(c["domain"], c["lang"]): c for c in report["by_domain_lang"]}
    assert len(got) == len(expected)
    for row in expected:
        c = got[(row["domain"], row["lang"])]
        assert (c["docs"], c["chars"], c["tokens"]) == (row["n_chars_count"], row["n_chars_sum"], row["n_tokens_sum"] or 0)
    assert report["totals"]["docs"] == table.num_rows
    assert report["totals"]["tokens_missing_docs"] == table.column("n_tokens").null_count
    by_dom = table.group_by("domain").aggregate([("n_tokens", "sum")]).to_pylist()
    for row in by_dom:
        assert report["by_domain"][row["domain"]]["tokens"] == row["n_tokens_sum"]


def test_histograms_and_dups_match_pyarrow(shard_root, audited):
    root, _ = shard_root
    _, report = audited
    table = ds.dataset(root, format="arrow", partitioning="hive").to_table(
        columns=["domain", "quality", "n_chars", "dup_exact_count", "dup_near_count"])
    for dom in pc.unique(table.column("domain")).to_pylist():
        sub = table.filter(pc.equal(table.column("domain"), dom))
        q = sub.column("quality")
        scored = q.drop_null()
        # independent binning: integer division of the score scaled by 20, 1.0 folded into the last bin
        bins = pc.min_element_wise(pc.cast(pc.floor(pc.multiply(pc.cast(scored, pa.float64()), QUALITY_BINS)), pa.int64()),
                                   QUALITY_BINS - 1)
        counts = pc.value_counts(bins).to_pylist()
        expected_q = [0] * QUALITY_BINS
        for vc in counts:
            expected_q[vc["values"]] += vc["counts"]
        got_q = report["quality"]["by_domain"][dom]
        assert got_q["counts"] == expected_q
        assert got_q["unscored"] == q.null_count
        assert got_q["mean"] == pytest.approx(pc.mean(scored).as_py(), rel=1e-6)
        lengths = sub.column("n_chars").to_numpy()
        expected_len = [int(((lengths >= lo) & (lengths < hi)).sum())
                        for lo, hi in zip(LENGTH_EDGES, list(LENGTH_EDGES[1:]) + [math.inf])]
        assert report["length_chars"]["by_domain"][dom]["counts"] == expected_len
        exact = pc.sum(sub.column("dup_exact_count")).as_py()
        near = pc.sum(sub.column("dup_near_count")).as_py()
        dup = report["duplicates"]["by_domain"][dom]
        assert dup["exact_rate"] == pytest.approx((exact - sub.num_rows) / exact)
        assert dup["near_rate"] == pytest.approx((near - sub.num_rows) / near)


def test_distinct_estimates_within_hll_error(shard_root, audited):
    root, docs = shard_root
    _, report = audited
    table = ds.dataset(root, format="arrow", partitioning="hive").to_table(columns=["text", "url"])
    exact_texts = len(set(table.column("text").to_pylist()))  # shard sets are sketched by exact text
    exact_urls = len({u for u in table.column("url").to_pylist() if u})
    dist = report["distinct"]
    tol = 4 * dist["relative_error"]
    assert abs(dist["texts"] - exact_texts) <= tol * exact_texts + 2
    assert abs(dist["urls"] - exact_urls) <= tol * exact_urls + 2
    assert 0 < dist["hosts"] <= dist["urls"]


@pytest.fixture(scope="module")
def web_batch(real_docs_by_domain) -> pa.Table:
    return pa.Table.from_batches([to_record_batch(_decorate({"web": real_docs_by_domain["web"][:150]})["web"])])


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=150), max_size=5))
def test_merge_of_parts_equals_whole(cuts, web_batch):
    whole = AuditStats(text_identity="exact").add_table(web_batch).to_dict()
    edges = sorted(set([0, web_batch.num_rows] + cuts))
    parts = [AuditStats(text_identity="exact").add_table(web_batch.slice(a, b - a)) for a, b in zip(edges, edges[1:])]
    merged = AuditStats(text_identity="exact")
    for p in reversed(parts):  # order must not matter
        merged.merge(p)
    assert merged.to_dict() == whole
    assert AuditStats.from_dict(whole).to_dict() == whole


def test_documents_path_equals_table_path(real_docs_by_domain):
    docs = _decorate({"news": real_docs_by_domain["news"]})["news"]
    a = AuditStats().add_documents(docs).to_dict()
    b = AuditStats().add_table(to_record_batch(docs)).to_dict()
    assert a == b


def test_compare_known_values():
    got = compare_to_target({"web": 60, "code": 40}, {"web": 0.5, "code": 0.3, "wiki": 0.2})
    assert got["total_variation"] == pytest.approx(0.2)
    assert got["kl_infinite"] and got["kl_target_achieved"] is None
    assert got["short"] == ["wiki"] and got["missing"] == ["wiki"]
    assert got["max_total_at_target"] == 0
    got = compare_to_target({"web": 60, "code": 40}, {"web": 0.5, "code": 0.5}, tolerance=0.05)
    assert got["short"] == ["code"]
    assert got["kl_target_achieved"] == pytest.approx(0.5 * math.log(0.5 / 0.6) + 0.5 * math.log(0.5 / 0.4))
    assert got["max_total_at_target"] == 80  # code is the limit: 40 / 0.5
    assert {r["domain"]: r["deficit"] for r in got["domains"]} == {"code": 10, "web": 0}


@given(st.dictionaries(st.sampled_from(["web", "code", "wiki", "books"]), st.integers(1, 10**6), min_size=1),
       st.dictionaries(st.sampled_from(["web", "code", "wiki", "books"]), st.floats(0.01, 10), min_size=1))
def test_divergences_are_sane(amounts, weights):
    total = sum(amounts.values())
    p = {k: v / total for k, v in amounts.items()}
    q = {k: v / sum(weights.values()) for k, v in weights.items()}
    tv = total_variation(p, q)
    assert 0.0 <= tv <= 1.0 + 1e-12
    assert total_variation(p, p) == 0.0 and kl_divergence(p, p) == pytest.approx(0.0, abs=1e-12)
    kl = kl_divergence(q, p)
    assert kl >= -1e-12
    if not math.isinf(kl):
        assert tv <= math.sqrt(kl / 2) + 1e-9  # Pinsker


def test_amounts_by_domain_lang_keys():
    cells = [{"domain": "web", "lang": "en", "docs": 3, "tokens": 30}, {"domain": "web", "lang": "de", "docs": 1, "tokens": 5},
             {"domain": "books", "lang": "de", "docs": 2, "tokens": 7}]
    assert amounts_by_key(cells, ["web/en", "web", "books"], "tokens") == {"web/en": 30, "web": 5, "books": 7}
    assert amounts_by_key(cells, ["web", "books"], "docs") == {"web": 4, "books": 2}


def test_gates(audited):
    _, report = audited
    report = dict(report)
    n = report["totals"]["docs"]
    passed = apply_gates(report, parse_gates(f"min_docs={n},max_dup_rate=0.99"))
    assert passed["passed"]
    failed = apply_gates(report, parse_gates(f"min_docs={n + 1}"))
    assert not failed["passed"] and "required >=" in failed["checks"][0]["detail"]
    with pytest.raises(GateError, match="needs --target"):
        apply_gates(report, parse_gates("max_tv=0.1"))
    for bad in ("max_tv", "nope=1", "min_docs=abc", ""):
        with pytest.raises(GateError):
            parse_gates(bad)


def test_normalized_identity_counts_as_exact_dedup_would(real_docs_by_domain):
    texts = [d["text"] for d in real_docs_by_domain["news"]]
    variants = texts + [t.upper() for t in texts] + [t.replace(".", " .") for t in texts]
    docs = [{"domain": "news", "lang": "en", "n_chars": len(t), "n_tokens": 1, "quality": 0.5,
             "dup_exact_count": 1, "dup_near_count": 1, "url": None, "text": t} for t in variants]
    normalized = build_report(AuditStats().add_documents(docs), inputs=["-"], input_kind="raw")["distinct"]
    exact = build_report(AuditStats(text_identity="exact").add_documents(docs), inputs=["-"], input_kind="raw")["distinct"]
    assert normalized["texts"] == pytest.approx(len({dedup_key(t) for t in texts}), abs=1)
    assert exact["texts"] == pytest.approx(len(set(variants)), abs=2)
    assert normalized["estimated_text_dup_rate"] == pytest.approx(2 / 3, abs=0.02)
    with pytest.raises(ValueError, match="cannot merge"):
        AuditStats().merge(AuditStats(text_identity="exact"))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=300), st.sampled_from([4, 8, HLL_PRECISION]))
def test_vectorized_hll_registers_equal_datasketch(hashes, precision):
    from datasketch import HyperLogLogPlusPlus

    ref = HyperLogLogPlusPlus(p=precision, hashfunc=lambda x: x)
    for h in hashes:
        ref.update(h)
    ours = HyperLogLogPlusPlus(p=precision)
    hll_add(ours.reg, np.array(hashes, dtype=np.uint64), precision)
    assert np.array_equal(ours.reg, ref.reg)


def test_url_hosts_agree_with_urllib(shard_root):
    from urllib.parse import urlsplit

    urls = [d["url"] for docs in shard_root[1].values() for d in docs if d.get("url")]
    urls += ["HTTP://User:pw@Example.COM:8080/x?y#z", "https://[::1]:443/", "not a url", "mailto:x@y", "//no-scheme/"]
    got = url_hosts(pa.array(urls)).to_pylist()
    for url, host in zip(urls, got):
        expected = urlsplit(url).hostname if "://" in url else None
        assert host == (expected or None), url


def test_missing_values_are_counted_not_dropped():
    docs = [{"domain": None, "lang": "", "n_chars": 10, "n_tokens": None, "quality": float("nan"),
             "dup_exact_count": None, "dup_near_count": 0, "url": "not a url", "text": "x"}]
    r = build_report(AuditStats().add_documents(docs), inputs=["-"], input_kind="raw")
    assert r["by_domain_lang"] == [{"domain": "unknown", "lang": "und", "docs": 1, "chars": 10, "tokens": 0}]
    assert r["quality"]["by_domain"]["unknown"]["unscored"] == 1
    assert r["totals"]["tokens_missing_docs"] == 1
    assert r["duplicates"]["total"]["exact_rate"] == 0.0
    assert r["distinct"]["hosts"] == 0 and r["distinct"]["urls"] == 1
    assert np.isfinite(r["distinct"]["estimated_text_dup_rate"])


def test_empty_input_renders_everywhere():
    from replaymill.audit.render import render_html, render_terminal, to_json

    report = build_report(AuditStats(), inputs=["empty"], input_kind="raw")
    f = report["funnel"]
    assert report["totals"]["docs"] == 0 and (f["read"], f["dropped"], f["kept"]) == (0, {}, 0)
    assert json.loads(to_json(report))["distinct"]["estimated_text_dup_rate"] == 0.0
    assert "No documents." in render_html(report)
    render_terminal(report)
