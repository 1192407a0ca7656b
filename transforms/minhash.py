"""MinHash signatures over word n-grams, computed for a whole batch of documents at once.

Why this shape: per-document Python loops over shingles x permutations are what makes MinHash slow
(datasketch calls a Python hash function per shingle and permutes per document). Here the words
of a whole batch are hashed in one numpy pass over its UTF-8 bytes (a polynomial per word,
avalanched with fmix64), n-gram ("shingle") hashes are formed with one vectorized
linear combination over the concatenated word hashes of the whole batch, and each permutation is
applied as one multiply-add over all shingles of the batch followed by a segment minimum
(`np.minimum.reduceat`) over each document's run of shingles.

Permutation scheme: datasketch's ``"affine64"`` scheme (its recommended one for 64-bit hashes):
each 64-bit shingle hash is pre-mixed with the MurmurHash3 64-bit finalizer, then permuted with
``a * h + b mod 2^64`` with ``a`` odd (a bijection, so no collisions are introduced and no
``mod (2^61-1)`` is needed; the Mersenne-prime "legacy" scheme wraps ``a*h`` modulo 2^64 before
its modulo anyway when fed 64-bit hashes). ``a`` and ``b`` are drawn exactly as datasketch draws them
from ``np.random.RandomState(seed)``, so ``datasketch.MinHash(num_perm, seed, hashfunc=shingle_hash,
scheme="affine64")`` fed the same shingles yields bit-identical signatures (see tests/test_minhash.py).
Signature values are full 64-bit (uint64), so the estimate does not saturate on large documents.

Documents with fewer words than the n-gram size have no shingles: their signature is all
``EMPTY_VALUE`` and `has_shingles` is False; callers keep them out of LSH (datatrove does the same),
since every such document would otherwise collide with every other.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from replaymill.transforms.normalize import normalize_for_dedup, words

U64 = np.uint64
EMPTY_VALUE = U64(0xFFFFFFFFFFFFFFFF)

# MurmurHash3 fmix64 constants (the finalizer datasketch applies before its affine permutations).
_FMIX_M1 = U64(0xFF51AFD7ED558CCD)
_FMIX_M2 = U64(0xC4CEB9FE1A85EC53)
_S33 = U64(33)

# Odd multipliers that make a shingle hash depend on word order: shingle = sum_j K_j * word_j mod 2^64.
# Fixed constants (not seeded) so that shingle identity is stable across configs and processes;
# the seed only chooses the permutations, as in datasketch.
_POSITION_MULTIPLIERS = np.array(
    [
        0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
        0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x94D049BB133111EB, 0xBF58476D1CE4E5B9,
        0x2545F4914F6CDD1D, 0x9FB21C651E98DF25, 0xD1B54A32D192ED03, 0xABA5B3C7D3F6A7E5,
        0xE7037ED1A0B428DB, 0x8EBC6AF09C88C6E3, 0x589965CC75374CC3, 0x1D8E4E27C47D124F,
    ],
    dtype=U64,
)
MAX_NGRAM = len(_POSITION_MULTIPLIERS)


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer (an avalanching bijection), element-wise with wrapping."""
    h = h ^ (h >> _S33)
    h = h * _FMIX_M1
    h = h ^ (h >> _S33)
    h = h * _FMIX_M2
    return h ^ (h >> _S33)


_MASK = 0xFFFFFFFFFFFFFFFF
_BYTE_BASE = 0x100000001B3  # FNV-64 prime: an odd base for the polynomial over UTF-8 bytes
_LENGTH_MUL = 0x9FB21C651E98DF25
_powers = np.ones(1, dtype=U64)  # _BYTE_BASE ** i mod 2^64, grown on demand


def _base_powers(n: int) -> np.ndarray:
    """The first `n` powers of the byte base (cached; wrapping uint64 cumprod)."""
    global _powers
    if _powers.shape[0] < n:
        size = max(n, 2 * _powers.shape[0], 1 << 12)
        _powers = np.concatenate(([U64(1)], np.cumprod(np.full(size - 1, _BYTE_BASE, dtype=U64))))
    return _powers[:n]


