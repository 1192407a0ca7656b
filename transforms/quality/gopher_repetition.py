"""Gopher repetition filter (Rae et al. 2021, arXiv 2112.11446, table A1).

Definitions: lines and paragraphs as in `text_view`. Repeated n-grams are over words; the top
n-gram fraction is (occurrences x characters) of the most frequent n-gram (ties: the longest),
counted only if it occurs at least twice; the duplicate n-gram fraction counts each character
once, covering every word inside an n-gram that already occurred earlier in the document.
Characters are word characters plus the single spaces joining covered words, over all
characters of the text.
"""
from __future__ import annotations

import numpy as np

from replaymill.transforms.quality.base import RuleSet, Thresholds
from replaymill.transforms.quality.text_view import TextView, duplicate_stats

TOP_NGRAMS = (2, 3, 4)
DUP_NGRAMS = tuple(range(5, 11))
_HASH_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier for rolling n-gram ids (wrapping arithmetic)

SIGNALS: tuple[str, ...] = (
    "dup_line_frac",
    "dup_line_char_frac",
    "dup_para_frac",
    "dup_para_char_frac",
    *(f"top_{n}gram_char_frac" for n in TOP_NGRAMS),
    *(f"dup_{n}gram_char_frac" for n in DUP_NGRAMS),
)


def ngram_fractions(ids: np.ndarray, counts: np.ndarray, lengths: np.ndarray, n_chars: int) -> dict[str, float]:
    """Gopher's top n-gram (n=2..4) and duplicate n-gram (n=5..10) character fractions, in numpy.

    `ids` are the words as integer ids, `counts` how often each position's word occurs in
    the document, `lengths` each word's characters. n-gram ids are built by a wrapping polynomial
    over 64 bits (a collision needs two distinct n-grams of one document to agree on 64 bits).
    Pruning: an n-gram can occur twice only where its (n-1)-gram prefix does, so each n sorts only
    the positions whose (n-1)-gram repeats; on clean text that set empties after a few n.
    """
    out = {f"top_{n}gram_char_frac": 0.0 for n in TOP_NGRAMS}
    out.update({f"dup_{n}gram_char_frac": 0.0 for n in DUP_NGRAMS})
    n_words = len(ids)
    if n_words < 2 or n_chars == 0:
        return out
    cum = np.concatenate(([0], np.cumsum(lengths)))
    keys = ids.astype(np.uint64) + np.uint64(1)
    h = keys
    candidates = np.flatnonzero(counts >= 2)  # start positions whose (n-1)-gram occurs more than once
    for n in range(2, max(DUP_NGRAMS) + 1):
        with np.errstate(over="ignore"):
            h = h[:-1] * _HASH_MULT + keys[n - 1:]  # h[i] = id of the n-gram starting at word i
        candidates = candidates[candidates < len(h)]
        if candidates.size < 2:
            break
        _, first, inverse, group_counts = np.unique(
            h[candidates], return_index=True, return_inverse=True, return_counts=True)
        occurrences = group_counts[inverse]
        if n in TOP_NGRAMS:
            gram_chars = cum[candidates + n] - cum[candidates] + (n - 1)
            best = np.lexsort((gram_chars, occurrences))[-1]  # most frequent, then longest
            if occurrences[best] >= 2:
                out[f"top_{n}gram_char_frac"] = occurrences[best] * gram_chars[best] / n_chars
        if n in DUP_NGRAMS:
            repeated = candidates[first[inverse] != np.arange(candidates.size)]
            if repeated.size:
                starts = np.zeros(n_words + 1, dtype=np.int64)
                np.add.at(starts, repeated, 1)
                np.add.at(starts, repeated + n, -1)
                covered = np.cumsum(starts[:n_words]) > 0  # words inside a repeated n-gram
                chars = lengths[covered].sum() + np.count_nonzero(covered[1:] & covered[:-1])
                out[f"dup_{n}gram_char_frac"] = chars / n_chars
        candidates = candidates[occurrences >= 2]
    return {k: min(float(v), 1.0) for k, v in out.items()}


def compute(view: TextView) -> dict[str, float]:
    """Duplicate lines and paragraphs (by count and by characters), top and duplicate n-grams."""
    dup_lines, dup_line_chars = view.line_duplicates
    paragraphs = view.paragraphs
    dup_paras, dup_para_chars = duplicate_stats(paragraphs)
    per_char = 1.0 / view.n_chars if view.n_chars else 0.0
    ids = view.word_ids
    return {
        "dup_line_frac": dup_lines * view.per_line,
        "dup_line_char_frac": dup_line_chars * per_char,
        "dup_para_frac": dup_paras / len(paragraphs) if paragraphs else 0.0,
        "dup_para_char_frac": dup_para_chars * per_char,
        **ngram_fractions(ids, view.occurrences[ids], view.distinct_lengths[ids], view.n_chars),
    }


class GopherRepetitionRules(Thresholds):
    """Gopher repetition filter thresholds (Rae et al. 2021, table A1)."""

    max_dup_line_frac: float | None = 0.30
    max_dup_para_frac: float | None = 0.30
    max_dup_line_char_frac: float | None = 0.20
    max_dup_para_char_frac: float | None = 0.20
    max_top_2gram_char_frac: float | None = 0.20
    max_top_3gram_char_frac: float | None = 0.18
    max_top_4gram_char_frac: float | None = 0.16
    max_dup_5gram_char_frac: float | None = 0.15
    max_dup_6gram_char_frac: float | None = 0.14
    max_dup_7gram_char_frac: float | None = 0.13
    max_dup_8gram_char_frac: float | None = 0.12
    max_dup_9gram_char_frac: float | None = 0.11
    max_dup_10gram_char_frac: float | None = 0.10

    TABLE = (
        ("max_dup_para_frac", "dup_para_frac", "le"),
        ("max_dup_para_char_frac", "dup_para_char_frac", "le"),
        ("max_dup_line_frac", "dup_line_frac", "le"),
        ("max_dup_line_char_frac", "dup_line_char_frac", "le"),
        *((f"max_top_{n}gram_char_frac", f"top_{n}gram_char_frac", "le") for n in TOP_NGRAMS),
        *((f"max_dup_{n}gram_char_frac", f"dup_{n}gram_char_frac", "le") for n in DUP_NGRAMS),
    )


RULE_SET = RuleSet(
    name="gopher_repetition",
    signals=SIGNALS,
    compute=compute,
    thresholds=GopherRepetitionRules,
    citation="Rae et al. 2021, Scaling Language Models: Methods, Analysis & Insights from Training Gopher "
             "(arXiv 2112.11446), table A1",
    order=20,
)
