"""ReplaySampler on real shards: exact prefixes, determinism, rank split, resume, short keys, state dict."""
from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replaymill.shards.reader import ShardSet
from replaymill.shards.sampler import ReplaySampler, ShortDomainError, renormalized_weights

TARGET = {"web": 0.5, "books": 0.3, "news": 0.2}


@pytest.fixture(scope="module")
def shardset(tmp_path_factory, make_shard_set, real_docs_by_domain):
    root = make_shard_set(tmp_path_factory.mktemp("sampler"), real_docs_by_domain, rows_per_shard=40)
    return ShardSet.open(root)


def _ids(sampler, n=None):
    out = []
    for doc in sampler:
        out.append(doc["id"])
        if n is not None and len(out) == n:
            break
    return out


def _max_prefix_deviation(keys, sizes, weights):
    units, total, worst = Counter(), 0, 0.0
    for k, s in zip(keys, sizes):
        units[k] += s
        total += s
        worst = max(worst, max(abs(units[j] - w * total) for j, w in weights.items()))
    return worst


@pytest.mark.parametrize("by", ["docs", "tokens"])
def test_every_prefix_within_one_document(shardset, by):
    budget = 120 if by == "docs" else 60_000  # news (40 docs, 14k tokens) never runs out
    s = ReplaySampler(shardset, TARGET, by=by, seed=3, budget=budget, columns=["id", "n_tokens"])
    docs = list(s)
    keys = [d["_key"] for d in docs]
    sizes = [1 if by == "docs" else d["n_tokens"] for d in docs]
    bound = 1 if by == "docs" else max(d["n_tokens"] for d in shardset.iter_documents(["n_tokens"]))
    assert sum(sizes) >= budget and sum(sizes[:-1]) < budget
    assert _max_prefix_deviation(keys, sizes, TARGET) <= bound
    if by == "docs":
        assert Counter(keys) == {"web": 60, "books": 36, "news": 24}


def test_full_pass_is_a_permutation_of_each_key(shardset, real_docs_by_domain):
    docs = list(ReplaySampler(shardset, TARGET, seed=1, on_short="renormalize", columns=["id", "domain"]))
    assert len(docs) == len({d["id"] for d in docs}) == sum(len(v) for v in real_docs_by_domain.values())
    assert all(d["domain"] == d["_key"] for d in docs)


def test_seeded_and_deterministic(shardset):
    a = _ids(ReplaySampler(shardset, TARGET, seed=7, budget=80, by="docs", columns=["id"]))
    assert a == _ids(ReplaySampler(shardset, TARGET, seed=7, budget=80, by="docs", columns=["id"]))
    assert a != _ids(ReplaySampler(shardset, TARGET, seed=8, budget=80, by="docs", columns=["id"]))


@pytest.mark.parametrize("world_size", [2, 3, 8])
def test_ranks_interleave_to_the_global_sequence(shardset, world_size):
    glob = _ids(ReplaySampler(shardset, TARGET, seed=2, budget=50_000, columns=["id"]))
    per_rank = [_ids(ReplaySampler(shardset, TARGET, seed=2, budget=50_000, columns=["id"],
                                   rank=r, world_size=world_size)) for r in range(world_size)]
    merged = [per_rank[i % world_size][i // world_size] for i in range(len(glob))]
    assert merged == glob
    assert sum(map(len, per_rank)) == len(glob)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 60), seed=st.integers(0, 2**16), old_ws=st.integers(1, 4), new_ws=st.integers(1, 4),
       by=st.sampled_from(["docs", "tokens"]))
