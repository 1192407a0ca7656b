"""Quality rule sets: signals computed once per document, rule checks, and one 0-1 quality score.

One module per rule set (`gopher_quality`, `gopher_repetition`, `c4`, `fineweb`, ...), each holding
its signals, its compute function over the shared `TextView`, its thresholds model with the
citation, and whether it counts in `quality`; `registry` finds them. Adding a rule set is one file
here plus its test (docs/annotate.md walks through one).
"""
from __future__ import annotations

from replaymill.transforms.quality.base import Rule, RuleSet, Thresholds, rule_score
from replaymill.transforms.quality.registry import (
    RULE_SET_NAMES,
    RULE_SETS,
    SIGNAL_NAMES,
    check_rules,
    compute_signals,
    first_failing,
    quality_score,
)
from replaymill.transforms.quality.text_view import TextView

__all__ = [
    "RULE_SETS",
    "RULE_SET_NAMES",
    "SIGNAL_NAMES",
    "Rule",
    "RuleSet",
    "TextView",
    "Thresholds",
    "check_rules",
    "compute_signals",
    "first_failing",
    "quality_score",
    "rule_score",
]
