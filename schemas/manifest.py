"""The shard-set manifest (`OUT/_manifest.json`): what was written, from what, and what was dropped.

Written last, atomically, only when every shard is complete: its presence means the set is whole.
"""
from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MANIFEST_NAME = "_manifest.json"

# A Hive partition value that is one harmless path component: no '/', '=', spaces or other
# characters a filesystem or URL treats specially, and not '.' or '..'. Readers derive output
# paths from these values (sample writes `domain=<d>/lang=<l>/...`), so a manifest or input
# holding `../../x` must be refused here, in the contract, where every reader meets it.
PARTITION_VALUE = re.compile(r"(?!\.+\Z)[A-Za-z0-9_.\-]+\Z")


def check_partition_value(value: str, field: str = "partition value") -> str:
    """`value` if it is a safe partition value, else ValueError naming it."""
    if not isinstance(value, str) or not PARTITION_VALUE.match(value):
        raise ValueError(f"{field} {value!r} is not a safe partition value (letters, digits, '_', '.', '-')")
    return value


def _plain_component(component: str) -> bool:
    """A name (`part-00000.arrow`) or a Hive directory (`lang=en`) built only from safe names."""
    return all(PARTITION_VALUE.match(side) for side in component.split("=", 1))


def check_relative_path(path: str) -> str:
    """`path` if it is a relative POSIX path that stays under its root (no '..', not absolute, no
    backslash, every component a plain name), else ValueError: a manifest names files *inside* its set."""
    if not isinstance(path, str) or not all(_plain_component(c) for c in path.split("/")):
        raise ValueError(f"path {path!r} does not stay inside the shard set (relative plain names only, no '..')")
    return path


POOLED_LANG = "other"  # the partition of a domain's small languages (see OutputConfig.min_partition_bytes)


class Totals(BaseModel):
    """Documents, tokens and characters of one group (a domain, a language, or everything)."""

    model_config = ConfigDict(extra="forbid")
    docs: int = 0
    tokens: int = 0
    chars: int = 0


class ShardInfo(BaseModel):
    """One Arrow IPC file; `path` is relative to the shard-set root (e.g. `domain=web/lang=en/part-00000.arrow`).

    `lang` is the partition (the directory); in the pooled `lang=other` partition each row keeps
    its real language in its `lang` column and `langs` counts them (docs, tokens, chars per language)."""

    model_config = ConfigDict(extra="forbid")
    path: str
    domain: str
    lang: str
    rows: int
    bytes: int
    tokens: int
    chars: int
    sha256: str
    langs: dict[str, Totals] | None = None

    @field_validator("domain", "lang")
    @classmethod
    def _safe_partition(cls, value: str, info: Any) -> str:
        return check_partition_value(value, info.field_name)

    @model_validator(mode="after")
    def _path_under_its_partition(self) -> "ShardInfo":
        check_relative_path(self.path)
        prefix = f"domain={self.domain}/lang={self.lang}/"
        if not self.path.startswith(prefix) or "/" in self.path[len(prefix):]:
            raise ValueError(f"path {self.path!r} is not a file directly under {prefix}")
        return self


class Funnel(BaseModel):
    """Documents read, dropped per reason (filters, dedup, reader errors) and kept, with their tokens.

    `stage_of` names the pipeline stage that emitted each reason (from the reject records) and
    `enabled` lists the stages the recipe switched on, so a report can show the funnel in stage
    order with a row for every enabled stage, even one that dropped nothing (`audit.funnel`).
    Tokens are the estimate the build stores per document; reader rejects have no text, so
    `read_tokens` counts the documents that parsed (= kept + every later stage's drops).
    """

    model_config = ConfigDict(extra="forbid")
    read: int = 0
    dropped: dict[str, int] = Field(default_factory=dict)
    kept: int = 0
    read_tokens: int | None = None
    dropped_tokens: dict[str, int] = Field(default_factory=dict)
    kept_tokens: int | None = None
    stage_of: dict[str, str] = Field(default_factory=dict)
    enabled: list[str] = Field(default_factory=list)
    # rows written beyond the input (a sample's upsampled repeats): read + added = kept + dropped
    added: dict[str, int] = Field(default_factory=dict)


class TokenCounter(BaseModel):
    """What counted the `n_tokens` column: replaymill's calibrated estimate, or a real tokenizer.

    A budget of "50M tokens" means that counter's tokens; `sha256` fingerprints a tokenizer's files,
    so `sample --tokenizer` can tell whether the counts are already in the base model's tokens.
    """

    model_config = ConfigDict(extra="forbid")
    kind: str = "estimate"  # "estimate" | "tokenizer"
    name: str = "replaymill.transforms.tokens.estimate_tokens"
    path: str | None = None
    sha256: str | None = None
    vocab_size: int | None = None


class Manifest(BaseModel):
    """The whole description of a shard set; `extra` holds job-specific reports (e.g. sampling)."""

    model_config = ConfigDict(extra="forbid")
    schema_version: str
    kind: str = "build"  # "build" | "sample" | "reshard"
    created_at: str
    tool_version: str
    package_versions: dict[str, str] = Field(default_factory=dict)
    inputs: list[str] = Field(default_factory=list)
    recipe: dict[str, Any] = Field(default_factory=dict)
    shards: list[ShardInfo] = Field(default_factory=list)
    by_domain: dict[str, Totals] = Field(default_factory=dict)
    by_lang: dict[str, Totals] = Field(default_factory=dict)
    total: Totals = Field(default_factory=Totals)
    funnel: Funnel = Field(default_factory=Funnel)
    # per domain, the languages whose rows sit in its pooled `lang=other` partition
    pooled_langs: dict[str, list[str]] = Field(default_factory=dict)
    token_counter: TokenCounter | None = None  # None: written before counters were recorded
    extra: dict[str, Any] = Field(default_factory=dict)


def totals_from_shards(shards: list[ShardInfo]) -> tuple[dict[str, Totals], dict[str, Totals], Totals]:
    """Per-domain, per-language and overall totals summed from shard entries (the one place they are summed).

    Languages are the rows' real ones: a pooled `lang=other` shard contributes its `langs` counts."""
    by_domain: dict[str, Totals] = {}
    by_lang: dict[str, Totals] = {}
    total = Totals()
    for s in shards:
        per_lang = s.langs or {s.lang: Totals(docs=s.rows, tokens=s.tokens, chars=s.chars)}
        for key, table, part in ((s.domain, by_domain, Totals(docs=s.rows, tokens=s.tokens, chars=s.chars)),
                                 *((lang, by_lang, t) for lang, t in per_lang.items())):
            t = table.setdefault(key, Totals())
            t.docs += part.docs
            t.tokens += part.tokens
            t.chars += part.chars
        total.docs += s.rows
        total.tokens += s.tokens
        total.chars += s.chars
    return dict(sorted(by_domain.items())), dict(sorted(by_lang.items())), total


def pooled_langs_of(shards: list[ShardInfo]) -> dict[str, list[str]]:
    """Per domain, the real languages whose rows sit in its pooled `lang=other` partition."""
    pooled: dict[str, set[str]] = {}
    for s in shards:
        if s.lang == POOLED_LANG:
            pooled.setdefault(s.domain, set()).update(s.langs or ())
    return {domain: sorted(langs) for domain, langs in sorted(pooled.items())}
