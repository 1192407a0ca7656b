"""The build recipe: YAML validated by pydantic. CLI flags override fields after loading."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from replaymill.schemas.decontam import DecontaminateConfig
from replaymill.schemas.dedup import ExactDedupConfig, NearDedupConfig
from replaymill.schemas.filters import QualityConfig
from replaymill.schemas.langid import LangIdConfig
from replaymill.schemas.yaml_file import load_yaml_file


class OutputConfig(BaseModel):
    """Shard layout: size bound per shard, the smallest partition worth its own directory, and
    whether rejected documents are written to `_rejects/`.

    `min_partition_bytes`: within a domain, languages with less raw text than this are pooled in
    one `lang=other` partition (when at least two are that small; the domain's largest language
    always keeps its own), so a multilingual build does not scatter dozens of one-row shards. Rows
    keep their real `lang` column; the manifest lists the pooled languages. 0 turns pooling off.
    """

    model_config = ConfigDict(extra="forbid")
    max_shard_bytes: int = Field(256 * 1024 * 1024, gt=0)
    min_partition_bytes: int = Field(1024 * 1024, ge=0)
    write_rejects: bool = False


class Recipe(BaseModel):
    """Everything a build needs besides input and output paths."""

    model_config = ConfigDict(extra="forbid")
    name: str = "default"
    description: str = ""
    langid: LangIdConfig = Field(default_factory=LangIdConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    decontaminate: DecontaminateConfig = Field(default_factory=DecontaminateConfig)
    exact_dedup: ExactDedupConfig = Field(default_factory=ExactDedupConfig)
    near_dedup: NearDedupConfig = Field(default_factory=NearDedupConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)


# Built-in recipes ship as package data of `pipeline` (a sibling package, in a clone and when installed).
BUILTIN_DIR = Path(__file__).resolve().parents[1] / "pipeline" / "recipes"


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe YAML; pydantic's error names the offending field, and a file that
    is not safe, valid UTF-8 YAML is a one-line ValueError (`schemas.yaml_file`)."""
    return Recipe.model_validate(load_yaml_file(path, "recipe") or {})


def builtin_recipes() -> list[str]:
    """Names of the recipes that ship with replaymill (`pipeline/recipes/<name>.yaml`)."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def resolve_recipe(name_or_path: str) -> Recipe:
    """A built-in recipe by name (e.g. `fineweb-en`) or any recipe YAML by path."""
    builtin = BUILTIN_DIR / f"{name_or_path}.yaml"
    if builtin.is_file():
        return load_recipe(builtin)
    if Path(name_or_path).is_file():
        return load_recipe(name_or_path)
    raise FileNotFoundError(
        f"no recipe {name_or_path!r}: not a file and not a built-in ({', '.join(builtin_recipes())})"
    )
