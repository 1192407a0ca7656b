"""Gopher quality filter (Rae et al. 2021, arXiv 2112.11446, appendix A.1.1).

Definitions: words as in `text_view`; "alphabetic" means holding a letter (Unicode class L); stop
words are Gopher's eight for English (and unknown languages), matched case-insensitively, and the
document language's list otherwise (`quality.languages`: stopwords-iso or a recipe's file); bullet lines start with one of
• ‣ ⁃ ◦ ● ○ ▪ ▫ ■ □ ∙ - *; ellipsis lines end with ... or …. The word rules are for
space-delimited languages, as in the paper.
"""
from __future__ import annotations

import itertools

import regex

from replaymill.transforms.quality.base import RuleSet, Thresholds
from replaymill.transforms.quality.languages import count_stop_words
from replaymill.transforms.quality.text_view import TextView

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})  # Gopher's list
BULLETS = ("•", "‣", "⁃", "◦", "●", "○", "▪", "▫", "■", "□", "∙", "-", "*")
ELLIPSES = ("...", "…")

_NO_LETTER_WORD = regex.compile(r"^[^\p{L}\n]+$", regex.MULTILINE)
# Every upper/lower-case spelling of the stop words: counting them is a few dict lookups per page.
_STOP_WORD_CASINGS = frozenset(
    "".join(chars) for w in STOP_WORDS for chars in itertools.product(*((c, c.upper()) for c in w)))

SIGNALS: tuple[str, ...] = (
    "n_words",
    "mean_word_length",
    "hash_word_ratio",
    "ellipsis_word_ratio",
    "bullet_line_frac",
    "ellipsis_line_frac",
    "alpha_word_frac",
    "stop_words",
)


def compute(view: TextView) -> dict[str, float]:
    """Word counts and shapes, bullet and ellipsis lines, alphabetic words and stop words."""
    text, vocab, n_words, per_word = view.text, view.vocab, len(view.words), view.per_word
    # Words without a letter, found in one regex pass over the distinct words (they hold no newline).
    non_alpha = sum(vocab[w] for w in _NO_LETTER_WORD.findall("\n".join(vocab)))
    lines, per_line = view.lines, view.per_line
    return {
        "n_words": float(n_words),
        "mean_word_length": float(view.occurrences @ view.distinct_lengths) * per_word,
        "hash_word_ratio": text.count("#") * per_word,
        "ellipsis_word_ratio": (text.count("...") + text.count("…")) * per_word,
        "bullet_line_frac": sum(line.startswith(BULLETS) for line in lines) * per_line,
        "ellipsis_line_frac": sum(line.endswith(ELLIPSES) for line in lines) * per_line,
        "alpha_word_frac": (n_words - non_alpha) * per_word,
        "stop_words": float(sum(vocab.get(w, 0) for w in _STOP_WORD_CASINGS) if view.stop_words is None
                            else count_stop_words(vocab, view.stop_words)),
    }


class GopherQualityRules(Thresholds):
    """Gopher quality filter thresholds (Rae et al. 2021, A.1.1)."""

    min_words: int | None = 50
    max_words: int | None = 100_000
    min_mean_word_length: float | None = 3.0
    max_mean_word_length: float | None = 10.0
    max_hash_word_ratio: float | None = 0.1
    max_ellipsis_word_ratio: float | None = 0.1
    max_bullet_line_frac: float | None = 0.9
    max_ellipsis_line_frac: float | None = 0.3
    min_alpha_word_frac: float | None = 0.8
    min_stop_words: int | None = 2

    TABLE = (
        ("min_words", "n_words", "ge"),
        ("max_words", "n_words", "le"),
        ("min_mean_word_length", "mean_word_length", "ge"),
        ("max_mean_word_length", "mean_word_length", "le"),
        ("max_hash_word_ratio", "hash_word_ratio", "le"),
        ("max_ellipsis_word_ratio", "ellipsis_word_ratio", "le"),
        ("max_bullet_line_frac", "bullet_line_frac", "le"),
        ("max_ellipsis_line_frac", "ellipsis_line_frac", "le"),
        ("min_alpha_word_frac", "alpha_word_frac", "ge"),
        ("min_stop_words", "stop_words", "ge"),
    )


RULE_SET = RuleSet(
    name="gopher_quality",
    signals=SIGNALS,
    compute=compute,
    thresholds=GopherQualityRules,
    citation="Rae et al. 2021, Scaling Language Models: Methods, Analysis & Insights from Training Gopher "
             "(arXiv 2112.11446), appendix A.1.1",
    order=10,
)
