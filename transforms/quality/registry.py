"""The rule-set registry: every module of this package that exports `RULE_SET`, and what derives from it.

Discovery is by file: a new module here with a `RULE_SET = RuleSet(...)` is a new recipe key under
`quality:` (schemas.filters.QualityConfig), new fields of the Arrow `signals` struct
(schemas.document), and, when `in_score`, new terms of the `quality` score. Rule sets are ordered
by (`order`, name); that order is the signal order in the schema and the order rules are checked
in, so the first failing rule names the reject reason deterministically. A registry that does not
hold together (two sets with one name or one signal, a rule on a signal its set does not compute)
fails at import, before any data is read.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import numpy as np

from replaymill.transforms.quality.base import Rule, RuleSet, passes, rule_score
from replaymill.transforms.quality.text_view import TextView

_NOT_RULE_SETS = frozenset({"base", "registry", "text_view"})
RESERVED_NAMES = frozenset({"min_chars", "max_chars"})  # QualityConfig's own fields


def discover(package: str = __package__) -> tuple[RuleSet, ...]:
    """The `RULE_SET` of every module in `package` (modules without one are helpers), validated, in order."""
    found: list[RuleSet] = []
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if info.name.startswith("_") or info.name in _NOT_RULE_SETS:
            continue
        rule_set = getattr(importlib.import_module(f"{package}.{info.name}"), "RULE_SET", None)
        if isinstance(rule_set, RuleSet):
            found.append(rule_set)
    found.sort(key=lambda r: (r.order, r.name))
    validate(found)
    return tuple(found)


def validate(rule_sets: list[RuleSet]) -> None:
    """Raise ValueError naming the first inconsistency between rule sets."""
    names: set[str] = set()
    owner: dict[str, str] = {}
    for rs in rule_sets:
        if not rs.name.isidentifier() or rs.name in RESERVED_NAMES or rs.name in names:
            raise ValueError(f"quality rule set name {rs.name!r} is not a free identifier")
        names.add(rs.name)
        for signal in rs.signals:
            if signal in owner:
                raise ValueError(f"signal {signal!r} is computed by both {owner[signal]} and {rs.name}")
            owner[signal] = rs.name
        foreign = [r.signal for r in rs.thresholds().rules() if r.signal not in rs.signals]
        if foreign:
            raise ValueError(f"rule set {rs.name} has rules on signals it does not compute: {foreign}")


RULE_SETS: tuple[RuleSet, ...] = discover()
RULE_SET_NAMES: tuple[str, ...] = tuple(rs.name for rs in RULE_SETS)
SIGNAL_NAMES: tuple[str, ...] = tuple(signal for rs in RULE_SETS for signal in rs.signals)
# The score uses every scored set's published defaults, whatever the recipe enables, so `quality`
# means the same thing in every shard set built with the same registry.
SCORE_RULES: tuple[Rule, ...] = tuple(rule for rs in RULE_SETS for rule in rs.score_rules())
_COMPUTES = tuple(rs.compute for rs in RULE_SETS)


def compute_signals(text: str, lang: str | None = None) -> dict[str, float]:
    """Every signal in SIGNAL_NAMES (in that order) for one text, over one shared `TextView`."""
    view = TextView(text, lang)
    signals: dict[str, float] = {}
    for compute in _COMPUTES:
        signals.update(compute(view))
    return signals


def check_rules(signals: dict[str, float], config: Any) -> str | None:
    """The first failing rule of `config`'s enabled rule sets as `<rule set>:<signal>`, or None.

    `config` is a `schemas.filters.QualityConfig` (typed loosely: schemas builds it from this registry).
    """
    for rule_set, rule in config.enabled_rules():
        if not passes(signals[rule.signal], rule):
            return f"{rule_set}:{rule.signal}"
    return None


def quality_score(signals: dict[str, float]) -> float:
    """Soft fraction of the published rules a document passes (every scored set, default thresholds).

    The mean of `rule_score` over SCORE_RULES (30 with the four published sets): 1.0 when every
    signal is well inside its bound, each clearly failed rule costs about 1/30, and the score
    never decreases when a one-sided signal moves toward its good side (monotone); for the two
    banded signals (word count 50-100k, mean word length 3-10) it peaks inside the band.
    Independent of which rule sets a recipe enables.
    """
    return float(np.mean([rule_score(signals[r.signal], r) for r in SCORE_RULES]))
