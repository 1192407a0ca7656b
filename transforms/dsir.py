"""DSIR-style importance resampling toward a reference sample (Xie et al. 2023, arXiv:2302.03169).

When all we know about a base model's pre-training data is a sample of text (for instance text the
model itself generates), we select pool documents whose hashed unigram+bigram distribution makes
the reference likely:

1. Features: lowercased word unigrams and bigrams, hashed into `num_buckets` buckets (10k as in
   DSIR). Hashes are crc32-based and mixed with a 64-bit finalizer: stable across processes and
   machines (Python's `hash` is salted per process), so Beam workers agree.
2. Two bag-of-ngrams models: the reference's and the pool's bucket distributions, add-alpha smoothed.
3. A document's log importance weight is sum over its features of log p_ref(b) - log p_pool(b), the
   log-likelihood ratio under the two models (DSIR's estimator, not length-normalized).
4. Selection without replacement proportional to the weights: Gumbel top-k on
   log w + Gumbel noise. The noise of a document is a pure function of (seed, document id), so the
   selection does not depend on how the pool is partitioned across workers.

Optional quality weighting inside a domain uses the same Gumbel machinery with log w = quality / T.

Stratified selection (the default of `replaymill sample --reference`). Log weights are sums over a
document's features, so they span hundreds of nats and Gumbel top-k is effectively "the
highest-scoring documents": the selection collapses onto whichever domain the reference
over-represents most relative to the pool (measured: 91% books for a reference that is 25% books,
bench/moat_experiment.py). Stratifying restores the reference's mixture:

5. `estimate_mixture`: each reference document's likelihood under one bag-of-ngrams model per pool
   key (domain/lang), and EM for the mixture weights (documents' posteriors over keys); the result
   is the reference's share of *documents* per key, which is unbiased for text a model generated
   from its document separator even when generation was cut at a length cap.
6. The caller turns document shares into budgets (with each key's mean document size), and runs
   DSIR inside each key against the reference documents assigned to it (`key_reference_counts`).
"""
from __future__ import annotations

import hashlib
import re
import zlib
from typing import Iterable, Sequence

import numpy as np

NUM_BUCKETS = 10_000
WORD_RE = re.compile(r"\w+", re.UNICODE)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer over a uint64 array (wrapping arithmetic): well-spread bucket hashes."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def feature_ids(text: str, num_buckets: int = NUM_BUCKETS) -> np.ndarray:
    """Bucket ids of a document's unigrams and bigrams (lowercased `\\w+` words), one per occurrence."""
    words = WORD_RE.findall(text.lower())
    if not words:
        return np.zeros(0, dtype=np.int64)
    h = np.fromiter((zlib.crc32(w.encode("utf-8")) for w in words), dtype=np.uint64, count=len(words))
    uni = _mix64(h)
    bi = _mix64((h[:-1] << np.uint64(32)) | (h[1:] ^ np.uint64(0x5BD1E995)))  # >= 2**32: never a unigram's input
    return (np.concatenate([uni, bi]) % np.uint64(num_buckets)).astype(np.int64)


def bucket_counts(texts: Iterable[str], num_buckets: int = NUM_BUCKETS) -> np.ndarray:
    """Summed feature counts of many documents (the sufficient statistic of a bag-of-ngrams model)."""
    counts = np.zeros(num_buckets, dtype=np.int64)
    for text in texts:
        ids = feature_ids(text, num_buckets)
        if len(ids):
            counts += np.bincount(ids, minlength=num_buckets)
    return counts


