"""Names of the quality signals stored on every document (the `signals` struct column).

Computed once by `transforms.quality.compute_signals`, stored beside the text (as Dolma stores
tags), so a new threshold needs no re-run of the taggers. The Arrow schema is built from this
tuple; adding a signal here adds a struct field. Every value is a float32 (counts and 0/1
indicators included). Definitions are in `transforms.quality`'s docstring; the rules that read
them (and their published thresholds) in `schemas.filters`.
"""
from __future__ import annotations

GOPHER_QUALITY_SIGNALS: tuple[str, ...] = (
    "n_words",
    "mean_word_length",
    "hash_word_ratio",
    "ellipsis_word_ratio",
    "bullet_line_frac",
    "ellipsis_line_frac",
    "alpha_word_frac",
    "stop_words",
)

GOPHER_REPETITION_SIGNALS: tuple[str, ...] = (
    "dup_line_frac",
    "dup_line_char_frac",
    "dup_para_frac",
    "dup_para_char_frac",
    "top_2gram_char_frac",
    "top_3gram_char_frac",
    "top_4gram_char_frac",
    *(f"dup_{n}gram_char_frac" for n in range(5, 11)),
)

C4_SIGNALS: tuple[str, ...] = (
    "lorem_ipsum",
    "curly_brace",
    "javascript_line_frac",
    "policy_line_frac",
    "no_terminal_punct_line_frac",
    "sentences",
)

FINEWEB_SIGNALS: tuple[str, ...] = (
    "line_punct_ratio",
    "short_line_ratio",
    "char_dup_ratio",
    "list_ratio",
)

SIGNAL_NAMES: tuple[str, ...] = GOPHER_QUALITY_SIGNALS + GOPHER_REPETITION_SIGNALS + C4_SIGNALS + FINEWEB_SIGNALS
