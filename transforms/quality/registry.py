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
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import numpy as np

from replaymill.transforms.quality.base import Rule, RuleSet, Thresholds, passes, rule_score
from replaymill.transforms.quality.languages import has_stop_words, stop_words_for, threshold_overrides
from replaymill.transforms.quality.text_view import TextView

_NOT_RULE_SETS = frozenset({"base", "registry", "text_view", "languages"})
RESERVED_NAMES = frozenset({"min_chars", "max_chars", "per_language", "stop_words"})  # QualityConfig's own fields


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


def compute_signals(text: str, lang: str | None = None,
                    stop_word_files: dict[str, frozenset[str]] | None = None) -> dict[str, float]:
    """Every signal in SIGNAL_NAMES (in that order) for one text, over one shared `TextView`;
    word-based signals use `lang`'s stop words (`languages.stop_words_for`)."""
    view = TextView(text, lang, stop_words_for(lang, stop_word_files))
    signals: dict[str, float] = {}
    for compute in _COMPUTES:
        signals.update(compute(view))
    return signals


def language_rules(name: str, thresholds: Thresholds, lang: str | None, per_language: bool = True,
                   stop_word_langs: frozenset[str] = frozenset()) -> list[Rule]:
    """The rules of one rule set for a document in `lang`.

    With `per_language`, FineWeb-2's published values for `lang` replace thresholds the recipe left
    at their defaults (`languages.threshold_overrides`), and the stop-word rule is dropped for a
    language with no stop-word list (it cannot be applied; English keeps Gopher's). Without it,
    the recipe's thresholds as they are (Gopher's English stop words for every language).
    """
    if not per_language:
        return thresholds.rules()
    defaults = type(thresholds)()
    update = {field: value for (rs, field), value in threshold_overrides(lang).items()
              if rs == name and getattr(thresholds, field) == getattr(defaults, field)}
    rules = (thresholds.model_copy(update=update) if update else thresholds).rules()
    if not (lang in stop_word_langs or has_stop_words(lang)):
        rules = [r for r in rules if r.signal != "stop_words"]
    return rules


def check_rules(signals: dict[str, float], config: Any, lang: str | None = None) -> str | None:
    """The first failing rule of `config`'s enabled rule sets (for a document in `lang`) as
    `<rule set>:<signal>`, or None.

    `config` is a `schemas.filters.QualityConfig` (typed loosely: schemas builds it from this registry).
    """
    return first_failing(signals, config.enabled_rules(lang))


def first_failing(signals: dict[str, float], rules: Iterable[tuple[str, Rule]]) -> str | None:
    """The first of `rules` ((rule set, rule) pairs, as `QualityConfig.enabled_rules` gives them)
    that `signals` fail, as `<rule set>:<signal>`, or None. For callers that hold the rules of a
    fixed config per language instead of deriving them per document (`check_rules`)."""
    for rule_set, rule in rules:
        if not passes(signals[rule.signal], rule):
            return f"{rule_set}:{rule.signal}"
    return None


def score_rules(lang: str | None = None) -> tuple[Rule, ...]:
    """The rules of the `quality` score for a document in `lang`: every scored set's published
    defaults, with FineWeb-2's values for `lang` where published (`language_rules`)."""
    return _score_rules(lang if threshold_overrides(lang) or not has_stop_words(lang) else None)


@lru_cache(maxsize=None)
def _score_rules(lang: str | None) -> tuple[Rule, ...]:
    if lang is None:
        return SCORE_RULES
    return tuple(rule for rs in RULE_SETS if rs.in_score for rule in language_rules(rs.name, rs.thresholds(), lang))


def quality_score(signals: dict[str, float], lang: str | None = None) -> float:
    """Soft fraction of the published rules a document passes (every scored set, default thresholds,
    per-language values for `lang` where FineWeb-2 published them, so scores compare across languages).

    The mean of `rule_score` over SCORE_RULES (30 with the four published sets): 1.0 when every
    signal is well inside its bound, each clearly failed rule costs about 1/30, and the score
    never decreases when a one-sided signal moves toward its good side (monotone); for the two
    banded signals (word count 50-100k, mean word length 3-10) it peaks inside the band.
    Independent of which rule sets a recipe enables.
    """
    return float(np.mean([rule_score(signals[r.signal], r) for r in score_rules(lang)]))
