"""Shared word n-grams between documents and an evaluation set: the decontamination test.

Why n-grams and not MinHash: a benchmark passage quoted inside a longer page shares only a small
part of the page's shingles, so the pair's Jaccard is low (a 200-word passage in a 500-word page is
about 0.3) and near-duplicate search misses it. GPT-3 counted shared 13-grams instead, and Llama 2,
OLMo and Dolma use n-gram or paragraph overlap; so does this module.

Words and n-gram hashes are exactly those of MinHash (`transforms.minhash.batch_shingles` over
`normalize_for_dedup`: NFKC, lowercase, punctuation removed, digits mapped to 0), so "the same
text" means the same thing in dedup, the audit and here. The evaluation side becomes an
`OverlapIndex`: the sorted distinct n-gram hashes of all evaluation documents (8 bytes each) with
the documents owning each one (CSR arrays, 4 bytes per owner). A corpus document's n-grams are
looked up with one `np.searchsorted` per batch, so the cost per document is O(words x log(eval
n-grams)) and does not grow with the number of evaluation documents beyond that logarithm; the
index for 10k evaluation documents of 500 words is ~60 MB.

For each (corpus document, evaluation document) pair sharing n-grams an `Overlap` says how many
distinct evaluation n-grams occur in the corpus document (`ngrams`), what fraction of the
evaluation document's distinct n-grams that is (`overlap`), and where the first one starts
(word index, for a sample). A pair counts as contamination when `ngrams >= min_ngrams` and
`overlap >= min_overlap`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import regex

from replaymill.transforms.minhash import MAX_NGRAM, batch_shingles

DEFAULT_N = 13
_RAW_WORD = regex.compile(r"[^\s\p{P}]+")


def document_ngrams(texts: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hashes, document of each, distinct n-grams per document): each document's distinct word
    n-gram hashes, documents numbered 0..len(texts)-1 (shorter than n words: none)."""
    if not 1 <= n <= MAX_NGRAM:
        raise ValueError(f"n must be 1..{MAX_NGRAM}, got {n}")
    shingles = batch_shingles(texts, n)
    doc_of = np.repeat(np.arange(len(texts), dtype=np.int64), shingles.counts())
    order = np.lexsort((shingles.hashes, doc_of))
    d, h = doc_of[order], shingles.hashes[order]
    distinct = np.ones(h.shape[0], dtype=bool)
    distinct[1:] = (d[1:] != d[:-1]) | (h[1:] != h[:-1])
    return h[distinct], d[distinct], np.bincount(d[distinct], minlength=len(texts)).astype(np.int32)


class Overlap(NamedTuple):
    """One corpus document's overlap with one evaluation document."""

    eval_index: int   # position of the evaluation document in the index
    ngrams: int       # distinct evaluation n-grams found in the corpus document
    overlap: float    # ngrams / distinct n-grams of the evaluation document
    first_word: int   # word index (normalized words) in the corpus document of the first shared n-gram