def log_probs(counts: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Add-alpha smoothed log bucket probabilities (no bucket gets probability zero)."""
    c = counts.astype(np.float64) + alpha
    return np.log(c / c.sum())


def log_ratio(reference_counts: np.ndarray, pool_counts: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Per-bucket log p_ref - log p_pool: a document's log weight is the sum of these over its features."""
    return log_probs(reference_counts, alpha) - log_probs(pool_counts, alpha)


def log_importance_weights(texts: Sequence[str], ratio: np.ndarray) -> np.ndarray:
    """Log importance weight of each document under the reference-vs-pool bag-of-ngrams models."""
    num_buckets = len(ratio)
    return np.array([float(ratio[feature_ids(t, num_buckets)].sum()) for t in texts], dtype=np.float64)


def gumbel_noise(doc_ids: Sequence[str], seed: int) -> np.ndarray:
    """Standard Gumbel noise per document, a pure function of (seed, id): partition-independent."""
    prefix = f"{int(seed)}\0".encode()
    bits = np.fromiter((int.from_bytes(hashlib.blake2b(prefix + i.encode("utf-8"), digest_size=8).digest(), "little") >> 11
                        for i in doc_ids), dtype=np.uint64, count=len(doc_ids))  # 53 random bits
    u = (bits.astype(np.float64) + 0.5) / float(1 << 53)  # in (0, 1), never 0 or 1
    return -np.log(-np.log(u))


def gumbel_keys(log_weights: np.ndarray, doc_ids: Sequence[str], seed: int) -> np.ndarray:
    """Keys whose descending order is a draw without replacement with probabilities ∝ exp(log_weights)."""
    return np.asarray(log_weights, dtype=np.float64) + gumbel_noise(doc_ids, seed)


def top_by_budget(keys: np.ndarray, sizes: np.ndarray, budget: int) -> np.ndarray:
    """Indices of the highest keys, in descending key order, until their sizes reach `budget`.

    Ties break by index, so the result is deterministic. With unit sizes this is Gumbel top-k.
    """
    order = np.lexsort((np.arange(len(keys)), -np.asarray(keys)))
    cum = np.cumsum(np.asarray(sizes, dtype=np.int64)[order])
    n = int(np.searchsorted(cum, budget, side="left")) + 1
    return order[: min(n, len(order))]


def quality_log_weights(quality: np.ndarray, temperature: float) -> np.ndarray:
    """log w = quality / T: T -> 0 keeps the best documents first, large T is close to uniform."""
    if temperature <= 0:
        raise ValueError(f"quality temperature must be > 0, got {temperature}")
    q = np.nan_to_num(np.asarray(quality, dtype=np.float64), nan=0.0)
    return q / temperature


def estimate_mixture(reference_features: Sequence[np.ndarray], key_counts: dict[str, np.ndarray],
                     alpha: float = 1.0, iterations: int = 100) -> tuple[dict[str, float], np.ndarray, list[str]]:
    """Mixture weights over pool keys that best explain the reference documents (EM, documents as units).

    `reference_features`: each reference document's feature ids (`feature_ids`); `key_counts`: each
    key's summed pool counts. Returns ({key: share of reference documents}, posteriors `[docs, keys]`
    of the documents with features, the key order). Documents without features carry no evidence
    and are left out.
    """
    keys = sorted(key_counts)
    if not keys:
        raise ValueError("no pool keys to estimate a mixture over")
    logp = np.stack([log_probs(key_counts[k], alpha) for k in keys])  # [keys, buckets]
    docs = [f for f in reference_features if len(f)]
    if not docs:
        raise ValueError("the reference has no words to estimate a mixture from")
    ll = np.stack([logp[:, f].sum(axis=1) for f in docs])  # [docs, keys] log-likelihoods
    log_pi = np.full(len(keys), -np.log(len(keys)))
    post = np.empty_like(ll)
    for _ in range(iterations):
        a = ll + log_pi
        a -= a.max(axis=1, keepdims=True)
        post = np.exp(a)
        post /= post.sum(axis=1, keepdims=True)
        pi = post.mean(axis=0)
        new = np.log(np.maximum(pi, 1e-300))
        if np.allclose(new, log_pi, atol=1e-9):
            break
        log_pi = new
    return {k: float(p) for k, p in zip(keys, post.mean(axis=0))}, post, keys


def key_reference_counts(reference_features: Sequence[np.ndarray], posteriors: np.ndarray, keys: list[str],
                         num_buckets: int = NUM_BUCKETS, min_posterior: float = 1e-4) -> dict[str, np.ndarray]:
    """Each key's share of the reference: feature counts weighted by the documents' posteriors."""
    out = {k: np.zeros(num_buckets, dtype=np.float64) for k in keys}
    docs = [f for f in reference_features if len(f)]
    for f, post in zip(docs, posteriors):
        counts = np.bincount(f, minlength=num_buckets)
        for k in np.flatnonzero(post >= min_posterior):
            out[keys[k]] += post[k] * counts
    return out


def hashed_kl(p_counts: np.ndarray, q_counts: np.ndarray, alpha: float = 1.0) -> float:
    """KL(p || q) in nats between two smoothed hashed-n-gram distributions (e.g. reference || selection)."""
    lp, lq = log_probs(p_counts, alpha), log_probs(q_counts, alpha)
    return float(np.sum(np.exp(lp) * (lp - lq)))
