"""Names of the quality signals stored on every document (the `signals` struct column).

Computed once by `transforms.quality`, stored beside the text (as Dolma stores tags), so a new
threshold needs no re-run of the taggers. The Arrow schema is built from this tuple; adding a
signal here adds a column field. Every value is a float32 (counts and booleans included).
"""
from __future__ import annotations

SIGNAL_NAMES: tuple[str, ...] = (
    "n_words",
    "mean_word_length",
)
