"""FineWeb's own quality filter (Penedo et al. 2024, arXiv 2406.17557; datatrove FineWebQualityFilter).

Definitions: lines as in `text_view`; lines ending in . ' " ! ? (and the CJK 。！？), lines of
at most 30 characters, characters in duplicate lines over characters without newlines, and line
breaks per word.
"""
from __future__ import annotations

from replaymill.transforms.quality.base import RuleSet, Thresholds
from replaymill.transforms.quality.text_view import TextView

FINEWEB_STOP_CHARS = (".", "'", '"', "!", "?", "。", "！", "？")
FINEWEB_SHORT_LINE = 30

SIGNALS: tuple[str, ...] = (
    "line_punct_ratio",
    "short_line_ratio",
    "char_dup_ratio",
    "list_ratio",
)


def compute(view: TextView) -> dict[str, float]:
    """Punctuated and short line fractions, duplicate-line characters, line breaks per word."""
    lines, per_line = view.lines, view.per_line
    chars_without_newlines = view.n_chars - view.text.count("\n")
    _, dup_line_chars = view.line_duplicates
    return {
        "line_punct_ratio": sum(line.endswith(FINEWEB_STOP_CHARS) for line in lines) * per_line,
        "short_line_ratio": sum(len(line) <= FINEWEB_SHORT_LINE for line in lines) * per_line,
        "char_dup_ratio": dup_line_chars / chars_without_newlines if chars_without_newlines else 0.0,
        "list_ratio": max(len(lines) - 1, 0) * view.per_word,
    }


class FineWebRules(Thresholds):
    """FineWeb quality filter thresholds (defaults as in datatrove's FineWebQualityFilter)."""

    min_line_punct_ratio: float | None = 0.12   # drop when <= (strict pass: >)
    max_short_line_ratio: float | None = 0.67   # drop when >= (strict pass: <)
    max_char_dup_ratio: float | None = 0.01     # drop when >=
    max_list_ratio: float | None = 0.3          # drop when >

    TABLE = (
        ("min_line_punct_ratio", "line_punct_ratio", "gt"),
        ("max_short_line_ratio", "short_line_ratio", "lt"),
        ("max_char_dup_ratio", "char_dup_ratio", "lt"),
        ("max_list_ratio", "list_ratio", "le"),
    )


RULE_SET = RuleSet(
    name="fineweb",
    signals=SIGNALS,
    compute=compute,
    thresholds=FineWebRules,
    citation="Penedo et al. 2024, The FineWeb Datasets (arXiv 2406.17557), section 3.3; "
             "datatrove FineWebQualityFilter",
    order=40,
)
