"""Target mixtures: published pre-training mixtures (presets) and user weights, over our domain taxonomy.

A target is a mapping from a *mixture key* to a normalized weight. A key is a domain name
(`web`) or a domain and a language (`web/en`); the sampler puts a document under `domain/lang`
when that key is in the target, else under `domain`. Presets are data (`schemas/presets/*.yaml`,
each with the paper or data card it comes from), so correcting a number is a data edit, not a
code change.
"""
from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from replaymill.schemas.domains import DOMAINS
from replaymill.schemas.yaml_file import load_yaml_file, validate_file_data

PRESET_PACKAGE = "replaymill.schemas.presets"


def parse_key(key: str) -> tuple[str, str | None]:
    """`"web"` -> ("web", None); `"web/en"` -> ("web", "en"); unknown domains are a ValueError."""
    domain, _, lang = key.partition("/")
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r} in key {key!r}; domains are {', '.join(DOMAINS)}")
    if "/" in key and not lang:
        raise ValueError(f"empty language in key {key!r}; write 'domain' or 'domain/lang'")
    return domain, (lang or None)


def normalize(weights: dict[str, float]) -> dict[str, float]:
    """Weights scaled to sum to 1, zero weights dropped, keys sorted (the sampler's fixed order).
    A NaN or infinite weight has no share to scale to: it is a ValueError naming the key."""
    for k, v in weights.items():
        if not math.isfinite(float(v)):
            raise ValueError(f"weight of {k!r} is {v}: weights must be finite numbers")
    kept = {k: float(v) for k, v in weights.items() if v > 0}
    total = sum(kept.values())
    if total <= 0:
        raise ValueError("a target needs at least one positive weight")
    return {k: kept[k] / total for k in sorted(kept)}


class Component(BaseModel):
    """One source of a published mixture, its weight (percent, tokens or any unit) and our domain."""

    model_config = ConfigDict(extra="forbid")
    name: str
    weight: float = Field(ge=0, allow_inf_nan=False)
    domain: str
    lang: str | None = None

    @field_validator("domain")
    @classmethod
    def _known_domain(cls, v: str) -> str:
        parse_key(v)
        return v


class Mixture(BaseModel):
    """A published mixture with its citation; `target()` maps it onto mixture keys."""

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    citation: str
    by: Literal["tokens", "docs"] = "tokens"
    components: list[Component]

    @property
    def weights(self) -> dict[str, float]:
        """Normalized weights per domain: the target the sampler takes."""
        return self.target()

    def target(self, with_lang: bool = False) -> dict[str, float]:
        """Normalized weights per domain (or per domain/lang where a component names a language)."""
        acc: dict[str, float] = {}
        for c in self.components:
            key = f"{c.domain}/{c.lang}" if with_lang and c.lang else c.domain
            acc[key] = acc.get(key, 0.0) + c.weight
        return normalize(acc)


class UserTarget(BaseModel):
    """A user's weights YAML: `weights: {web: 0.6, code: 0.2, books/de: 0.2}` (+ optional `by`)."""

    model_config = ConfigDict(extra="forbid")
    by: Literal["tokens", "docs"] | None = None
    weights: dict[str, float]

    @model_validator(mode="after")
    def _valid(self) -> "UserTarget":
        for key, w in self.weights.items():
            parse_key(key)
            if not math.isfinite(w):
                raise ValueError(f"weight of {key!r} is {w}: weights must be finite numbers")
            if w < 0:
                raise ValueError(f"negative weight {w} for {key!r}")
        normalize(self.weights)
        return self

    def target(self) -> dict[str, float]:
        return normalize(self.weights)


def preset_names() -> list[str]:
    """Names of the shipped presets (file stems under schemas/presets)."""
    return sorted(p.name[:-5] for p in resources.files(PRESET_PACKAGE).iterdir() if p.name.endswith(".yaml"))


def get_preset(name: str) -> Mixture:
    """A shipped preset by name; unknown names list the available ones."""
    if name not in preset_names():
        raise ValueError(f"unknown preset {name!r}; presets are {', '.join(preset_names())}")
    text = resources.files(PRESET_PACKAGE).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return Mixture.model_validate(yaml.safe_load(text))


def load_user_target(path: str | Path) -> UserTarget:
    """Read and validate a user weights YAML (a bare mapping is accepted as `weights`)."""
    return _user_target(load_yaml_file(path, "weights file") or {}, path)


def _user_target(data: object, path: str | Path) -> UserTarget:
    """The weights YAML's data, already read from `path`, validated as a `UserTarget`."""
    if isinstance(data, dict) and "weights" not in data:
        data = {"weights": data}
    return validate_file_data(UserTarget, data, path, "weights file")


def resolve_target(spec: str) -> tuple[dict[str, float], str | None, str]:
    """`--target` value -> (normalized target, preferred `by` or None, description for the manifest).

    A shipped preset name or a path to a weights YAML (a preset-shaped YAML with `components`
    also works, so users can add their own published mixtures).
    """
    if spec in preset_names():
        mix = get_preset(spec)
        return mix.target(), mix.by, f"preset {mix.name}: {mix.citation}"
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"--target {spec!r} is neither a preset ({', '.join(preset_names())}) nor a file")
    data = load_yaml_file(path, "weights file") or {}
    if isinstance(data, dict) and "components" in data:
        mix = validate_file_data(Mixture, data, path, "weights file")
        return mix.target(), mix.by, f"mixture {mix.name} from {path}: {mix.citation}"
    user = _user_target(data, path)
    return user.target(), user.by, f"weights from {path}"
