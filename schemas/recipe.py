"""The build recipe: YAML validated by pydantic. CLI flags override fields after loading."""
from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from schemas.dedup import ExactDedupConfig, NearDedupConfig
from schemas.filters import LangIdConfig, QualityConfig


class OutputConfig(BaseModel):
    """Shard layout: size bound per shard and whether rejected documents are written to `_rejects/`."""

    model_config = ConfigDict(extra="forbid")
    max_shard_bytes: int = 256 * 1024 * 1024
    write_rejects: bool = False


class Recipe(BaseModel):
    """Everything a build needs besides input and output paths."""

    model_config = ConfigDict(extra="forbid")
    name: str = "default"
    description: str = ""
    langid: LangIdConfig = Field(default_factory=LangIdConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    exact_dedup: ExactDedupConfig = Field(default_factory=ExactDedupConfig)
    near_dedup: NearDedupConfig = Field(default_factory=NearDedupConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe YAML; pydantic's error names the offending field."""
    with open(path, encoding="utf-8") as f:
        return Recipe.model_validate(yaml.safe_load(f) or {})
