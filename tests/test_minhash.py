"""MinHash signatures: bit-identical to datasketch, batch-independent, seeded, and unbiased estimates."""
from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from replaymill.transforms.minhash import (
    EMPTY_VALUE,
    Permutations,
    batch_shingles,
    batch_signatures,
    doc_shingles,
    estimate_jaccard,
    shingle_hash,
    signatures_from_shingles,
)

NUM_PERM = 112


@pytest.fixture(scope="module")
def web_texts(real_docs_by_domain) -> list[str]:
    docs = real_docs_by_domain["web"][:40] + real_docs_by_domain["news"][:10]
    return [d["text"] for d in docs]


def datasketch_signature(text: str, ngram: int, num_perm: int, seed: int) -> MinHash:
    m = MinHash(num_perm=num_perm, seed=seed, hashfunc=shingle_hash, scheme="affine64")
    m.update_batch(doc_shingles(text, ngram))
    return m


def test_permutations_are_datasketch_affine64():
    ours = Permutations.create(NUM_PERM, seed=7)
    theirs = MinHash(num_perm=NUM_PERM, seed=7, scheme="affine64").permutations
    np.testing.assert_array_equal(ours.a, theirs[0])
    np.testing.assert_array_equal(ours.b, theirs[1])
    assert np.all(ours.a % 2 == 1)


@pytest.mark.parametrize("ngram", [5, 3])
def test_signatures_equal_datasketch_on_real_docs(web_texts, ngram):
    perms = Permutations.create(NUM_PERM, seed=1)
    sigs, has = batch_signatures(web_texts, ngram, perms)
    assert has.sum() >= len(web_texts) - 2
    sketches = []
    for text, sig, ok in zip(web_texts, sigs, has):
        m = datasketch_signature(text, ngram, NUM_PERM, 1)
        sketches.append(m)
        if ok:
            np.testing.assert_array_equal(sig, m.hashvalues)
        else:
            assert np.all(sig == EMPTY_VALUE)
    # ... hence identical Jaccard estimates for every pair.
    for i in range(0, 20):
        for j in range(i + 1, 20):
            if has[i] and has[j]:
                assert estimate_jaccard(sigs[i], sigs[j]) == sketches[i].jaccard(sketches[j])


def test_vectorized_shingles_equal_scalar_hash(web_texts):
    batch = batch_shingles(web_texts[:8], 5)
    for i, text in enumerate(web_texts[:8]):
        expected = [shingle_hash(s) for s in doc_shingles(text, 5)]
        got = batch.hashes[batch.offsets[i] : batch.offsets[i + 1]].tolist()
        assert got == expected


@settings(max_examples=200, deadline=None, derandomize=True)
@given(texts=st.lists(st.text(max_size=80), min_size=1, max_size=6), ngram=st.integers(1, 4))
def test_vectorized_shingles_equal_scalar_hash_on_any_text(texts, ngram):
    # Arbitrary Unicode (incl. lone surrogates, odd spaces, empty texts) hashes identically.
    batch = batch_shingles(texts, ngram)
    for i, text in enumerate(texts):
        expected = [shingle_hash(s) for s in doc_shingles(text, ngram)]
        assert batch.hashes[batch.offsets[i] : batch.offsets[i + 1]].tolist() == expected


def test_signature_does_not_depend_on_batch_composition(web_texts):
    perms = Permutations.create(NUM_PERM, seed=1)
    together, _ = batch_signatures(web_texts, 5, perms)
    alone = np.vstack([batch_signatures([t], 5, perms)[0] for t in web_texts[::-1]])[::-1]
    np.testing.assert_array_equal(together, alone)


def test_seeded_and_deterministic(web_texts):
    a, _ = batch_signatures(web_texts[:5], 5, Permutations.create(NUM_PERM, seed=3))
    b, _ = batch_signatures(web_texts[:5], 5, Permutations.create(NUM_PERM, seed=3))
    c, _ = batch_signatures(web_texts[:5], 5, Permutations.create(NUM_PERM, seed=4))
    np.testing.assert_array_equal(a, b)
    assert np.mean(a == c) < 0.05


def test_short_and_empty_docs_have_no_shingles():
    perms = Permutations.create(16, seed=1)
    sigs, has = batch_signatures(["", "one two three four", "one two three four five", "   "], 5, perms)
    assert has.tolist() == [False, False, True, False]
    assert np.all(sigs[[0, 1, 3]] == EMPTY_VALUE)
    assert np.all(sigs[2] != EMPTY_VALUE)


def test_normalization_makes_case_punctuation_and_digits_irrelevant():
    perms = Permutations.create(32, seed=1)
    sigs, _ = batch_signatures(
        ["The price was 12 dollars, said the man on Monday.", "the PRICE was 99 dollars said the man -- on monday"],
        5,
        perms,
    )
    np.testing.assert_array_equal(sigs[0], sigs[1])


def test_word_order_matters_inside_a_shingle():
    assert shingle_hash(("a", "b", "c")) != shingle_hash(("c", "b", "a"))


def letters(i: int) -> str:
    """A distinct lowercase word per integer (base 26)."""
    out = ""
    while True:
        i, r = divmod(i, 26)
        out += chr(97 + r)
        if i == 0:
            return out


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    shared=st.integers(min_value=0, max_value=300),
    only_a=st.integers(min_value=0, max_value=300),
    only_b=st.integers(min_value=0, max_value=300),
)
def test_estimate_tracks_true_jaccard(shared, only_a, only_b):
    if shared + only_a == 0 or shared + only_b == 0:
        return
    # Unigram shingles over disjoint vocabularies give an exactly known Jaccard (letters only:
    # normalization maps digits to 0).
    common = [f"c{letters(i)}" for i in range(shared)]
    a = " ".join(common + [f"a{letters(i)}" for i in range(only_a)])
    b = " ".join(common + [f"b{letters(i)}" for i in range(only_b)])
    true = shared / (shared + only_a + only_b)
    num_perm = 256
    sigs = signatures_from_shingles(batch_shingles([a, b], 1), Permutations.create(num_perm, 5))
    est = estimate_jaccard(sigs[0], sigs[1])
    # Binomial(num_perm, J) / num_perm: 5 standard deviations (+ a hair for the J in {0, 1} edges).
    assert abs(est - true) <= 5 * np.sqrt(true * (1 - true) / num_perm) + 1e-9
