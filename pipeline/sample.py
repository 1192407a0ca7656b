"""Materialize a replay set through Beam: a selection plan, then shards read in parallel and rewritten.

Two ways to a plan, one way out:

* Target mixture (preset or weights YAML): the `ReplaySampler` schedule is stepped on the driver
  from the manifest and each shard's `n_tokens` column (index only: a few bytes per document, no
  text), which fixes how many documents each mixture key gives. Within a key the documents follow
  its `KeyOrder`, a pure function of a few numbers, so the plan is a list of `PartPlan`s, one per
  output part: "key k's positions [start, stop), the documents of partition (domain, lang)". No
  list of picked documents exists anywhere: the driver's memory is independent of the output size
  (1B tokens upsampled from a 1M-token pool is a thousand epochs, and a few hundred part plans),
  and each worker rebuilds its part's documents from the key order and reads them from the source
  shards. Within a part, key order is the global order (the interleave keeps each key's order).
* Reference sample (DSIR): all in Beam. Pass 1 sums the pool's hashed n-gram counts
  (CombineGlobally); pass 2 scores every document against the reference (side input) and adds
  its partition-independent Gumbel noise; each shard keeps only its own best documents up to the
  budget, and a combine merges those lists keeping the global best up to the budget (exact: a
  document beyond a shard's own budget prefix can never make the global one). Position = rank by
  Gumbel key.

Out: target parts are written by one DoFn each from their plan; DSIR's picked rows are grouped
by source shard (each read and verified once), keyed by output part, gathered with GroupByKey and
written in position order. Parts are `domain=<d>/lang=<l>/part-NNNNN.arrow` (consecutive
positions of one domain and language), written with `shards.io.write_shard`, read back, and the manifest (kind "sample", `extra.sampling`: target vs
achieved, TV, KL, shortfall handling) is written last from all ShardInfos once the integrity gate
passes (funnel: `read` = rows planned, `kept` = rows read from the source shards).
"""
from __future__ import annotations

import io
import json
import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from typing import Any, Iterable, Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io.filesystems import FileSystems

from replaymill.pipeline import progress
from replaymill.pipeline.integrity import VerifyShards, gate
from replaymill.pipeline.sink import lang_totals
from replaymill.schemas.document import COLUMN_NAMES, DOC_SCHEMA, SCHEMA_VERSION, to_record_batch, upgrade_table
from replaymill.schemas.manifest import (
    POOLED_LANG, Funnel, Manifest, ShardInfo, TokenCounter, pooled_langs_of, totals_from_shards,
)
from replaymill.shards.io import read_shard_bytes, write_manifest, write_shard
from replaymill.shards.reader import ShardSet
from replaymill.shards.sampler import KeyOrder, ReplaySampler, key_for, renormalized_weights
from replaymill.transforms import dsir
from replaymill.transforms.interleave import divergence
from replaymill.transforms.tokens import count_tokens, load_tokenizer

Pick = tuple[int, int, int, int]  # (position, source shard index, row, epoch): DSIR selections


@dataclass(frozen=True)
class PartPlan:
    """One output part of a target sample: the documents of source partition (`domain`, `lang`)
    among mixture key `key`'s positions [start, stop), `rows` of them, written to `rel`."""

    rel: str
    key: int
    start: int
    stop: int
    domain: str
    lang: str
    rows: int


@dataclass
class TargetPlan:
    """What a target sample writes: each key's document order and shards, and the parts."""

    orders: list[KeyOrder]
    key_shards: list[list[dict]]  # per key, its shards (ShardInfo dumps) in KeyOrder's shard order
    parts: list[PartPlan]

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)


def part_path(domain: str, lang: str, n: int) -> str:
    return f"domain={domain}/lang={lang}/part-{n:05d}.arrow"


