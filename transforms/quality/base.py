"""What a quality rule set is made of: rules, a thresholds model, and the `RuleSet` record a module exports.

A rule set module (one file in this package) defines its signal names, a `compute(view)` function
over the shared `TextView`, a pydantic thresholds model (published defaults, with the citation)
whose `rules()` turns thresholds into `Rule` rows, and exports them as `RULE_SET`. The registry
(`registry.py`) finds every such module; nothing else needs editing.

As NeMo Curator separates `score_document` from `keep_document` and Dolma stores tags beside the
text, signals are measured once and stored; thresholds decide later, so a new threshold needs no
re-scoring.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, ClassVar, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from replaymill.transforms.quality.text_view import TextView

Comparison = Literal["ge", "gt", "le", "lt"]  # the document passes when `signal <op> threshold`
SCORE_SHARPNESS = 10.0


class Rule(NamedTuple):
    """One threshold test: passes when `signals[signal] <op> threshold`; reason `<rule set>:<signal>`."""

    signal: str
    op: Comparison
    threshold: float


def passes(value: float, rule: Rule) -> bool:
    """Whether `value` is on the passing side of `rule`."""
    if rule.op == "ge":
        return value >= rule.threshold
    if rule.op == "gt":
        return value > rule.threshold
    if rule.op == "le":
        return value <= rule.threshold
    return value < rule.threshold


def rule_score(value: float, rule: Rule) -> float:
    """Soft pass of one rule in (0, 1): 0.5 at the threshold, sigmoid of the margin relative to it.

    margin = (value - t)/|t| for lower bounds, (t - value)/|t| for upper bounds, so being 10% of
    the threshold on the good side gives 0.73 and a full threshold's width gives 0.99995.
    """
    scale = abs(rule.threshold) or 1.0
    margin = (value - rule.threshold) / scale if rule.op in ("ge", "gt") else (rule.threshold - value) / scale
    return 0.5 * (1.0 + math.tanh(0.5 * SCORE_SHARPNESS * max(-10.0, min(10.0, margin))))


class Thresholds(BaseModel):
    """A rule set's recipe section: `enabled` plus one field per threshold (published defaults).

    A threshold set to null in YAML disables that one rule. Subclasses list their rules in `TABLE`
    as (field holding the threshold, signal it bounds, comparison), or override `rules()`.
    """

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False

    TABLE: ClassVar[tuple[tuple[str, str, Comparison], ...]] = ()

    def rules(self) -> list[Rule]:
        """The active rules of this set, in the order they are checked."""
        return [
            Rule(signal, op, float(getattr(self, field)))
            for field, signal, op in self.TABLE
            if getattr(self, field) is not None
        ]


@dataclass(frozen=True)
class RuleSet:
    """One registered rule set, as its module exports it (`RULE_SET = RuleSet(...)`).

    name:       the recipe key under `quality:` and the prefix of its reject reasons (`name:signal`)
    signals:    the signal names `compute` returns, in this order (they become Arrow struct fields)
    compute:    TextView -> {signal: float}, finite, ratios with an empty denominator 0
    thresholds: the pydantic thresholds model (defaults as published)
    citation:   where the rules and defaults come from
    order:      position among rule sets (signal order in the schema, checking order)
    in_score:   whether its default rules count in the 0-1 `quality` score; adding a scored set
                changes what `quality` means for new builds, so sets for one language or one
                experiment usually stay out
    """

    name: str
    signals: tuple[str, ...]
    compute: Callable[[TextView], dict[str, float]]
    thresholds: type[Thresholds]
    citation: str
    order: int = 100
    in_score: bool = True

    def score_rules(self) -> list[Rule]:
        """The rules this set adds to the `quality` score: its published defaults, when scored."""
        return self.thresholds().rules() if self.in_score else []