def test_resume_at_any_world_size_continues_the_global_sequence(shardset, cut, seed, old_ws, new_ws, by):
    kw = dict(by=by, seed=seed, on_short="upsample", columns=["id"])
    glob = _ids(ReplaySampler(shardset, TARGET, **kw), n=(cut + 12) * old_ws + 12)
    first = ReplaySampler(shardset, TARGET, rank=old_ws - 1, world_size=old_ws, **kw)
    _ids(first, n=cut) if cut else None
    state = json.loads(json.dumps(first.state_dict()))
    assert state["position"] == cut * old_ws
    resumed = []
    for r in range(new_ws):
        s = ReplaySampler(shardset, TARGET, rank=r, world_size=new_ws, **kw)
        s.load_state_dict(state)
        resumed.append(_ids(s, n=6))
    merged = [resumed[i % new_ws][i // new_ws] for i in range(6 * new_ws)]
    assert merged == glob[cut * old_ws: cut * old_ws + 6 * new_ws]


def test_on_short_error_names_the_key(shardset):
    with pytest.raises(ShortDomainError, match="news: needs"):
        ReplaySampler(shardset, TARGET, by="docs", budget=1000)
    s = ReplaySampler(shardset, TARGET, by="docs", columns=["id"])
    with pytest.raises(ShortDomainError, match="'news' ran out"):
        list(s)


def test_on_short_upsample_counts_repeats(shardset):
    s = ReplaySampler(shardset, TARGET, by="docs", budget=1000, on_short="upsample", columns=["id"])
    docs = list(s)
    news = [d for d in docs if d["_key"] == "news"]
    assert len(docs) == 1000 and len(news) == 200
    assert s.achieved()["news"]["repeats"] == 160 and {d["_epoch"] for d in news} == {0, 1, 2, 3, 4}
    assert len({d["id"] for d in news}) == 40


def test_on_short_renormalize_caps_and_shares(shardset):
    s = ReplaySampler(shardset, TARGET, by="docs", budget=1000, on_short="renormalize", columns=["id"])
    got = Counter(d["_key"] for d in s)
    assert got["news"] == 40 and sum(got.values()) == 1000
    assert got["web"] / got["books"] == pytest.approx(5 / 3, rel=0.02)
    assert renormalized_weights([0.5, 0.5], [10, 100], 50) == [0.2, 0.8]


def test_domain_lang_keys(shardset):
    docs = list(ReplaySampler(shardset, {"books/de": 0.5, "books": 0.5}, by="docs", budget=100,
                              columns=["id", "lang"]))
    assert {d["lang"] for d in docs if d["_key"] == "books/de"} == {"de"}
    assert {d["lang"] for d in docs if d["_key"] == "books"} == {"en"}


def test_state_dict_rejects_other_settings(shardset):
    state = ReplaySampler(shardset, TARGET, seed=1).state_dict()
    assert len(json.dumps(state)) < 1000
    with pytest.raises(ValueError, match="seed"):
        ReplaySampler(shardset, TARGET, seed=2).load_state_dict(state)
    with pytest.raises(ValueError, match="format"):
        ReplaySampler(shardset, TARGET, seed=1).load_state_dict({"format": "x"})
    with pytest.raises(ValueError, match="on_short"):
        ReplaySampler(shardset, TARGET, on_short="sometimes")


def test_docs_weighted_stream_stops_at_a_token_budget(shardset):
    s = ReplaySampler(shardset, TARGET, by="docs", budget=30_000, budget_by="tokens", columns=["id", "n_tokens"])
    docs = list(s)
    tokens = [d["n_tokens"] for d in docs]
    assert sum(tokens) >= 30_000 > sum(tokens[:-1])
    assert _max_prefix_deviation([d["_key"] for d in docs], [1] * len(docs), TARGET) < 1
    assert s.state_dict()["budget_used"] == sum(tokens)


def test_quality_temperature_prefers_high_quality(tmp_path, make_shard_set, real_docs_by_domain):
    news = real_docs_by_domain["news"]
    docs = [dict(news[i % len(news)], id=f"q{i}", quality=i / 200) for i in range(200)]
    ss = ShardSet.open(make_shard_set(tmp_path, {"news": docs}, rows_per_shard=50))

    def mean_quality(temperature):
        got = [d["quality"] for d in ReplaySampler(ss, {"news": 1}, by="docs", budget=40, columns=["quality"],
                                                   quality_temperature=temperature)]
        return sum(got) / len(got), min(got)

    sharp_mean, sharp_min = mean_quality(0.01)
    flat_mean, _ = mean_quality(100.0)
    assert sharp_min > 0.7 and sharp_mean > 0.85 and 0.3 < flat_mean < 0.7