def _fmix64_int(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK
    return h ^ (h >> 33)


def word_hash(word: str) -> int:
    """64-bit hash of one normalized word: fmix64(sum_i (byte_i + 1) * B^i  xor  len * L) mod 2^64.

    A polynomial over the UTF-8 bytes, chosen because it vectorizes over a whole batch of text in
    numpy (`_batch_word_hashes`), then avalanched with fmix64; stable across processes and machines.
    """
    raw, power = 0, 1
    data = word.encode("utf-8", "surrogatepass")
    for byte in data:
        raw = (raw + (byte + 1) * power) & _MASK
        power = (power * _BYTE_BASE) & _MASK
    return _fmix64_int(raw ^ ((len(data) * _LENGTH_MUL) & _MASK))


def _batch_word_hashes(normalized: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(hash of every word of every text in order, words per text) for normalized texts, vectorized.

    Normalized text separates words by single spaces (0x20 never occurs inside a UTF-8 multi-byte
    sequence), so the batch is joined, viewed as bytes, and each word's polynomial is one segment
    sum (`np.add.reduceat`) of byte * power-of-position terms: no Python loop over words.
    """
    counts = np.array([t.count(" ") + 1 if t else 0 for t in normalized], dtype=np.int64)
    data = " ".join(t for t in normalized if t).encode("utf-8", "surrogatepass")  # lone surrogates: no crash
    if not data:
        return np.zeros(0, dtype=U64), counts
    raw = np.frombuffer(data, dtype=np.uint8)
    spaces = np.flatnonzero(raw == 32)
    lengths = np.diff(np.concatenate(([-1], spaces, [raw.shape[0]]))) - 1
    letters = raw[raw != 32].astype(U64) + U64(1)
    starts = np.zeros(lengths.shape[0], dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    position = np.arange(letters.shape[0]) - np.repeat(starts, lengths)
    letters *= _base_powers(int(lengths.max()))[position]
    poly = np.add.reduceat(letters, starts)
    return fmix64(poly ^ (lengths.astype(U64) * U64(_LENGTH_MUL))), counts


def shingle_hash(shingle: Sequence[str]) -> int:
    """Scalar 64-bit hash of one n-gram of words; the exact value `batch_shingles` computes in bulk.

    Exposed so that other tools (datasketch in tests, the audit's contamination check) can hash a
    single shingle identically.
    """
    if not 1 <= len(shingle) <= MAX_NGRAM:
        raise ValueError(f"shingle length must be 1..{MAX_NGRAM}, got {len(shingle)}")
    total = 0
    for k, w in zip(_POSITION_MULTIPLIERS.tolist(), shingle):
        total = (total + k * word_hash(w)) & _MASK
    return total


def doc_shingles(text: str, ngram: int) -> list[tuple[str, ...]]:
    """The word n-grams of a document's normalized text, in order (reference/inspection helper)."""
    toks = words(text)
    return [tuple(toks[i : i + ngram]) for i in range(len(toks) - ngram + 1)]


@dataclass(frozen=True)
class Permutations:
    """The ``num_perm`` affine permutations ``h -> a*h + b mod 2^64`` (``a`` odd), drawn like datasketch."""

    a: np.ndarray  # uint64, shape (num_perm,)
    b: np.ndarray  # uint64, shape (num_perm,)

    @classmethod
    def create(cls, num_perm: int, seed: int) -> Permutations:
        """Same draws as datasketch.MinHash(num_perm, seed, scheme="affine64")._init_permutations."""
        if num_perm < 1:
            raise ValueError("num_perm must be positive")
        gen = np.random.RandomState(seed)
        a = gen.randint(0, 1 << 63, num_perm, dtype=U64) * U64(2) + U64(1)
        b = gen.randint(0, 1 << 64, num_perm, dtype=U64)
        return cls(a=a, b=b)

    @property
    def num_perm(self) -> int:
        return int(self.a.shape[0])


@dataclass(frozen=True)
class ShingleBatch:
    """Shingle hashes of a batch, concatenated: doc i owns ``hashes[offsets[i]:offsets[i+1]]``."""

    hashes: np.ndarray   # uint64, all shingles of all docs, document order, duplicates kept
    offsets: np.ndarray  # int64, shape (n_docs + 1,)

    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def unique_of(self, i: int) -> np.ndarray:
        """Sorted distinct shingle hashes of document i: the set exact Jaccard is computed on."""
        return np.unique(self.hashes[self.offsets[i] : self.offsets[i + 1]])


def batch_shingles(texts: Sequence[str], ngram: int) -> ShingleBatch:
    """Hash the word n-grams of every text in one pass over the batch.

    Word hashes come from one vectorized pass over the batch's bytes; n-gram hashes are
    ``sum_j K_j * w[p+j]`` over the concatenated word-hash array, after which positions whose
    n-gram would straddle two documents are dropped. Words are exactly `transforms.normalize.words`.
    """
    if not 1 <= ngram <= MAX_NGRAM:
        raise ValueError(f"ngram must be 1..{MAX_NGRAM}, got {ngram}")
    wh, lengths = _batch_word_hashes([normalize_for_dedup(t) for t in texts])
    n_shingles = np.maximum(lengths - ngram + 1, 0)
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(n_shingles, out=offsets[1:])
    total_positions = wh.shape[0] - ngram + 1
    if total_positions <= 0 or offsets[-1] == 0:
        return ShingleBatch(hashes=np.zeros(0, dtype=U64), offsets=offsets)
    acc = np.zeros(total_positions, dtype=U64)
    for j in range(ngram):
        acc += _POSITION_MULTIPLIERS[j] * wh[j : j + total_positions]
    # Valid start positions: word_start[i] .. word_start[i] + n_shingles[i] - 1 for each document i.
    word_starts = np.zeros(len(texts), dtype=np.int64)
    np.cumsum(lengths[:-1], out=word_starts[1:])
    doc_of_shingle = np.repeat(np.arange(len(texts)), n_shingles)
    rank_in_doc = np.arange(offsets[-1]) - offsets[:-1][doc_of_shingle]
    return ShingleBatch(hashes=acc[word_starts[doc_of_shingle] + rank_in_doc], offsets=offsets)


def signatures_from_shingles(batch: ShingleBatch, perms: Permutations) -> np.ndarray:
    """MinHash signatures, shape (n_docs, num_perm) uint64; rows of shingle-less docs are EMPTY_VALUE.

    One contiguous multiply-add over all shingles of the batch and one segment minimum per
    permutation: 1-D `np.minimum.reduceat` is an order of magnitude faster than reducing a
    (shingles x permutations) block along either axis (measured in bench/minhash_throughput.py).
    """
    counts = batch.counts()
    sig = np.full((counts.shape[0], perms.num_perm), EMPTY_VALUE, dtype=U64)
    nonempty = np.flatnonzero(counts > 0)
    if nonempty.size == 0:
        return sig
    mixed = fmix64(batch.hashes)
    starts = batch.offsets[:-1][nonempty]
    by_perm = np.empty((perms.num_perm, nonempty.size), dtype=U64)
    permuted = np.empty_like(mixed)
    for k in range(perms.num_perm):
        np.multiply(mixed, perms.a[k], out=permuted)
        permuted += perms.b[k]
        by_perm[k] = np.minimum.reduceat(permuted, starts)
    sig[nonempty] = by_perm.T
    return sig


def batch_signatures(texts: Sequence[str], ngram: int, perms: Permutations) -> tuple[np.ndarray, np.ndarray]:
    """(signatures (n_docs, num_perm) uint64, has_shingles (n_docs,) bool) for a batch of texts."""
    batch = batch_shingles(texts, ngram)
    return signatures_from_shingles(batch, perms), batch.counts() > 0


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Fraction of equal signature positions: an unbiased estimate of the Jaccard similarity."""
    if sig_a.shape != sig_b.shape:
        raise ValueError("signatures must have the same number of permutations")
    return float(np.count_nonzero(sig_a == sig_b)) / sig_a.shape[0]
