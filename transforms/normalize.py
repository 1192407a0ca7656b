"""Text identity for deduplication: one normalization, one hash, one word splitter.

Exact dedup, MinHash near dedup and the audit's contamination check must agree on when two texts
are "the same", so they all go through these functions. The normalization follows datatrove's
`simplify_text` as used by FineWeb: differences in case, Unicode compatibility forms, punctuation,
whitespace and digits (dates, counters, prices in boilerplate) do not make two documents distinct.
"""
from __future__ import annotations

import hashlib
import unicodedata

import regex

_PUNCT = regex.compile(r"\p{P}+")
_DIGIT = regex.compile(r"\d")

HASH_BYTES = 16  # 128-bit: no accidental collision at any corpus size we will ever see


def normalize_for_dedup(text: str) -> str:
    """NFKC, lowercase, punctuation removed, every decimal digit mapped to 0, whitespace collapsed to one space.

    Punctuation is replaced by a space (not deleted) so "end.Start" and "end Start" normalize alike
    and words are never glued together.
    """
    if not unicodedata.is_normalized("NFKC", text):  # a cheap check; most text is already NFKC
        text = unicodedata.normalize("NFKC", text)
    text = _PUNCT.sub(" ", text.lower())
    text = _DIGIT.sub("0", text)
    # str.split() without arguments is a C loop over Unicode whitespace, 3x faster than a regex sub.
    return " ".join(text.split())


def text_hash(text: str) -> bytes:
    """128-bit BLAKE2b digest of `text` exactly as given (pass `normalize_for_dedup(text)` for dedup keys).

    Bytes rather than an int: they pickle small, compare fast and are a deterministic Beam key.
    """
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=HASH_BYTES).digest()


def dedup_key(text: str) -> bytes:
    """The exact-dedup key of a raw text: the hash of its normalized form."""
    return text_hash(normalize_for_dedup(text))


def words(text: str) -> list[str]:
    """Words of the normalized text (whitespace-split), the unit of MinHash shingles.

    Scripts written without spaces (Chinese, Japanese, Thai) yield few long "words"; shingling
    them by characters is the MinHash module's choice, not this splitter's.
    """
    normalized = normalize_for_dedup(text)
    return normalized.split(" ") if normalized else []