def _versions() -> dict[str, str]:
    out = {}
    for name in ("replaymill", "apache-beam", "pyarrow", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _jsonable(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


# ----- plans ------------------------------------------------------------------------------------

def shard_token_counter(shardset: ShardSet, tokenizer: Any):
    """`info -> per-row token counts` of a shard's text with `tokenizer` (read on the driver): the
    sampler's index when the set's n_tokens were counted by something else."""
    from replaymill.transforms.tokens import count_tokens

    def counts(info: ShardInfo) -> np.ndarray:
        texts = shardset.read_table(info, ["text"], cache=False).column("text").to_pylist()
        return np.asarray(count_tokens([t or "" for t in texts], tokenizer), dtype=np.int64)

    return counts


def plan_target(shardset: ShardSet, target: dict[str, float], *, by: str, budget: int, budget_by: str,
                seed: int, on_short: str, quality_temperature: float | None = None,
                tokenizer: Any = None, rows_per_part: int = 10_000) -> tuple[TargetPlan, dict]:
    """The exact interleave as part plans, and the sampling report (target, achieved, divergence,
    shortfall). The schedule is stepped to its end keeping only counts; memory does not grow with
    the budget.

    `tokenizer` (a loaded tokenizer) recounts every document's tokens instead of the n_tokens column."""
    if rows_per_part < 1:
        raise ValueError("rows_per_part must be positive")
    counts = shard_token_counter(shardset, tokenizer) if tokenizer is not None else None
    sampler = ReplaySampler(shardset, target, by=by, seed=seed, on_short=on_short, budget=budget,
                            budget_by=budget_by, quality_temperature=quality_temperature, token_counts=counts)
    sampler.run_schedule()
    taken = sampler.interleave.docs
    plan = TargetPlan(
        orders=[sampler.key_order(k) for k in range(len(sampler.keys))],
        key_shards=[[info.model_dump() for info in key.shards] for key in sampler.keys],
        parts=[part for k, key in enumerate(sampler.keys)
               for part in key_parts(k, sampler.key_order(k), key.shards, taken[k], rows_per_part)])
    achieved = sampler.achieved()
    units = {k: v["units"] for k, v in achieved.items()}
    total = sum(units.values()) or 1
    shortfall = sampler.shortfall()
    report = {
        "mode": "target",
        "by": by, "budget": budget, "budget_by": budget_by, "seed": seed, "on_short": on_short,
        "quality_temperature": quality_temperature,
        "target": sampler.target,
        "effective_target": {k.name: w for k, w in zip(sampler.keys, sampler.weights)},
        "achieved": {k: {**v, "share": v["units"] / total} for k, v in achieved.items()},
        **{key: _jsonable(val) for key, val in divergence(sampler.target, units).items()},
        "effective_divergence": {key: _jsonable(val) for key, val in divergence(
            {k.name: w for k, w in zip(sampler.keys, sampler.weights)}, units).items()},
        "shortfall": {"action": on_short if shortfall else "none", "keys": shortfall,
                      "repeated_docs": sum(v["repeats"] for v in achieved.values())},
        "budget_used": sampler.budget_used,
        "final_state": sampler.state_dict(),
        **target_coverage(shardset, set(sampler.target)),
    }
    report["funnel"] = target_funnel(shardset, report, recounted=tokenizer is not None)
    return plan, report


def key_parts(k: int, order: KeyOrder, shards: list[ShardInfo], taken: int, rows_per_part: int) -> list[PartPlan]:
    """The output parts of key k's first `taken` documents: `rows_per_part` consecutive documents of
    one source partition (domain, lang) each. A key of one partition is cut by position alone; a
    key spanning several (a domain key over many languages) is walked once, block by block, to
    find where each partition's parts start and end in the key's order."""
    partitions = sorted({(info.domain, info.lang) for info in shards})
    if taken == 0 or not partitions:  # a key the budget ended before reaching has no parts
        return []
    if len(partitions) == 1:
        (domain, lang), = partitions
        return [PartPlan(part_path(domain, lang, n), k, a, min(a + rows_per_part, taken), domain, lang,
                         min(rows_per_part, taken - a)) for n, a in enumerate(range(0, taken, rows_per_part))]
    of_shard = np.array([partitions.index((info.domain, info.lang)) for info in shards], dtype=np.int64)
    seen = [0] * len(partitions)        # documents of each partition so far
    opened: list[int | None] = [None] * len(partitions)  # key position where its current part began
    last = [0] * len(partitions)        # key position after its latest document
    parts: list[PartPlan] = []
    pos = 0
    for _epoch, shard_ids, _rows in order.segments(0, taken):
        which = of_shard[shard_ids]
        for j in np.unique(which):
            at = pos + np.flatnonzero(which == j)  # key positions of partition j's documents here
            ordinal = seen[j] + np.arange(len(at))
            domain, lang = partitions[j]
            for i in np.flatnonzero(ordinal % rows_per_part == 0):  # first document of a part: the one before closes
                if opened[j] is not None:
                    end = int(at[i - 1]) + 1 if i > 0 else last[j]
                    n = int(ordinal[i]) // rows_per_part - 1
                    parts.append(PartPlan(part_path(domain, lang, n), k, opened[j], end, domain, lang, rows_per_part))
                opened[j] = int(at[i])
            seen[j] += len(at)
            last[j] = int(at[-1]) + 1
        pos += len(shard_ids)
    for j, (domain, lang) in enumerate(partitions):
        if opened[j] is not None:
            n = (seen[j] - 1) // rows_per_part
            parts.append(PartPlan(part_path(domain, lang, n), k, opened[j], last[j], domain, lang,
                                  seen[j] - n * rows_per_part))
    return parts


def target_coverage(shardset: ShardSet, keys: set[str]) -> dict[str, Any]:
    """Which of the set's domains the target takes as they are, which it counts toward another key
    (`folded`: web topics toward web, `schemas.domains.WEB_TOPICS`), and which it leaves out
    (`unnamed`, with their documents and tokens): the sample command warns about the last two.
    Folding is the audit's `counted_as`, so a sample and its audit name the same domains."""
    from replaymill.audit.compare import counted_as

    unnamed: dict[str, dict[str, int]] = {}
    for info in shardset.shards:
        if key_for(info.domain, info.lang, keys) is None:
            u = unnamed.setdefault(info.domain, {"docs": 0, "tokens": 0})
            u["docs"] += info.rows
            u["tokens"] += info.tokens
    folded = counted_as([{"domain": info.domain, "lang": info.lang} for info in shardset.shards], list(keys))
    return {"folded": folded, "unnamed": dict(sorted(unnamed.items()))}


def target_funnel(shardset: ShardSet, report: dict[str, Any], recounted: bool = False) -> dict[str, Any]:
    """The sample's funnel: the pool's documents, those outside the target, those of targeted keys
    not drawn before the budget was reached, upsampled repeats added, and the rows written;
    `read + added == kept + dropped`. Tokens where they are known exactly (not after a recount;
    for `not_drawn` only without repeats); `kept_tokens` is filled in from the written shards."""
    manifest = shardset.manifest
    outside = sum(u["docs"] for u in report["unnamed"].values())
    outside_tokens = sum(u["tokens"] for u in report["unnamed"].values())
    drawn = sum(a["docs"] for a in report["achieved"].values())
    repeats = sum(a["repeats"] for a in report["achieved"].values())
    distinct = drawn - repeats
    funnel: dict[str, Any] = {
        "read": manifest.total.docs,
        "dropped": {"not_in_target": outside, "not_drawn": manifest.total.docs - outside - distinct},
        "added": {"upsampled_repeat": repeats} if repeats else {},
        "kept": drawn,
        "stage_of": {"not_in_target": "target", "not_drawn": "budget"},
        "enabled": ["target", "budget"],
    }
    if not recounted:
        funnel["read_tokens"] = manifest.total.tokens
        funnel["dropped_tokens"] = {"not_in_target": outside_tokens}
    return funnel


def reference_funnel(pool_docs: int, pool_tokens: int, selected_docs: int) -> dict[str, Any]:
    """DSIR's funnel: every pool document is a candidate; those not selected are `not_drawn`."""
    return {"read": pool_docs, "dropped": {"not_drawn": pool_docs - selected_docs}, "kept": selected_docs,
            "read_tokens": pool_tokens, "stage_of": {"not_drawn": "budget"}, "enabled": ["budget"]}


def finish_funnel(funnel: dict[str, Any], kept_tokens: int) -> Funnel:
    """The planned funnel completed with what was written: kept tokens and, without repeats, the
    tokens of the targeted documents not drawn."""
    funnel = dict(funnel, kept_tokens=kept_tokens)
    if funnel.get("read_tokens") is not None and not funnel.get("added"):
        known = sum(funnel.get("dropped_tokens", {}).values())
        funnel["dropped_tokens"] = {**funnel.get("dropped_tokens", {}),
                                    "not_drawn": funnel["read_tokens"] - known - kept_tokens}
    return Funnel.model_validate(funnel)


def assign_parts(picks: Iterable[Pick], shards: list[ShardInfo], rows_per_part: int) -> dict[int, list[tuple]]:
    """Per source shard: [(row, position, epoch, output part path)], parts cut by position within (domain, lang)."""
    seen: dict[tuple[str, str], int] = {}
    out: dict[int, list[tuple]] = {}
    for pos, s, row, epoch in sorted(picks):
        info = shards[s]
        n = seen.get((info.domain, info.lang), 0)
        seen[(info.domain, info.lang)] = n + 1
        out.setdefault(s, []).append((row, pos, epoch, part_path(info.domain, info.lang, n // rows_per_part)))
    return out


def read_reference_texts(path: str, limit_chars: int = 200 << 20) -> list[str]:
    """Reference documents: JSON lines with "text" (.jsonl/.json, optionally compressed), else plain
    text split at blank lines. Any Beam filesystem; stops after `limit_chars`."""
    with FileSystems.open(path) as f:  # compression (.gz, .bz2, .zst, ...) detected from the name
        text = f.read().decode("utf-8", errors="replace")
    texts: list[str] = []
    stem = re.sub(r"\.(gz|bz2|zst|zstd|xz|deflate)$", "", path)
    if stem.endswith((".jsonl", ".json")):
        for n, line in enumerate(io.StringIO(text), 1):
            if line.strip():
                try:
                    texts.append(str(json.loads(line)["text"]))
                except (json.JSONDecodeError, KeyError, TypeError) as e:
                    raise ValueError(f"{path}:{n}: not a JSON object with a 'text' field ({e})") from None
    else:
        texts = [p.strip() for p in text.split("\n\n") if p.strip()]
    out, used = [], 0
    for t in texts:
        if used >= limit_chars:
            break
        out.append(t)
        used += len(t)
    if not out:
        raise ValueError(f"reference {path} holds no text")
    return out


# ----- Beam: DSIR selection ---------------------------------------------------------------------

def _load_table(root: str, info: dict, columns: list[str] | None = None) -> pa.Table:
    table = pa.ipc.open_file(pa.BufferReader(read_shard_bytes(root, ShardInfo(**info)))).read_all()
    return table.select(columns) if columns else table


class _PoolCounts(beam.DoFn):
    """Hashed n-gram counts of one shard's documents (summed over the pool by a combine)."""

    def __init__(self, root: str, num_buckets: int):
        self.root, self.num_buckets = root, num_buckets

    def process(self, element: tuple[int, dict]) -> Iterator[np.ndarray]:
        _, info = element
        texts = _load_table(self.root, info, ["text"]).column("text").to_pylist()
        yield dsir.bucket_counts((t or "" for t in texts), self.num_buckets)


class _SumArrays(beam.CombineFn):
    def __init__(self, size: int):
        self.size = size

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(self.size, dtype=np.int64)

    def add_input(self, acc: np.ndarray, x: np.ndarray) -> np.ndarray:
        acc += x
        return acc

    def merge_accumulators(self, accs: Iterable[np.ndarray]) -> np.ndarray:
        accs = list(accs)
        out = accs[0]
        for a in accs[1:]:
            out = out + a
        return out

    def extract_output(self, acc: np.ndarray) -> np.ndarray:
        return acc


def _truncate(cands: list[tuple], budget: int) -> list[tuple]:
    """Sorted candidates (-key, shard, row, size) cut after the one whose cumulative size reaches budget."""
    used = 0
    for i, c in enumerate(cands):
        used += c[3]
        if used >= budget:
            return cands[: i + 1]
    return cands


def _sizes(table: pa.Table, texts: list[str] | None, by: str, tokenizer: Any) -> np.ndarray:
    """What each document costs of the budget: its tokens (recounted with `tokenizer` if given: then
    `texts` are the table's texts) or 1."""
    if by == "tokens" and tokenizer is not None:
        return np.maximum(np.asarray(count_tokens(texts, tokenizer), dtype=np.int64), 1)
    if by == "tokens":
        return np.maximum(table.column("n_tokens").fill_null(1).to_numpy(zero_copy_only=False), 1)
    return np.ones(table.num_rows, dtype=np.int64)


class _ScoreShard(beam.DoFn):
    """Gumbel keys of one shard's documents; emits only the shard's own best up to the budget."""

    def __init__(self, root: str, reference_counts: np.ndarray | None, seed: int, budget: int, by: str,
                 alpha: float, quality_temperature: float | None, tokenizer: str | None = None):
        self.root, self.ref, self.seed, self.budget, self.by = root, reference_counts, seed, budget, by
        self.alpha, self.quality_temperature, self.tokenizer_path = alpha, quality_temperature, tokenizer
        self._ratio: np.ndarray | None = None
        self._progress = progress.reporter()

    def finish_bundle(self) -> None:
        self._progress.flush()

    def setup(self) -> None:
        self._tokenizer = load_tokenizer(self.tokenizer_path) if self.tokenizer_path else None

    def candidates(self, s: int, info: dict, ratio: np.ndarray | None) -> list[tuple]:
        """(-key, shard, row, size) of every document of shard `s`, best first.

        `ratio` None: every document weighs the same, log weight +0.0 (exactly what a zero ratio
        sums to, so the Gumbel order is the same), without hashing the documents' n-grams; the text
        is then read only to recount tokens."""
        self._progress.add("sample.scored")
        recount = self.by == "tokens" and self._tokenizer is not None
        with_text = ratio is not None or recount
        table = _load_table(self.root, info, ["id", "text", "n_tokens", "quality"] if with_text
                            else ["id", "n_tokens", "quality"])
        texts = [t or "" for t in table.column("text").to_pylist()] if with_text else None
        logw = dsir.log_importance_weights(texts, ratio) if ratio is not None else np.zeros(table.num_rows)
        if self.quality_temperature is not None:
            q = table.column("quality").fill_null(0.0).to_numpy(zero_copy_only=False)
            logw = logw + dsir.quality_log_weights(q, self.quality_temperature)
        keys = dsir.gumbel_keys(logw, table.column("id").to_pylist(), self.seed)
        sizes = _sizes(table, texts, self.by, self._tokenizer)
        return sorted((-float(keys[i]), s, i, int(sizes[i])) for i in range(table.num_rows))

    def process(self, element: tuple[int, dict], pool_counts: np.ndarray) -> Iterator[list[tuple]]:
        if self._ratio is None:
            self._ratio = dsir.log_ratio(self.ref, pool_counts, self.alpha)
        s, info = element
        yield _truncate(self.candidates(s, info, self._ratio), self.budget)


class _ScoreShardInKey(_ScoreShard):
    """Stratified selection: a shard's documents scored against the reference documents of its own
    key (the plan's ratio; with `in_key_dsir` False, the mixture mode, every document weighs the
    same, a seeded random draw, and nothing is scored), cut at that key's budget; keyed by the key
    for a per-key merge."""

    def __init__(self, root: str, seed: int, budget: int, by: str, alpha: float, quality_temperature: float | None,
                 tokenizer: str | None = None, *, in_key_dsir: bool):
        super().__init__(root, None, seed, budget, by, alpha, quality_temperature, tokenizer)
        self.in_key_dsir = in_key_dsir

    def process(self, element: tuple[int, dict], plan: dict) -> Iterator[tuple[str, list[tuple]]]:
        s, info = element
        key = _key(info)
        if plan["budgets"].get(key, 0) <= 0:
            self._progress.add("sample.scored")
            return
        ratio = plan["ratios"][key] if self.in_key_dsir else None
        yield key, _truncate(self.candidates(s, info, ratio), plan["budgets"][key])


DSIR_MODES = ("mixture", "stratified", "global")


def _key(info: dict) -> str:
    return f"{info['domain']}/{info['lang']}"


class _PoolCountsByKey(beam.DoFn):
    """(shard key, (hashed n-gram counts, documents, budget units)) of one shard: the per-key models."""

    def __init__(self, root: str, num_buckets: int, by: str, tokenizer: str | None = None):
        self.root, self.num_buckets, self.by, self.tokenizer_path = root, num_buckets, by, tokenizer

    def setup(self) -> None:
        self._tokenizer = load_tokenizer(self.tokenizer_path) if self.tokenizer_path else None

    def process(self, element: tuple[int, dict]) -> Iterator[tuple[str, tuple]]:
        _, info = element
        table = _load_table(self.root, info, ["text", "n_tokens"])
        texts = [t or "" for t in table.column("text").to_pylist()]
        units = int(_sizes(table, texts, self.by, self._tokenizer).sum())
        yield _key(info), (dsir.bucket_counts(texts, self.num_buckets), len(texts), units)


class _SumKeyStats(beam.CombineFn):
    def create_accumulator(self) -> tuple:
        return (None, 0, 0)

    def add_input(self, acc: tuple, x: tuple) -> tuple:
        return self.merge_accumulators([acc, x])

    def merge_accumulators(self, accs: Iterable[tuple]) -> tuple:
        counts, docs, units = None, 0, 0
        for c, d, u in accs:
            if c is not None:
                counts = c.copy() if counts is None else counts + c
            docs, units = docs + d, units + u
        return counts, docs, units

    def extract_output(self, acc: tuple) -> tuple:
        return acc


def stratified_plan(stats: dict[str, tuple], reference_features: list[np.ndarray], budget: int, alpha: float,
                    num_buckets: int, in_key_dsir: bool = True) -> dict:
    """Budgets and within-key importance ratios of stratified DSIR (the ratios only with
    `in_key_dsir`: the mixture mode draws within a key at random and never reads them).

    The reference's document shares per key (`dsir.estimate_mixture`) become budget shares with each
    key's mean document size (tokens, or 1 by documents); keys explaining less than half a reference
    document are left out; a key with too little in the pool gives all it has and the others share
    the rest in their ratios (water-filling, as `--on-short renormalize`)."""
    key_counts = {k: v[0] for k, v in stats.items() if v[0] is not None and v[1] > 0}
    shares, post, keys = dsir.estimate_mixture(reference_features, key_counts, alpha)
    kept = sorted(k for k, p in shares.items() if p * len(post) >= 0.5)
    raw = [shares[k] * stats[k][2] / stats[k][1] for k in kept]
    weights = [w / sum(raw) for w in raw]
    available = [stats[k][2] for k in kept]
    if any(w * budget > a for w, a in zip(weights, available)):
        weights = renormalized_weights(weights, available, budget)
    budgets = {k: w * budget for k, w in zip(kept, weights)}
    ratios = {}
    if in_key_dsir:
        per_key_ref = dsir.key_reference_counts(reference_features, post, keys, num_buckets)
        ratios = {k: dsir.log_ratio(per_key_ref[k], key_counts[k], alpha) for k in kept}
    return {"budgets": budgets, "ratios": ratios,
            "estimate": {k: {"doc_share": shares[k], "budget_share": w, "budget": round(budgets[k]),
                             "reference_docs": float(post[:, keys.index(k)].sum())} for k, w in zip(kept, weights)},
            "left_out": {k: p for k, p in shares.items() if k not in kept and p > 1e-4}}


class _Concat(beam.CombineFn):
    def create_accumulator(self) -> list:
        return []

    def add_input(self, acc: list, x: list) -> list:
        return acc + list(x)

    def merge_accumulators(self, accs: Iterable[list]) -> list:
        return [c for a in accs for c in a]

    def extract_output(self, acc: list) -> list:
        return sorted(acc)


class _TopByBudget(beam.CombineFn):
    """The global best candidates up to the budget, merged from per-shard best lists (exact)."""

    def __init__(self, budget: int):
        self.budget = budget

    def create_accumulator(self) -> list[tuple]:
        return []

    def add_input(self, acc: list[tuple], cands: list[tuple]) -> list[tuple]:
        return _truncate(sorted(acc + cands), self.budget)

    def merge_accumulators(self, accs: Iterable[list[tuple]]) -> list[tuple]:
        merged: list[tuple] = []
        for a in accs:
            merged = _truncate(sorted(merged + a), self.budget)
        return merged

    def extract_output(self, acc: list[tuple]) -> list[tuple]:
        return acc


def _selection_report(selection: list[tuple], pool_counts: np.ndarray, selected_counts: np.ndarray,
                      reference_counts: np.ndarray, shards: list[dict], base: dict) -> dict:
    by_domain: dict[str, int] = {}
    for _, s, _, size in selection:
        by_domain[shards[s]["domain"]] = by_domain.get(shards[s]["domain"], 0) + size
    total = sum(by_domain.values()) or 1
    return {**base,
            "achieved": {d: {"units": u, "share": u / total} for d, u in sorted(by_domain.items())},
            "selected_docs": len(selection), "budget_used": total,
            "dsir": {**base["dsir"],
                     "kl_reference_to_selection": dsir.hashed_kl(reference_counts, selected_counts, base["dsir"]["alpha"]),
                     "kl_reference_to_pool": dsir.hashed_kl(reference_counts, pool_counts, base["dsir"]["alpha"])}}


# ----- Beam: read picked rows, write parts, manifest ---------------------------------------------

class _ReadPicked(beam.DoFn):
    """Read one source shard (verified) and emit its picked rows keyed by output part."""

    FEATURES = "features"

    def __init__(self, root: str, num_buckets: int = 0, tokenizer: str | None = None):
        self.root, self.num_buckets, self.tokenizer_path = root, num_buckets, tokenizer
        self._progress = progress.reporter()

    def finish_bundle(self) -> None:
        self._progress.flush()

    def setup(self) -> None:
        self._tokenizer = load_tokenizer(self.tokenizer_path) if self.tokenizer_path else None

    def process(self, element: tuple[dict, list[tuple]]) -> Iterator[Any]:
        info, items = element
        table = _load_table(self.root, info)
        docs = table.take(pa.array([row for row, *_ in items], type=pa.int64())).to_pylist()
        if self._tokenizer is not None:  # the output's n_tokens in the tokenizer the budget was counted in
            for doc, n in zip(docs, count_tokens([d["text"] or "" for d in docs], self._tokenizer)):
                doc["n_tokens"] = n
        for (_row, pos, epoch, rel), doc in zip(items, docs):
            if epoch:
                doc["id"] = f"{doc['id']}#r{epoch}"
            yield rel, (pos, doc)
        self._progress.add("sample.rows", len(items))
        if self.num_buckets:
            yield beam.pvalue.TaggedOutput(self.FEATURES, dsir.bucket_counts((d["text"] for d in docs), self.num_buckets))


class _WritePart(beam.DoFn):
    def __init__(self, output: str):
        self.output = output
        self._progress = progress.reporter()

    def finish_bundle(self) -> None:
        self._progress.flush()

    def process(self, element: tuple[str, Iterable[tuple[int, dict]]]) -> Iterator[dict]:
        rel, items = element
        docs = [doc for _, doc in sorted(items, key=lambda x: x[0])]
        table = pa.Table.from_batches([to_record_batch(docs)])
        domain, lang = (part.split("=", 1)[1] for part in rel.split("/")[:2])  # from the validated manifest
        info = write_shard(self.output, rel, table, domain, lang)
        if lang == POOLED_LANG:  # a build's pooled small languages stay pooled; rows keep their own lang
            info = info.model_copy(update={"langs": lang_totals(docs)})
        self._progress.add("sample.parts")
        yield info.model_dump()


class _WritePlannedPart(beam.DoFn):
    """Writes one target part from its `PartPlan`: the key's order gives the (shard, row, epoch) of
    each document, each source shard it draws from is read (verified) once per part and kept in a
    small LRU across parts, and the part is written in key order. Memory: one part's rows plus a
    few source shards, whatever the sample's size."""

    CACHE_SHARDS = 3  # a part walks blocks of `shuffle_block` (2) shards

    def __init__(self, root: str, output: str, orders: list[KeyOrder], key_shards: list[list[dict]],
                 tokenizer: str | None = None):
        self.root, self.output, self.orders, self.key_shards = root, output, orders, key_shards
        self.tokenizer_path = tokenizer
        self._progress = progress.reporter()

    def setup(self) -> None:
        self._tokenizer = load_tokenizer(self.tokenizer_path) if self.tokenizer_path else None
        self._tables: OrderedDict[str, pa.Table] = OrderedDict()

    def finish_bundle(self) -> None:
        self._progress.flush()

    def _table(self, info: dict) -> pa.Table:
        table = self._tables.get(info["path"])
        if table is None:
            table = self._tables[info["path"]] = upgrade_table(_load_table(self.root, info))
            while len(self._tables) > self.CACHE_SHARDS:
                self._tables.popitem(last=False)
        else:
            self._tables.move_to_end(info["path"])
        return table

    def process(self, part: PartPlan) -> Iterator[dict]:
        infos = self.key_shards[part.key]
        mine = np.array([(i["domain"], i["lang"]) == (part.domain, part.lang) for i in infos])
        shard_ids, rows, epochs = [], [], []
        for epoch, ids, rws in self.orders[part.key].segments(part.start, part.stop):
            keep = mine[ids]
            shard_ids.append(ids[keep])
            rows.append(rws[keep])
            epochs.append(np.full(int(keep.sum()), epoch, dtype=np.int64))
        shard_ids, rows, epochs = (np.concatenate(a) for a in (shard_ids, rows, epochs))
        if len(rows) != part.rows:
            raise RuntimeError(f"{part.rel}: the key order gives {len(rows)} documents, the plan says {part.rows}")
        table = self._gather(infos, shard_ids, rows)
        if epochs.any():  # a repeated document gets its own id: `<id>#r<epoch>`
            suffix = pa.array(np.where(epochs > 0, np.char.add("#r", epochs.astype(str)), ""))
            table = table.set_column(table.schema.get_field_index("id"), "id",
                                     pc.binary_join_element_wise(table.column("id"), suffix, ""))
        if self._tokenizer is not None:  # the output's n_tokens in the tokenizer the budget was counted in
            counts = count_tokens([t or "" for t in table.column("text").to_pylist()], self._tokenizer)
            table = table.set_column(table.schema.get_field_index("n_tokens"), "n_tokens", pa.array(counts, pa.int64()))
        info = write_shard(self.output, part.rel, table, part.domain, part.lang)
        if part.lang == POOLED_LANG:  # a build's pooled small languages stay pooled; rows keep their own lang
            info = info.model_copy(update={"langs": lang_totals(table.select(["lang", "n_tokens", "n_chars"]).to_pylist())})
        self._progress.add("sample.rows", table.num_rows)
        self._progress.add("sample.parts")
        yield info.model_dump()

    def _gather(self, infos: list[dict], shard_ids: np.ndarray, rows: np.ndarray) -> pa.Table:
        """The rows, in the given order, as one Arrow table of DOC_SCHEMA: taken shard by shard and
        put back in order with Arrow's take, so no document becomes a Python object (a part of
        10,000 documents as dicts is a heap of small objects that outlives its part in fragments)."""
        pieces, where = [], []
        for s in np.unique(shard_ids):
            at = np.flatnonzero(shard_ids == s)
            pieces.append(self._table(infos[s]).take(pa.array(rows[at], type=pa.int64())))
            where.append(at)
        order = np.empty(len(rows), dtype=np.int64)
        order[np.concatenate(where)] = np.arange(len(rows))
        try:
            return pa.concat_tables(pieces).take(pa.array(order)).select(COLUMN_NAMES).cast(DOC_SCHEMA)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError):  # shards of an older layout: by rows
            docs = [doc for piece in pieces for doc in piece.to_pylist()]
            return pa.Table.from_batches([to_record_batch([docs[i] for i in order])])


class _WriteManifest(beam.DoFn):
    """The manifest, last, after the integrity gate: the funnel adds up and its `kept` (the rows
    planned) is what the written parts hold, every part listed once and read back intact."""

    def __init__(self, output: str, inputs: list[str], pool: tuple[int, int], token_counter: dict | None,
                 recounted: bool = False):
        self.output, self.inputs, self.pool, self.token_counter = output, inputs, pool, token_counter
        self.recounted = recounted

    def process(self, infos: list[dict], report: dict, checks: list[dict]) -> Iterator[str]:
        shards = sorted((ShardInfo(**i) for i in infos), key=lambda s: s.path)
        by_domain, by_lang, total = totals_from_shards(shards)
        funnel = self._funnel(report, total)
        gate(self.output, infos, checks, funnel.model_dump())
        write_manifest(self.output, Manifest(
            schema_version=SCHEMA_VERSION, kind="sample", created_at=datetime.now(timezone.utc).isoformat(),
            tool_version=_versions()["replaymill"], package_versions=_versions(), inputs=self.inputs,
            shards=shards, by_domain=by_domain, by_lang=by_lang, total=total,
            funnel=funnel, pooled_langs=pooled_langs_of(shards),
            token_counter=TokenCounter.model_validate(self.token_counter) if self.token_counter else None,
            extra={"sampling": {k: v for k, v in report.items() if k != "funnel"}}))
        yield self.output

    def _funnel(self, report: dict, total) -> Funnel:
        planned = report.get("funnel") or reference_funnel(*self.pool, report["selected_docs"])
        if self.recounted:  # the pool's tokens were counted by another counter: no token balance
            planned = {k: v for k, v in planned.items() if k not in ("read_tokens", "dropped_tokens")}
        return finish_funnel(planned, total.tokens)


def _read_picked(requests: beam.PCollection, root: str, feature_buckets: int = 0, tokenizer: str | None = None):
    return requests | "ReadPicked" >> beam.ParDo(_ReadPicked(root, feature_buckets, tokenizer)).with_outputs(
        _ReadPicked.FEATURES, main="docs")


def _write_all(docs: beam.PCollection, report: beam.PCollection, output: str, shardset: ShardSet,
               token_counter: dict | None, recounted: bool) -> beam.PCollection:
    """Parts in position order, then `_finish`."""
    written = (docs
               | "GroupByPart" >> beam.GroupByKey()
               | "WritePart" >> beam.ParDo(_WritePart(output)))
    return _finish(written, report, output, shardset, token_counter, recounted)


def _finish(written: beam.PCollection, report: beam.PCollection, output: str, shardset: ShardSet,
            token_counter: dict | None, recounted: bool) -> beam.PCollection:
    """The written parts read back, then the gate and the manifest from every ShardInfo and the report."""
    checks = written | "VerifyParts" >> VerifyShards(output)
    pool = (shardset.manifest.total.docs, shardset.manifest.total.tokens)
    return written | "AllShards" >> beam.combiners.ToList() | "WriteManifest" >> beam.ParDo(
        _WriteManifest(output, [shardset.root], pool, token_counter, recounted), beam.pvalue.AsSingleton(report),
        beam.pvalue.AsSingleton(checks))


def token_counting(shardset: ShardSet, tokenizer: str | None) -> tuple[str | None, dict | None]:
    """(tokenizer path to recount with, or None; the output's token counter) for a sample of
    `shardset` whose budget counts `tokenizer`'s tokens (None: the set's own n_tokens)."""
    own = shardset.manifest.token_counter
    if tokenizer is None:
        return None, own.model_dump() if own is not None else None
    from replaymill.transforms.tokens import open_tokenizer

    counter = open_tokenizer(tokenizer)[1]
    same = own is not None and own.sha256 is not None and own.sha256 == counter["sha256"]
    return (None if same else tokenizer), counter


def sample_target(p: beam.Pipeline, shardset: ShardSet, output: str, plan: TargetPlan, report: dict,
                  tokenizer: str | None = None) -> beam.PCollection:
    """Materialize a target-mixture plan (`plan_target`); returns the PCollection holding the output
    path once written. Each part is one element, written by one worker from its plan.

    `tokenizer`: the budget counts that tokenizer's tokens (recounted unless the set was built with it)."""
    recount, counter = token_counting(shardset, tokenizer)
    written = (p
               | "Parts" >> beam.Create(plan.parts)
               | "Spread" >> beam.Reshuffle()
               | "WritePart" >> beam.ParDo(_WritePlannedPart(shardset.root, output, plan.orders, plan.key_shards,
                                                             recount)))
    return _finish(written, p | "Report" >> beam.Create([report]), output, shardset, counter, bool(recount))


def sample_reference(p: beam.Pipeline, shardset: ShardSet, output: str, reference_texts: list[str], *,
                     budget: int, by: str, seed: int, num_buckets: int = dsir.NUM_BUCKETS, alpha: float = 1.0,
                     quality_temperature: float | None = None, rows_per_part: int = 10_000,
                     tokenizer: str | None = None, mode: str = "mixture") -> beam.PCollection:
    """Selection toward `reference_texts` and its materialization, all in one Beam graph.

    `mode` (DSIR_MODES): "mixture" (default) estimates the reference's mixture over the set's
    domain/lang keys (see transforms/dsir.py) and draws each key's share of the budget at random
    within the key; "stratified" takes the same shares but runs DSIR within each key; "global" is
    one Gumbel top-k over all documents (DSIR as published, which collapses onto the domain the
    reference over-represents most). Why random within a key is the default, measured in
    docs/moat.md: replay drawn this way removed as much forgetting as the base model's own held-out
    data (0.99 / 0.96 of it at 5% / 25%), in-key DSIR less (0.81 / 0.89), because toward a small
    model's samples it picks unrepresentative documents. `tokenizer`: the budget counts that
    tokenizer's tokens (recounted unless the set was built with it)."""
    if mode not in DSIR_MODES:
        raise ValueError(f"DSIR mode must be one of {', '.join(DSIR_MODES)}, got {mode!r}")
    stratify = mode != "global"
    recount, counter = token_counting(shardset, tokenizer)
    root = shardset.root
    infos = [i.model_dump() for i in shardset.shards]
    features = [dsir.feature_ids(t, num_buckets) for t in reference_texts]  # hashed once: counts and EM
    ref_counts = (np.bincount(np.concatenate(features), minlength=num_buckets) if features
                  else np.zeros(num_buckets, dtype=np.int64))
    shards = p | "Shards" >> beam.Create(list(enumerate(infos))) | "SpreadShards" >> beam.Reshuffle()
    plan = None
    if stratify:
        stats = (shards | "KeyCounts" >> beam.ParDo(_PoolCountsByKey(root, num_buckets, by, recount))
                 | "SumKeys" >> beam.CombinePerKey(_SumKeyStats()) | "KeyDict" >> beam.combiners.ToDict())
        pool = stats | "SumPool" >> beam.Map(
            lambda st: sum((v[0] for v in st.values() if v[0] is not None), np.zeros(num_buckets, dtype=np.int64)))
        in_key_dsir = mode == "stratified"
        plan = stats | "Plan" >> beam.Map(stratified_plan, features, budget, alpha, num_buckets, in_key_dsir)
        scorer = _ScoreShardInKey(root, seed, budget, by, alpha, quality_temperature, recount, in_key_dsir=in_key_dsir)
        selection = (shards
                     | "Score" >> beam.ParDo(scorer, beam.pvalue.AsSingleton(plan))
                     | "TopPerKey" >> beam.CombinePerKey(_TopByBudget(budget))
                     | "KeyBudget" >> beam.Map(lambda kv, pl: _truncate(kv[1], pl["budgets"][kv[0]]),
                                               beam.pvalue.AsSingleton(plan))
                     | "AllKeys" >> beam.CombineGlobally(_Concat()))
    else:
        pool = (shards | "PoolCounts" >> beam.ParDo(_PoolCounts(root, num_buckets))
                | "SumPool" >> beam.CombineGlobally(_SumArrays(num_buckets)))
        selection = (shards
                     | "Score" >> beam.ParDo(_ScoreShard(root, ref_counts, seed, budget, by, alpha,
                                                         quality_temperature, recount),
                                             beam.pvalue.AsSingleton(pool))
                     | "TopByBudget" >> beam.CombineGlobally(_TopByBudget(budget)))

    def to_requests(sel: list[tuple]) -> Iterator[tuple[dict, list[tuple]]]:
        picks = [(pos, s, row, 0) for pos, (_, s, row, _) in enumerate(sel)]
        parts = assign_parts(picks, [ShardInfo(**i) for i in infos], rows_per_part)
        for s, items in sorted(parts.items()):
            yield infos[s], items

    reqs = selection | "Requests" >> beam.FlatMap(to_requests) | "Spread" >> beam.Reshuffle()
    picked = _read_picked(reqs, root, num_buckets, recount)
    selected_counts = picked[_ReadPicked.FEATURES] | "SumSelected" >> beam.CombineGlobally(_SumArrays(num_buckets))
    base = {"mode": "reference", "by": by, "budget": budget, "seed": seed, "on_short": "n/a",
            "quality_temperature": quality_temperature, "pool_docs": shardset.manifest.total.docs,
            "dsir": {"num_buckets": num_buckets, "ngrams": [1, 2], "alpha": alpha,
                     "reference_docs": len(reference_texts), "mode": mode, "stratified": stratify}}

    def build_report(_, sel, pool_c, sel_c, pl=None):
        report = _selection_report(sel, pool_c, sel_c, ref_counts, infos, base)
        if pl is not None:
            report["dsir"]["estimated_mixture"] = pl["estimate"]
            report["dsir"]["left_out_keys"] = pl["left_out"]
        return report

    sides = [beam.pvalue.AsSingleton(selection), beam.pvalue.AsSingleton(pool), beam.pvalue.AsSingleton(selected_counts)]
    if plan is not None:
        sides.append(beam.pvalue.AsSingleton(plan))
    report = p | "ReportSeed" >> beam.Create([None]) | "BuildReport" >> beam.Map(build_report, *sides)
    return _write_all(picked.docs, report, output, shardset, counter, bool(recount))
