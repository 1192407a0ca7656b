"""Quality signals (computed once per document), rule checks and a single 0-1 quality score.

As NeMo Curator separates `score_document` from `keep_document` and Dolma stores tags beside the
text, `compute_signals` measures everything the Gopher, C4 and FineWeb rules look at, and
`check_rules` decides with the recipe's thresholds later; a new threshold needs no re-scoring.

Definitions (where the papers leave room, the choice is stated here):
- Words: Unicode word runs (with inner apostrophes; combining marks included, so Indic words stay
  whole) and runs of punctuation that hold a symbol (`|`, `©`, `+`; Unicode class S); runs of
  pure punctuation are not words. "Alphabetic" means holding a letter (class L). Stop words are
  Gopher's eight, matched case-insensitively. Scripts without spaces give few long "words", so
  the Gopher word rules are for space-delimited languages, as in the paper.
- Bullet lines start with one of • ‣ ⁃ ◦ ● ○ ▪ ▫ ■ □ ∙ - *; ellipsis lines end with ... or …
- Lines: non-empty lines (whitespace-stripped); blank lines between paragraphs are layout, not
  content, so they neither dilute line fractions nor count as duplicate lines.
- Paragraphs: blocks separated by two or more newlines.
- Repeated n-grams (Gopher): over words; the top n-gram fraction is (occurrences x characters)
  of the most frequent n-gram (ties: the longest), counted only if it occurs at least twice; the duplicate n-gram fraction counts each character once, covering every word
  inside an n-gram that already occurred earlier in the document. Characters are word characters
  plus the single spaces joining covered words, over all characters of the text.
- C4 sentence count: sentence ends (. ! ? ... followed by space or end of line) in lines C4 would
  keep (terminal punctuation, at least 3 words, no "javascript", no cookie/terms policy, no word over
  1000 characters, citations like [1] removed first); lorem ipsum and `{` are searched in those
  same lines, as the TFDS reference code does.
- FineWeb: lines ending in . ' " ! ? (and the CJK 。！？), lines of at most 30 characters, characters
  in duplicate lines over characters without newlines, and line breaks per word.
"""
from __future__ import annotations

import itertools
import math
import re
from collections import Counter

import numpy as np
import regex

from replaymill.schemas.filters import (
    C4Rules,
    FineWebRules,
    GopherQualityRules,
    GopherRepetitionRules,
    QualityConfig,
    Rule,
)
from replaymill.schemas.signals import SIGNAL_NAMES

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})  # Gopher's list
BULLETS = ("•", "‣", "⁃", "◦", "●", "○", "▪", "▫", "■", "□", "∙", "-", "*")
ELLIPSES = ("...", "…")
C4_END_PUNCT = (".", "?", "!", '"', "'")
C4_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
FINEWEB_STOP_CHARS = (".", "'", '"', "!", "?", "。", "！", "？")
FINEWEB_SHORT_LINE = 30
C4_MAX_WORD_LENGTH = 1000
C4_MIN_WORDS_PER_LINE = 3

# Words: Unicode word runs (the `regex` module's \w keeps combining marks, so Devanagari or Thai
# words are not cut at vowel signs), or a punctuation run holding a symbol. The lookbehind starts
# a symbol-run match only at the start of a run, so long "-----" lines cost linear time.
_WORD = regex.compile(r"\w+(?:['’]\w+)*|(?<![^\w\s])[^\w\s]*?\p{S}[^\w\s]*")
_NO_LETTER_WORD = regex.compile(r"^[^\p{L}\n]+$", regex.MULTILINE)
# Every upper/lower-case spelling of the stop words: counting them is a few dict lookups per page.
_STOP_WORD_CASINGS = frozenset(
    "".join(chars) for w in STOP_WORDS for chars in itertools.product(*((c, c.upper()) for c in w)))
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_C4_POLICY = re.compile("|".join(map(re.escape, C4_POLICY)))
_CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")
_SENTENCE_END = re.compile(r"(?:[.!?]+|…)['\"”’)\]]*(?=\s|$)")
_HASH_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier for rolling n-gram ids (wrapping arithmetic)

TOP_NGRAMS = (2, 3, 4)
DUP_NGRAMS = tuple(range(5, 11))

# The score treats every published rule with its default threshold, whatever the recipe enables,
# so `quality` means the same thing in every shard set.
_SCORE_RULES: tuple[Rule, ...] = tuple(
    rule
    for rules in (GopherQualityRules(), GopherRepetitionRules(), C4Rules(), FineWebRules())
    for rule in rules.rules()
)
SCORE_SHARPNESS = 10.0


def _words(text: str) -> list[str]:
    """Word tokens (see module docstring): `\\w` runs and symbol runs, punctuation runs dropped."""
    return _WORD.findall(text)


def _dup_stats(items: list[str]) -> tuple[int, int]:
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


def _ngram_fractions(ids: np.ndarray, counts: np.ndarray, lengths: np.ndarray, n_chars: int) -> dict[str, float]:
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


def _c4_signals(lines: list[str]) -> dict[str, float]:
    """C4's page-level facts over the non-empty stripped lines (see module docstring)."""
    javascript = policy = no_terminal = sentences = 0
    lorem = curly = 0.0
    for line in lines:
        lower = line.lower()
        has_js = "javascript" in lower
        has_policy = _C4_POLICY.search(lower) is not None
        javascript += has_js
        policy += has_policy
        if len(line) > C4_MAX_WORD_LENGTH and max(map(len, line.split())) > C4_MAX_WORD_LENGTH:
            continue
        words = len(line.split())
        line = _CITATION.sub("", line).rstrip()
        if not line.endswith(C4_END_PUNCT) or line.endswith("..."):
            no_terminal += 1
            continue
        if words < C4_MIN_WORDS_PER_LINE:
            continue
        if "lorem ipsum" in lower:
            lorem = 1.0
        if has_js:
            continue
        if "{" in line:
            curly = 1.0
        if has_policy:
            continue
        sentences += max(1, len(_SENTENCE_END.findall(line)))
    n = max(len(lines), 1)
    return {
        "lorem_ipsum": lorem,
        "curly_brace": curly,
        "javascript_line_frac": javascript / n,
        "policy_line_frac": policy / n,
        "no_terminal_punct_line_frac": no_terminal / n,
        "sentences": float(sentences),
    }


