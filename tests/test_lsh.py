"""LSH banding: the S-curve formula, datasketch's (bands, rows) choice, band hashing, and the CLI table."""
from __future__ import annotations

import numpy as np
import pytest
from datasketch.lsh import _optimal_param
from hypothesis import given, settings
from hypothesis import strategies as st

from replaymill.pipeline.cli import main
from replaymill.schemas.dedup import NearDedupConfig
from replaymill.transforms.lsh import (
    band_hashes,
    band_key,
    catch_probability,
    false_negative_area,
    false_positive_area,
    optimal_params,
    scurve_table,
    threshold_of,
)
from replaymill.transforms.minhash import Permutations, batch_shingles, signatures_from_shingles


def test_fineweb_setting_values():
    # Figures quoted by datatrove for 14 bands x 8 rows.
    assert catch_probability(0.8, 14, 8) == pytest.approx(0.9235, abs=1e-4)
    assert threshold_of(14, 8) == pytest.approx((1 / 14) ** (1 / 8))
    assert catch_probability(0.0, 14, 8) == 0.0 and catch_probability(1.0, 14, 8) == 1.0


@pytest.mark.parametrize("threshold,num_perm", [(0.5, 128), (0.7, 112), (0.8, 256), (0.9, 64), (0.3, 32)])
def test_optimal_params_agree_with_datasketch(threshold, num_perm):
    assert optimal_params(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


def test_areas_match_closed_form_for_one_band_one_row():
    # b = r = 1: p(s) = s, so FP area = t^2/2 and FN area = (1-t)^2/2.
    assert false_positive_area(0.6, 1, 1) == pytest.approx(0.18, abs=1e-6)
    assert false_negative_area(0.6, 1, 1) == pytest.approx(0.08, abs=1e-6)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    bands=st.integers(1, 40),
    rows=st.integers(1, 20),
    s1=st.floats(0.0, 1.0),
    s2=st.floats(0.0, 1.0),
)
def test_scurve_is_a_monotone_probability(bands, rows, s1, s2):
    lo, hi = sorted((s1, s2))
    p_lo, p_hi = catch_probability(lo, bands, rows), catch_probability(hi, bands, rows)
    assert 0.0 <= p_lo <= p_hi <= 1.0
    # More bands catch more; longer bands catch less.
    assert catch_probability(hi, bands + 1, rows) >= p_hi - 1e-12
    assert catch_probability(hi, bands, rows + 1) <= p_hi + 1e-12


@settings(max_examples=15, deadline=None, derandomize=True)
@given(threshold=st.floats(0.2, 0.95), num_perm=st.integers(8, 160))
def test_optimal_params_fit_budget_and_straddle_threshold(threshold, num_perm):
    b, r = optimal_params(threshold, num_perm)
    assert 1 <= b * r <= num_perm
    # The chosen curve's steep point lies near the target (within the coarse grid a small budget allows).
    assert abs(threshold_of(b, r) - threshold) < 0.25


def test_band_hashes_change_only_with_their_band():
    rng = np.random.default_rng(0)
    sig = rng.integers(0, 2**63, size=(3, 112), dtype=np.uint64)
    sig[1] = sig[0]
    sig[2] = sig[0]
    sig[2, 8 * 3 + 5] ^= np.uint64(1)  # one value inside band 3
    h = band_hashes(sig, 14, 8)
    assert h.shape == (3, 14) and h.dtype == np.uint64
    np.testing.assert_array_equal(h[0], h[1])
    assert [int(x) for x in np.flatnonzero(h[0] != h[2])] == [3]
    assert len(set(h[0].tolist())) == 14
    assert band_key(3, int(h[0, 3])) != band_key(4, int(h[0, 3]))
    with pytest.raises(ValueError):
        band_hashes(sig, 15, 8)


def letters(i: int) -> str:
    out = ""
    while True:
        i, r = divmod(i, 26)
        out += chr(97 + r)
        if i == 0:
            return out


@pytest.mark.parametrize("jaccard", [0.5, 0.7, 0.85])
def test_empirical_candidate_rate_follows_the_scurve(jaccard):
    # 400 document pairs with exactly this unigram Jaccard: the share that collides in at least one
    # band must match p(s) within 5 binomial standard deviations.
    bands, rows, pairs, size = 14, 8, 400, 200
    shared = round(jaccard * size)
    only = (size - shared) // 2
    texts = []
    for k in range(pairs):
        common = [f"p{letters(k)}x{letters(i)}" for i in range(shared)]
        texts.append(" ".join(common + [f"p{letters(k)}a{letters(i)}" for i in range(only)]))
        texts.append(" ".join(common + [f"p{letters(k)}b{letters(i)}" for i in range(only)]))
    true = shared / (shared + 2 * only)
    sigs = signatures_from_shingles(batch_shingles(texts, 1), Permutations.create(bands * rows, seed=11))
    h = band_hashes(sigs, bands, rows)
    caught = np.mean(np.any(h[0::2] == h[1::2], axis=1))
    p = catch_probability(true, bands, rows)
    assert abs(caught - p) <= 5 * np.sqrt(p * (1 - p) / pairs) + 0.01


def test_scurve_table_and_cli(capsys):
    table = scurve_table(14, 8, 0.1)
    assert [s for s, _ in table] == pytest.approx([i / 10 for i in range(11)])
    assert table[8][1] == pytest.approx(0.9235, abs=1e-4)
    assert main(["lsh-curve", "--bands", "14", "--rows", "8", "--step", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "bands=14 rows=8" in out and "0.80        0.9235" in out
    assert main(["lsh-curve", "--threshold", "0.8", "--num-perm", "128"]) == 0
    assert f"bands={optimal_params(0.8, 128)[0]}" in capsys.readouterr().out
    assert main(["lsh-curve", "--bands", "14"]) == 2
    assert "give both" in capsys.readouterr().err


def test_config_banding():
    assert NearDedupConfig().banding() == (14, 8)
    assert NearDedupConfig(bands=20, rows=5).banding() == (20, 5)
    assert NearDedupConfig(threshold=0.7, num_perm=112).banding() == _optimal_param(0.7, 112, 0.5, 0.5)
    with pytest.raises(ValueError):
        NearDedupConfig(threshold=0.7, bands=14, rows=8)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.2, 0.95), st.sampled_from([64, 112, 128, 256]))
def test_banding_for_recall_catches_pairs_at_the_threshold(threshold, num_perm):
    from replaymill.transforms.lsh import banding_for_recall, false_positive_area

    bands, rows = banding_for_recall(threshold, num_perm, 0.95)
    assert bands * rows <= num_perm
    assert catch_probability(threshold, bands, rows) >= 0.95
    # among settings that reach the recall, none has fewer candidates below the threshold
    fp = false_positive_area(threshold, bands, rows)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            if catch_probability(threshold, b, r) >= 0.95:
                assert false_positive_area(threshold, b, r) >= fp - 1e-9
