"""Settings of exact and near deduplication, as small pydantic models inside a recipe."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ExactDedupConfig(BaseModel):
    """Exact dedup: one representative (smallest id) per hash of normalized text."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True


class NearDedupConfig(BaseModel):
    """MinHash LSH near dedup (defaults as FineWeb: word 5-grams, 14 bands x 8 rows)."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    ngram: int = 5
    bands: int = 14
    rows: int = 8
    seed: int = 1