def compute_signals(text: str) -> dict[str, float]:
    """Every signal in SIGNAL_NAMES for one text; finite floats, ratios with an empty denominator are 0."""
    n_chars = len(text)
    words = _words(text)
    n_words = len(words)
    # Per distinct word once, then weighted by occurrences: most words repeat within a page.
    vocab = Counter(words)
    distinct = list(vocab)
    occurrences = np.fromiter(vocab.values(), dtype=np.int64, count=len(distinct))
    index = {w: i for i, w in enumerate(distinct)}
    ids = np.fromiter(map(index.__getitem__, words), dtype=np.int64, count=n_words)
    distinct_lengths = np.fromiter(map(len, distinct), dtype=np.int64, count=len(distinct))
    # Words without a letter, found in one regex pass over the distinct words (they hold no newline).
    non_alpha = sum(vocab[w] for w in _NO_LETTER_WORD.findall("\n".join(distinct)))
    per_word = 1.0 / n_words if n_words else 0.0
    lines = [line.strip() for line in text.split("\n")]
    lines = [line for line in lines if line]
    n_lines = len(lines)
    per_line = 1.0 / n_lines if n_lines else 0.0
    paragraphs = [p.strip() for p in _PARAGRAPH_BREAK.split(text)]
    paragraphs = [p for p in paragraphs if p]
    per_char = 1.0 / n_chars if n_chars else 0.0

    dup_lines, dup_line_chars = _dup_stats(lines)
    dup_paras, dup_para_chars = _dup_stats(paragraphs)
    chars_without_newlines = n_chars - text.count("\n")

    signals = {
        # Gopher quality
        "n_words": float(n_words),
        "mean_word_length": float(occurrences @ distinct_lengths) * per_word,
        "hash_word_ratio": text.count("#") * per_word,
        "ellipsis_word_ratio": (text.count("...") + text.count("…")) * per_word,
        "bullet_line_frac": sum(line.startswith(BULLETS) for line in lines) * per_line,
        "ellipsis_line_frac": sum(line.endswith(ELLIPSES) for line in lines) * per_line,
        "alpha_word_frac": (n_words - non_alpha) * per_word,
        "stop_words": float(sum(vocab.get(w, 0) for w in _STOP_WORD_CASINGS)),
        # Gopher repetition
        "dup_line_frac": dup_lines * per_line,
        "dup_line_char_frac": dup_line_chars * per_char,
        "dup_para_frac": dup_paras / len(paragraphs) if paragraphs else 0.0,
        "dup_para_char_frac": dup_para_chars * per_char,
        **_ngram_fractions(ids, occurrences[ids], distinct_lengths[ids], n_chars),
        # C4
        **_c4_signals(lines),
        # FineWeb
        "line_punct_ratio": sum(line.endswith(FINEWEB_STOP_CHARS) for line in lines) * per_line,
        "short_line_ratio": sum(len(line) <= FINEWEB_SHORT_LINE for line in lines) * per_line,
        "char_dup_ratio": dup_line_chars / chars_without_newlines if chars_without_newlines else 0.0,
        "list_ratio": max(n_lines - 1, 0) * per_word,
    }
    return {name: float(signals[name]) for name in SIGNAL_NAMES}


def _passes(value: float, rule: Rule) -> bool:
    if rule.op == "ge":
        return value >= rule.threshold
    if rule.op == "gt":
        return value > rule.threshold
    if rule.op == "le":
        return value <= rule.threshold
    return value < rule.threshold


def check_rules(signals: dict[str, float], config: QualityConfig) -> str | None:
    """The first failing rule of the enabled rule sets as `<rule set>:<signal>`, or None if all pass."""
    for rule_set, rule in config.enabled_rules():
        if not _passes(signals[rule.signal], rule):
            return f"{rule_set}:{rule.signal}"
    return None


def rule_score(value: float, rule: Rule) -> float:
    """Soft pass of one rule in (0, 1): 0.5 at the threshold, sigmoid of the margin relative to it.

    margin = (value - t)/|t| for lower bounds, (t - value)/|t| for upper bounds, so being 10% of
    the threshold on the good side gives 0.73 and a full threshold's width gives 0.99995.
    """
    scale = abs(rule.threshold) or 1.0
    margin = (value - rule.threshold) / scale if rule.op in ("ge", "gt") else (rule.threshold - value) / scale
    return 0.5 * (1.0 + math.tanh(0.5 * SCORE_SHARPNESS * max(-10.0, min(10.0, margin))))


def quality_score(signals: dict[str, float]) -> float:
    """Soft fraction of the published rules a document passes (all 4 rule sets, default thresholds).

    The mean of `rule_score` over the 30 default rules: 1.0 when every signal is well inside its
    bound, each clearly failed rule costs about 1/30, and the score never decreases when a
    one-sided signal moves toward its good side (monotone); for the two banded signals (word count
    50-100k, mean word length 3-10) it peaks inside the band. Independent of which rule sets a recipe enables.
    """
    return float(np.mean([rule_score(signals[r.signal], r) for r in _SCORE_RULES]))

