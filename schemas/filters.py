"""Settings of language ID and quality filtering, as pydantic models inside a recipe.

`QualityConfig` is derived from the quality rule-set registry (`transforms.quality.registry`):
one field per registered rule set, holding that set's thresholds model (defaults as published,
with an `enabled` switch), plus the length bounds. In a recipe a rule set may be written as a
plain boolean (`fineweb: true`), meaning "enabled with the published thresholds"; a threshold set
to null disables that one rule. The registry is pure Python (numpy, regex, pydantic): importing
it here keeps this package free of Beam and torch.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from replaymill.transforms.quality.base import Rule
from replaymill.transforms.quality.registry import RULE_SET_NAMES, RULE_SETS, language_rules


class _QualityConfigBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _bool_means_enabled(cls, data: Any) -> Any:
        """`fineweb: true` in YAML means the published thresholds, enabled."""
        if isinstance(data, dict):
            return {k: {"enabled": v} if k in RULE_SET_NAMES and isinstance(v, bool) else v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _length_bounds(self) -> Any:
        if self.max_chars < self.min_chars:
            raise ValueError(f"max_chars ({self.max_chars}) is below min_chars ({self.min_chars}): no document could pass")
        return self

    def enabled_rules(self, lang: str | None = None) -> list[tuple[str, Rule]]:
        """(rule set name, rule) of every enabled set for a document in `lang`, in registry
        (checking) order; per-language thresholds and stop words as `registry.language_rules` says."""
        langs = frozenset(self.stop_words)
        return [
            (name, rule)
            for name in RULE_SET_NAMES
            if getattr(self, name).enabled
            for rule in language_rules(name, getattr(self, name), lang, self.per_language, langs)
        ]


QualityConfig = create_model(
    "QualityConfig",
    __base__=_QualityConfigBase,
    __module__=__name__,
    __doc__="""Which quality rule sets drop documents, their thresholds, and the length bounds.

    One field per registered rule set (see `transforms.quality`). Signals are always computed and
    stored, whether or not a rule set is enabled. `min_chars`/`max_chars` bound the text length
    (reasons `too_short`/`too_long`). `per_language` (default on) checks and scores a non-English
    document against its language's stop words and FineWeb-2's published thresholds where they
    exist (`transforms.quality.languages`); `stop_words` maps a language code to a stop-word file
    (one word a line) that replaces stopwords-iso's list for it.
    """,
    **{rs.name: (rs.thresholds, Field(default_factory=rs.thresholds)) for rs in RULE_SETS},
    min_chars=(int, Field(1, ge=0)),
    max_chars=(int, Field(10_000_000, ge=0)),
    per_language=(bool, True),
    stop_words=(dict[str, str], Field(default_factory=dict)),
)
