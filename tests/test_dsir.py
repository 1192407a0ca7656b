"""DSIR importance resampling: hashed features, Gumbel top-k, and selection that moves toward a reference."""
from __future__ import annotations

import numpy as np
import pytest

from replaymill.transforms.dsir import (bucket_counts, feature_ids, gumbel_keys, gumbel_noise, hashed_kl, log_importance_weights,
                             log_ratio, quality_log_weights, top_by_budget)


def test_features_are_stable_hashed_unigrams_and_bigrams():
    ids = feature_ids("The cat. the CAT sat", 1000)
    assert len(ids) == 5 + 4 and ids.min() >= 0 and ids.max() < 1000  # 5 unigrams, 4 bigrams
    assert ids[0] == ids[2] == feature_ids("the", 1000)[0] and ids[1] == ids[3]  # case-folded, punctuation-free
    assert ids[5] == ids[7] == feature_ids("the cat", 1000)[2]  # the bigram "the cat" twice
    assert list(feature_ids("the cat", 1000)) == list(feature_ids("the cat", 1000))
    assert len(feature_ids("", 1000)) == 0


def test_gumbel_noise_is_a_function_of_seed_and_id():
    ids = [f"doc{i}" for i in range(1000)]
    a = gumbel_noise(ids, 5)
    assert np.array_equal(a[::-1], gumbel_noise(ids[::-1], 5))   # order / partition independent
    assert not np.allclose(a, gumbel_noise(ids, 6))
    assert abs(a.mean() - 0.5772) < 0.1                          # Euler-Mascheroni: the Gumbel mean


def test_gumbel_top1_samples_proportionally_to_weights():
    w = np.array([0.1, 0.2, 0.3, 0.4])
    ids = ["a", "b", "c", "d"]
    wins = np.bincount([int(np.argmax(gumbel_keys(np.log(w), ids, seed))) for seed in range(4000)], minlength=4)
    assert np.allclose(wins / 4000, w, atol=0.03)


def test_top_by_budget():
    keys = np.array([0.1, 3.0, 2.0, 5.0])
    assert list(top_by_budget(keys, np.ones(4), 2)) == [3, 1]
    assert list(top_by_budget(keys, np.array([10, 10, 10, 10]), 15)) == [3, 1]
    assert list(top_by_budget(keys, np.ones(4), 99)) == [3, 1, 2, 0]


def test_quality_weights():
    assert np.allclose(quality_log_weights(np.array([0.5, np.nan]), 0.25), [2.0, 0.0])
    with pytest.raises(ValueError):
        quality_log_weights(np.array([0.5]), 0)


def test_selection_moves_toward_the_reference(real_docs_by_domain, shared_data):
    """Pool: web, news, English and German books; reference: another German book (Verne).

    DSIR must select mostly German text and be closer (hashed-n-gram KL) to the reference than a
    uniform random sample of the same size.
    """
    pool = [d for docs in real_docs_by_domain.values() for d in docs]
    texts = [d["text"] for d in pool]
    verne = (shared_data / "prose" / "de-verne-20000.txt").read_text(encoding="utf-8")
    reference = [verne[i:i + 2000] for i in range(0, 200_000, 2000)]
    ref_counts, pool_counts = bucket_counts(reference), bucket_counts(texts)
    logw = log_importance_weights(texts, log_ratio(ref_counts, pool_counts))
    k = 100
    chosen = top_by_budget(gumbel_keys(logw, [d["id"] for d in pool], seed=0), np.ones(len(pool)), k)
    german = sum(pool[i]["lang"] == "de" for i in chosen) / k
    pool_german = sum(d["lang"] == "de" for d in pool) / len(pool)
    assert german > 0.9 > 0.2 > pool_german
    rng = np.random.default_rng(0)
    uniform = rng.choice(len(pool), size=k, replace=False)
    kl_sel = hashed_kl(ref_counts, bucket_counts(texts[i] for i in chosen))
    kl_uni = hashed_kl(ref_counts, bucket_counts(texts[i] for i in uniform))
    assert kl_sel < 0.7 * kl_uni
