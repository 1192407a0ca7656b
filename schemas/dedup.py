"""Settings of exact and near deduplication, as small pydantic models inside a recipe."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ExactDedupConfig(BaseModel):
    """Exact dedup: one representative (smallest id) per hash of normalized text."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True


class NearDedupConfig(BaseModel):
    """MinHash LSH near dedup (defaults as FineWeb: word 5-grams, 14 bands x 8 rows, threshold ~0.72).

    Banding is given either as `bands` and `rows`, or as a target Jaccard `threshold`, from which
    (bands, rows) with bands*rows <= `num_perm` are chosen to minimize the false-positive plus
    false-negative area of the S-curve (datasketch's rule). With neither, 14 x 8 is used.
    Signatures have `bands * rows` permutations.
    """

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    ngram: int = Field(5, ge=1, le=16, description="words per shingle")
    bands: int | None = Field(None, ge=1)
    rows: int | None = Field(None, ge=1)
    threshold: float | None = Field(None, gt=0.0, lt=1.0, description="target Jaccard; chooses bands x rows")
    num_perm: int = Field(112, ge=2, le=4096, description="permutation budget when choosing from `threshold`")
    seed: int = Field(1, ge=0, lt=2**32, description="permutation seed (as datasketch's MinHash seed)")
    verify_jaccard: float | None = Field(
        None, gt=0.0, le=1.0, description="keep only candidate pairs whose exact shingle Jaccard reaches this"
    )
    verify_max_bucket: int = Field(
        32, ge=2, description="buckets up to this size verify all pairs; larger ones only star edges"
    )
    max_rounds: int = Field(10, ge=0, le=64, description="large-star/small-star rounds unrolled in the graph")
    max_fallback_edges: int = Field(
        2_000_000, ge=0, description="single-worker union-find guard if the rounds did not converge"
    )
    batch_size: int = Field(256, ge=1, description="documents per vectorized signature batch (upper bound)")

    @model_validator(mode="after")
    def _one_banding(self) -> NearDedupConfig:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("near_dedup: give both `bands` and `rows`, or neither")
        if self.threshold is not None and self.bands is not None:
            raise ValueError("near_dedup: give either `threshold` or `bands`/`rows`, not both")
        return self

    def banding(self) -> tuple[int, int]:
        """The (bands, rows) this config means; `threshold` is resolved by transforms.lsh.optimal_params."""
        if self.bands is not None and self.rows is not None:
            return self.bands, self.rows
        if self.threshold is not None:
            from replaymill.transforms.lsh import optimal_params  # numpy only; keeps schemas import-light

            return optimal_params(self.threshold, self.num_perm)
        return 14, 8
