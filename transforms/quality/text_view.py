"""The shared, lazily cached views of one text that every quality rule set reads.

Rule sets never split a text themselves: they ask the `TextView` for words, lines or paragraphs,
and each view is computed on first use and cached, so four rule sets that all look at lines cost
one split, as when every signal was computed in one function.

Definitions (where the papers leave room, the choice is stated here, once for all rule sets):
- Words: Unicode word runs (with inner apostrophes; combining marks included, so Indic words stay
  whole) and runs of punctuation that hold a symbol (`|`, `©`, `+`; Unicode class S); runs of
  pure punctuation are not words. Scripts without spaces give few long "words", so word-based
  rules are for space-delimited languages.
- Lines: non-empty lines (whitespace-stripped); blank lines between paragraphs are layout, not
  content, so they neither dilute line fractions nor count as duplicate lines.
- Paragraphs: blocks separated by two or more newlines.
"""
from __future__ import annotations

import re
from collections import Counter
from functools import cached_property

import numpy as np
import regex

# Words: Unicode word runs (the `regex` module's \w keeps combining marks, so Devanagari or Thai
# words are not cut at vowel signs), or a punctuation run holding a symbol. The lookbehind starts
# a symbol-run match only at the start of a run, so long "-----" lines cost linear time.
_WORD = regex.compile(r"\w+(?:['’]\w+)*|(?<![^\w\s])[^\w\s]*?\p{S}[^\w\s]*")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def duplicate_stats(items: list[str]) -> tuple[int, int]:
    """(number of items equal to an earlier item, their total characters)."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


class TextView:
    """One document's text and its derived views, each computed once on first access.

    `lang` is the document's language code when known (language ID runs before the quality
    signals), so a rule set may choose per-language resources; None when unknown.
    """

    def __init__(self, text: str, lang: str | None = None):
        self.text = text
        self.lang = lang
        self.n_chars = len(text)

    @cached_property
    def words(self) -> list[str]:
        """Word tokens (see module docstring): `\\w` runs and symbol runs, punctuation runs dropped."""
        return _WORD.findall(self.text)

    @cached_property
    def per_word(self) -> float:
        """1 / number of words, 0 without words: ratios with an empty denominator are 0."""
        return 1.0 / len(self.words) if self.words else 0.0

    @cached_property
    def vocab(self) -> Counter:
        """Occurrences of each distinct word: most words repeat within a page, so per-word work is
        done per distinct word once and weighted by these counts."""
        return Counter(self.words)

    @cached_property
    def distinct_lengths(self) -> np.ndarray:
        """Characters of each distinct word, in `vocab` order."""
        return np.fromiter(map(len, self.vocab), dtype=np.int64, count=len(self.vocab))

    @cached_property
    def occurrences(self) -> np.ndarray:
        """Occurrences of each distinct word, in `vocab` order."""
        return np.fromiter(self.vocab.values(), dtype=np.int64, count=len(self.vocab))

    @cached_property
    def word_ids(self) -> np.ndarray:
        """Each word position as the index of its distinct word in `vocab` order."""
        index = {w: i for i, w in enumerate(self.vocab)}
        return np.fromiter(map(index.__getitem__, self.words), dtype=np.int64, count=len(self.words))

    @cached_property
    def lines(self) -> list[str]:
        """Non-empty lines, whitespace-stripped."""
        return [line for line in (raw.strip() for raw in self.text.split("\n")) if line]

    @cached_property
    def per_line(self) -> float:
        """1 / number of lines, 0 without lines."""
        return 1.0 / len(self.lines) if self.lines else 0.0

    @cached_property
    def line_duplicates(self) -> tuple[int, int]:
        """(lines equal to an earlier line, their characters)."""
        return duplicate_stats(self.lines)

    @cached_property
    def paragraphs(self) -> list[str]:
        """Non-empty paragraphs, whitespace-stripped."""
        return [p for p in (raw.strip() for raw in _PARAGRAPH_BREAK.split(self.text)) if p]
