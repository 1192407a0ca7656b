"""Largest-shortfall interleave: prefix exactness (docs and tokens) and bit-identical resume."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaymill.transforms.interleave import MixtureInterleave, divergence, interleave

weights_st = st.lists(st.floats(min_value=1e-4, max_value=1.0), min_size=1, max_size=8)


def _prefix_deviation(weights, sizes, seq):
    """Largest |u_k - w_k U| over all prefixes of `seq`."""
    w = [x / sum(weights) for x in weights]
    units, total, worst, taken = [0] * len(w), 0, 0.0, [0] * len(w)
    for k in seq:
        units[k] += sizes[k][taken[k]]
        taken[k] += 1
        total += sizes[k][taken[k] - 1]
        worst = max(worst, max(abs(units[j] - w[j] * total) for j in range(len(w))))
    return worst


@settings(max_examples=150, deadline=None)
@given(weights=weights_st, steps=st.integers(1, 400))
def test_docs_every_prefix_within_one_document(weights, steps):
    sizes = [[1] * steps for _ in weights]
    seq, _ = interleave(weights, sizes, steps)
    assert len(seq) == steps
    assert _prefix_deviation(weights, sizes, seq) <= 1.0 + 1e-9


@settings(max_examples=150, deadline=None)
@given(data=st.data(), weights=weights_st, steps=st.integers(1, 300))
def test_tokens_every_prefix_within_one_document(data, weights, steps):
    max_size = data.draw(st.sampled_from([1, 7, 100, 5000]))
    sizes = [data.draw(st.lists(st.integers(1, max_size), min_size=steps, max_size=steps)) for _ in weights]
    seq, _ = interleave(weights, sizes, steps)
    largest = max(max(s) for s in sizes)
    assert _prefix_deviation(weights, sizes, seq) <= largest + 1e-9


@settings(max_examples=100, deadline=None)
@given(data=st.data(), weights=weights_st, steps=st.integers(1, 200))
def test_resume_equals_uninterrupted(data, weights, steps):
    sizes = [data.draw(st.lists(st.integers(1, 50), min_size=1, max_size=steps)) for _ in weights]
    full, _ = interleave(weights, sizes, steps)
    cut = data.draw(st.integers(0, steps))
    head, state = interleave(weights, sizes, cut)
    state = json.loads(json.dumps(state))  # the state survives a JSON round trip (checkpoint)
    tail, _ = interleave(weights, sizes, steps - len(head), state=state)
    assert head + tail == full


def test_exhausted_keys_leave_and_rest_renormalize():
    seq, state = interleave([0.5, 0.5], [[1] * 3, [1] * 10], 20)
    assert seq.count(0) == 3 and seq.count(1) == 10 and len(seq) == 13
    assert state["exhausted"] == [1, 1]


def test_small_keys_are_served_early_whatever_the_largest_document():
    seq, _ = interleave([0.05, 0.95], [[400] * 50, [20_000] + [300] * 500], 10)
    assert 0 in seq[:2]


def test_ties_go_to_lowest_index_and_bad_weights():
    assert interleave([1, 1, 1], [[1] * 3] * 3, 3)[0] == [0, 1, 2]
    with pytest.raises(ValueError):
        MixtureInterleave([0, 0])
    with pytest.raises(ValueError, match="wrong number"):
        MixtureInterleave([1, 1], {"units": [0], "docs": [0], "exhausted": [0]})


def test_divergence():
    d = divergence({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5})
    assert d["tv"] == 0 and d["kl"] == 0
    d = divergence({"a": 0.75, "b": 0.25}, {"a": 0.5, "b": 0.5})
    assert d["tv"] == pytest.approx(0.25)
    assert d["kl"] == pytest.approx(0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(2))
    assert divergence({"a": 1.0}, {"a": 0.5, "b": 0.5})["kl"] == math.inf