@dataclass
class OverlapIndex:
    """The hashed n-grams of an evaluation set and which evaluation documents own each one."""

    n: int
    keys: np.ndarray          # uint64, sorted distinct n-gram hashes over all evaluation documents
    owner_offsets: np.ndarray  # int64, owners of keys[i] are owners[owner_offsets[i]:owner_offsets[i+1]]
    owners: np.ndarray        # int32, evaluation document indexes
    eval_ngrams: np.ndarray   # int32, distinct n-grams per evaluation document (0: shorter than n words)

    @classmethod
    def build(cls, texts: Sequence[str], n: int = DEFAULT_N, batch_size: int = 512) -> OverlapIndex:
        """Index the evaluation texts (in batches of `batch_size`, for bounded temporary memory)."""
        parts = [document_ngrams(texts[lo : lo + batch_size], n) for lo in range(0, len(texts), batch_size)]
        starts = range(0, len(texts), batch_size)
        return cls.from_pairs(
            n,
            np.concatenate([h for h, _, _ in parts]) if parts else np.zeros(0, np.uint64),
            np.concatenate([d + lo for (_, d, _), lo in zip(parts, starts)]).astype(np.int32)
            if parts else np.zeros(0, np.int32),
            np.concatenate([c for _, _, c in parts]) if parts else np.zeros(0, np.int32),
        )

    @classmethod
    def from_pairs(cls, n: int, hashes: np.ndarray, docs: np.ndarray, eval_ngrams: np.ndarray) -> OverlapIndex:
        """An index from (n-gram hash, evaluation document) pairs, each pair distinct."""
        order = np.lexsort((docs, hashes))
        hashes, docs = hashes[order], docs[order]
        keys, starts = np.unique(hashes, return_index=True)
        offsets = np.append(starts, hashes.shape[0]).astype(np.int64)
        return cls(n=n, keys=keys, owner_offsets=offsets, owners=docs.astype(np.int32), eval_ngrams=eval_ngrams)

    @property
    def n_docs(self) -> int:
        return int(self.eval_ngrams.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.owner_offsets.nbytes + self.owners.nbytes + self.eval_ngrams.nbytes)

    def match(self, texts: Sequence[str]) -> list[list[Overlap]]:
        """Per corpus text, its overlaps with evaluation documents (any shared n-gram), by eval index."""
        out: list[list[Overlap]] = [[] for _ in texts]
        if not texts or self.keys.shape[0] == 0:
            return out
        batch = batch_shingles(texts, self.n)
        if batch.hashes.shape[0] == 0:
            return out
        pos = np.searchsorted(self.keys, batch.hashes)
        pos[pos == self.keys.shape[0]] = 0
        hit = np.flatnonzero(self.keys[pos] == batch.hashes)
        if hit.size == 0:
            return out
        doc_of = np.searchsorted(batch.offsets, hit, side="right") - 1       # corpus doc of each hit
        word = hit - batch.offsets[doc_of]                                    # n-gram start (word index)
        key = pos[hit]
        # One row per (corpus doc, key): the first occurrence, so a repeated n-gram counts once.
        first = np.unique(doc_of * self.keys.shape[0] + key, return_index=True)[1]
        doc_of, word, key = doc_of[first], word[first], key[first]
        # Expand to (corpus doc, owner) rows.
        n_owners = self.owner_offsets[key + 1] - self.owner_offsets[key]
        rows = np.repeat(np.arange(key.shape[0]), n_owners)
        within = np.arange(rows.shape[0]) - np.repeat(np.cumsum(n_owners) - n_owners, n_owners)
        owner = self.owners[self.owner_offsets[key][rows] + within].astype(np.int64)
        pair_doc, pair_word = doc_of[rows], word[rows]
        pair = pair_doc * self.n_docs + owner
        order = np.lexsort((pair_word, pair))
        pair, pair_word = pair[order], pair_word[order]
        uniq, start, count = np.unique(pair, return_index=True, return_counts=True)
        for p, s, c in zip(uniq.tolist(), start.tolist(), count.tolist()):
            d, e = divmod(p, self.n_docs)
            out[d].append(Overlap(e, c, c / max(int(self.eval_ngrams[e]), 1), int(pair_word[s])))
        return out

    def counted(self, texts: Sequence[str], min_ngrams: int, min_overlap: float) -> list[list[Overlap]]:
        """Per corpus text, the overlaps that count as contamination (`ngrams >= min_ngrams` and
        `overlap >= min_overlap`), by eval index: the one test the build stage and the audit share."""
        return [[o for o in found if o.ngrams >= min_ngrams and o.overlap >= min_overlap] for found in self.match(texts)]


def sample_around(text: str, first_word: int, n: int, context: int = 60, limit: int = 300) -> str:
    """The corpus text around a shared n-gram starting at normalized word `first_word`.

    Raw words (runs without whitespace or punctuation) line up with normalized words except where
    NFKC splits or joins characters; a sample is for a reader to see the overlap, so near is enough.
    """
    spans = [m.span() for _, m in zip(range(first_word + n), _RAW_WORD.finditer(text))]
    if not spans:
        return text[:limit]
    start = spans[min(first_word, len(spans) - 1)][0]
    end = spans[-1][1]
    lo, hi = max(0, start - context), min(len(text), end + context)
    return " ".join(text[lo:hi].split())[:limit]
