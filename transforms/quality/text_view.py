"""The shared views of one text (computed once per document) that every quality rule set reads.

Rule sets never split a text themselves: they read words, lines or paragraphs from the `TextView`,
computed once per document, so four rule sets that all look at lines cost one split, as when every
signal was computed in one function.

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
    """One document's text and the views of it that rule sets read, computed once per document.

    Every built-in rule set reads words, lines and paragraphs, so they are computed up front, in
    one place, exactly as when all signals were one function (plain attributes: no per-access
    cost). `lang` is the document's language code when known (language ID runs before the
    quality signals), so a rule set may choose per-language resources; None when unknown. A rule
    set that needs another view computes it from `text` in its own module.

    words             word tokens (see module docstring): `\\w` runs and symbol runs
    per_word          1 / number of words, 0 without words (ratios with an empty denominator are 0)
    vocab             occurrences of each distinct word: per-word work is done per distinct word
                      once and weighted by these counts (most words repeat within a page)
    occurrences       numpy: occurrences of each distinct word, in `vocab` order
    distinct_lengths  numpy: characters of each distinct word, in `vocab` order
    word_ids          numpy: each word position as the index of its distinct word
    lines, per_line   non-empty whitespace-stripped lines; 1 / their number (0 without lines)
    line_duplicates   (lines equal to an earlier line, their characters)
    paragraphs        non-empty whitespace-stripped paragraphs
    stop_words        the stop words of `lang` (lowercase; `quality.languages`), None for English,
                      unknown languages and languages without a list (Gopher's English rule)
    """

    __slots__ = ("text", "lang", "stop_words", "n_chars", "words", "per_word", "vocab", "occurrences", "distinct_lengths",
                 "word_ids", "lines", "per_line", "line_duplicates", "paragraphs")

    def __init__(self, text: str, lang: str | None = None, stop_words: frozenset[str] | None = None):
        self.text = text
        self.lang = lang
        self.stop_words = stop_words
        self.n_chars = len(text)
        words = _WORD.findall(text)
        n_words = len(words)
        self.words = words
        self.per_word = 1.0 / n_words if n_words else 0.0
        vocab = Counter(words)
        self.vocab = vocab
        self.occurrences = np.fromiter(vocab.values(), dtype=np.int64, count=len(vocab))
        self.distinct_lengths = np.fromiter(map(len, vocab), dtype=np.int64, count=len(vocab))
        index = {w: i for i, w in enumerate(vocab)}
        self.word_ids = np.fromiter(map(index.__getitem__, words), dtype=np.int64, count=n_words)
        lines = [line for line in (raw.strip() for raw in text.split("\n")) if line]
        self.lines = lines
        self.per_line = 1.0 / len(lines) if lines else 0.0
        self.line_duplicates = duplicate_stats(lines)
        self.paragraphs = [p for p in (raw.strip() for raw in _PARAGRAPH_BREAK.split(text)) if p]
