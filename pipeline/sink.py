"""The Arrow sink: deterministic, size-bounded, Hive-partitioned shards, then the manifest, last.

Layout: `OUT/domain=<d>/lang=<l>/part-NNNNN.arrow` (+ `OUT/_manifest.json`, + optional `OUT/_rejects/`).

Why this shape (runner-portable, nothing through driver memory):
1. A combine counts the raw bytes of each (domain, lang) partition.
2. That count reaches a DoFn as a side input, which gives each document the bucket
   `stable_hash(id) mod ceil(bytes / (max_shard_bytes / HEADROOM))`: the shard a document lands in
   depends only on its id and the partition's size, never on worker count or arrival order.
3. A GroupByKey on (domain, lang, bucket) gathers one shard's rows; they are sorted by
   (id, source, url, content hash), a total order even when ids repeat, and written atomically by `shards.io.write_shard` (temp name, then rename). A bucket whose rows
   still exceed the bound (an unlucky hash) is split, in id order, into `part-NNNNN-K.arrow`.
4. Every write emits a ShardInfo; `CombineGlobally` gathers them into one element only after
   every shard is written, every shard is read back (`pipeline.integrity.VerifyShards`), and a
   final DoFn runs the integrity gate and writes `_manifest.json` from it plus the funnel.
   The manifest's presence therefore means the set is whole and checked.

Resume guarantee: a crashed run leaves no half shard under a final name (atomic renames) and no
manifest; re-running the same build over the same output rewrites the same shard names with the
same bytes (deterministic sharding and row order) and then writes the manifest. The CLI writes
into a staging directory under the output root and swaps the finished set in (`pipeline.staging`),
so no stale shard of an earlier run can survive into the new set.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

import apache_beam as beam
import pyarrow as pa

from replaymill.pipeline import progress
from replaymill.pipeline.integrity import VerifyShards, gate
from replaymill.schemas.document import COLUMN_NAMES, SCHEMA_VERSION, to_record_batch
from replaymill.schemas.manifest import (
    MANIFEST_NAME, PARTITION_VALUE, POOLED_LANG, Funnel, Manifest, ShardInfo, TokenCounter, Totals,
    pooled_langs_of, totals_from_shards,
)
from replaymill.shards.io import join, write_manifest, write_shard
from replaymill.transforms.order import sort_total

# Buckets are sized for max_shard_bytes / HEADROOM of raw text so hash imbalance rarely splits one.
HEADROOM = 2.0
# Per-row bytes added to the text and metadata lengths when estimating a row's raw size.
ROW_OVERHEAD = 256
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
log = logging.getLogger(__name__)


def partition_value(value: str | None, default: str) -> str:
    """A Hive partition value that is safe in a path (no '/', '=' or spaces, not '.' or '..'):
    what `schemas.manifest.PARTITION_VALUE` accepts, so every set the build writes reads back."""
    if not value:
        return default
    clean = _UNSAFE.sub("_", value)
    return clean if PARTITION_VALUE.match(clean) else clean.replace(".", "_")


def finalize_row(doc: dict[str, Any]) -> dict[str, Any]:
    """Exactly the schema's columns, with the partition columns filled so file and path agree."""
    row = {name: doc.get(name) for name in COLUMN_NAMES}
    row["domain"] = partition_value(row["domain"], "other")
    row["lang"] = partition_value(row["lang"], "und")
    return row


def row_bytes(row: dict[str, Any]) -> int:
    """Raw (uncompressed) size estimate of one row; zstd shards are smaller, so the bound holds."""
    return len(row["text"].encode("utf-8")) + len((row.get("metadata") or "").encode("utf-8")) + ROW_OVERHEAD


def stable_hash(text: str) -> int:
    """A hash that is the same in every process and on every machine (unlike Python's `hash`)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def num_buckets(partition_bytes: int, max_shard_bytes: int) -> int:
    """How many shards a partition of `partition_bytes` raw bytes is spread over."""
    return max(1, math.ceil(partition_bytes * HEADROOM / max_shard_bytes))


def shard_path(domain: str, lang: str, bucket: int, part: int) -> str:
    """Relative path of a shard; `part` > 0 only when one bucket had to be split."""
    suffix = f"-{part}" if part else ""
    return f"domain={domain}/lang={lang}/part-{bucket:05d}{suffix}.arrow"


def split_by_size(rows: list[dict[str, Any]], max_bytes: int) -> list[list[dict[str, Any]]]:
    """Consecutive runs of rows whose raw size stays under `max_bytes` (a lone oversized row gets its own)."""
    chunks: list[list[dict[str, Any]]] = [[]]
    size = 0
    for row in rows:
        b = row_bytes(row)
        if chunks[-1] and size + b > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(row)
        size += b
    return chunks if chunks[0] else []


def partition_layout(sizes: dict[tuple[str, str], int], min_partition_bytes: int) -> dict[tuple[str, str], str]:
    """(domain, lang) -> the language directory its rows go to: its own, or the domain's pooled
    `lang=other` for languages under `min_partition_bytes` when at least two are that small (the
    domain's largest language always keeps its own). Depends only on the sizes: deterministic."""
    layout = {key: key[1] for key in sizes}
    if min_partition_bytes <= 0:
        return layout
    langs_of: dict[str, list[str]] = {}
    for domain, lang in sizes:
        langs_of.setdefault(domain, []).append(lang)
    for domain, langs in langs_of.items():
        largest = max(langs, key=lambda lang: (sizes[(domain, lang)], lang))
        small = [lang for lang in langs if lang != largest and sizes[(domain, lang)] < min_partition_bytes]
        if len(small) >= 2:
            layout.update(((domain, lang), POOLED_LANG) for lang in small)
    return layout


def lang_totals(rows: list[dict[str, Any]]) -> dict[str, Totals]:
    """Documents, tokens and characters per real language of a pooled shard's rows."""
    out: dict[str, Totals] = {}
    for row in rows:
        t = out.setdefault(row["lang"], Totals())
        t.docs += 1
        t.tokens += int(row.get("n_tokens") or 0)
        t.chars += int(row.get("n_chars") or 0)
    return dict(sorted(out.items()))


class _AssignBucket(beam.DoFn):
    """Keys each row by (domain, partition language, bucket) using the partition sizes side input."""

    def __init__(self, max_shard_bytes: int, min_partition_bytes: int = 0):
        self.max_shard_bytes = max_shard_bytes
        self.min_partition_bytes = min_partition_bytes
        self._plan: tuple[int, dict, dict] | None = None

    def _layout(self, sizes: dict[tuple[str, str], int]) -> tuple[dict, dict]:
        """(directory language per partition, raw bytes per directory), computed once per side input."""
        if self._plan is None or self._plan[0] != id(sizes):
            layout = partition_layout(sizes, self.min_partition_bytes)
            dir_bytes: dict[tuple[str, str], int] = {}
            for (domain, lang), n in sizes.items():
                key = (domain, layout[(domain, lang)])
                dir_bytes[key] = dir_bytes.get(key, 0) + n
            self._plan = (id(sizes), layout, dir_bytes)
        return self._plan[1], self._plan[2]

    def process(self, row: dict[str, Any], sizes: dict[tuple[str, str], int]) -> Iterator[Any]:
        layout, dir_bytes = self._layout(sizes)
        lang = layout[(row["domain"], row["lang"])]
        n = num_buckets(dir_bytes[(row["domain"], lang)], self.max_shard_bytes)
        yield (row["domain"], lang, stable_hash(row["id"]) % n), row


class _WriteShard(beam.DoFn):
    """Sorts one bucket's rows in the total order (id, source, url, content hash) and writes them as one (rarely several) atomic Arrow shard."""

    def __init__(self, root: str, max_shard_bytes: int):
        self.root = root
        self.max_shard_bytes = max_shard_bytes
        self._progress = progress.reporter()

    def process(self, element: tuple[tuple[str, str, int], Iterable[dict[str, Any]]]) -> Iterator[dict]:
        (domain, lang, bucket), rows = element
        ordered = sort_total(list(rows))
        for part, chunk in enumerate(split_by_size(ordered, self.max_shard_bytes)):
            table = pa.Table.from_batches([to_record_batch(chunk)])
            info = write_shard(self.root, shard_path(domain, lang, bucket, part), table, domain, lang)
            if lang == POOLED_LANG:
                info = info.model_copy(update={"langs": lang_totals(chunk)})
            log.debug("wrote %s: %d rows, %.1f MB", info.path, info.rows, info.bytes / 1e6)
            self._progress.add("write.rows", info.rows)
            self._progress.add("write.shards")
            yield info.model_dump()

    def finish_bundle(self) -> None:
        self._progress.flush()


class WriteShards(beam.PTransform):
    """`shard_infos = docs | WriteShards(out, max_shard_bytes, min_partition_bytes)`: one ShardInfo dict
    per written file; small languages of a domain pooled in `lang=other` (`partition_layout`)."""

    def __init__(self, output: str, max_shard_bytes: int, min_partition_bytes: int = 0):
        super().__init__()
        self.output = output
        self.max_shard_bytes = max_shard_bytes
        self.min_partition_bytes = min_partition_bytes

    def expand(self, docs: beam.PCollection) -> beam.PCollection:
        rows = docs | "FinalizeRows" >> beam.Map(finalize_row)
        sizes = (
            rows
            | "PartitionBytes" >> beam.Map(lambda r: ((r["domain"], r["lang"]), row_bytes(r)))
            | "SumBytes" >> beam.CombinePerKey(sum)
        )
        return (
            rows
            | "AssignBucket" >> beam.ParDo(_AssignBucket(self.max_shard_bytes, self.min_partition_bytes), sizes=beam.pvalue.AsDict(sizes))
            | "GroupShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.ParDo(_WriteShard(self.output, self.max_shard_bytes))
        )


def manifest_from_parts(
    shard_dicts: list[dict],
    funnel: dict,
    *,
    inputs: list[str],
    recipe: dict,
    package_versions: dict[str, str],
    tool_version: str,
    extra: dict | None = None,
    token_counter: dict | None = None,
) -> Manifest:
    """The manifest of a finished set: shards in path order, totals summed from them, the funnel."""
    shards = sorted((ShardInfo.model_validate(s) for s in shard_dicts), key=lambda s: s.path)
    by_domain, by_lang, total = totals_from_shards(shards)
    return Manifest(
        schema_version=SCHEMA_VERSION,
        kind="build",
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        tool_version=tool_version,
        package_versions=package_versions,
        inputs=list(inputs),
        recipe=recipe,
        shards=shards,
        by_domain=by_domain,
        by_lang=by_lang,
        total=total,
        funnel=Funnel.model_validate(funnel),
        pooled_langs=pooled_langs_of(shards),
        token_counter=TokenCounter.model_validate(token_counter or {}),
        extra=extra or {},
    )


def relative_to(root: str, path: str) -> str:
    """`path` below `root` as a relative '/' path (manifests list files relative to their set)."""
    prefix = root.rstrip("/") + "/"
    if "://" not in root:
        return os.path.relpath(os.path.abspath(path), os.path.abspath(root)).replace(os.sep, "/")
    if not path.startswith(prefix):
        raise ValueError(f"{path} is not under {root}")
    return path[len(prefix):]


class _WriteManifest(beam.DoFn):
    """Runs once, on the single list of all ShardInfos, so it can only run after every shard exists;
    the integrity gate runs first, and a broken invariant means no manifest."""

    def __init__(self, root: str, **fields: Any):
        self.root = root
        self.fields = fields

    def process(self, shard_dicts: list[dict], funnel: dict, rejects_files: list[str],
                checks: list[dict]) -> Iterator[str]:
        gate(self.root, shard_dicts, checks, funnel)
        rejects = sorted(relative_to(self.root, f) for f in rejects_files)
        manifest = manifest_from_parts(shard_dicts, funnel, extra={"rejects_files": rejects} if rejects else {},
                                       **self.fields)
        write_manifest(self.root, manifest)
        yield join(self.root, MANIFEST_NAME)


class WriteManifest(beam.PTransform):
    """`shard_infos | WriteManifest(out, funnel, rejects_files, ...)`: gathers, then writes `_manifest.json`."""

    def __init__(self, output: str, funnel: beam.PCollection, rejects_files: beam.PCollection | None, **fields: Any):
        super().__init__()
        self.output = output
        self.funnel = funnel
        self.rejects_files = rejects_files
        self.fields = fields

    def expand(self, shard_infos: beam.PCollection) -> beam.PCollection:
        rejects_files = self.rejects_files
        if rejects_files is None:
            rejects_files = shard_infos.pipeline | "NoRejectsFiles" >> beam.Create([])
        checks = shard_infos | "VerifyShards" >> VerifyShards(self.output)
        return (
            shard_infos
            | "AllShards" >> beam.combiners.ToList()
            | "Write" >> beam.ParDo(
                _WriteManifest(self.output, **self.fields),
                funnel=beam.pvalue.AsSingleton(self.funnel),
                rejects_files=beam.pvalue.AsList(rejects_files),
                checks=beam.pvalue.AsSingleton(checks),
            )
        )


class WriteRejects(beam.PTransform):
    """Reject records as gzipped JSON lines under `OUT/_rejects/`; yields the written file names."""

    def __init__(self, output: str):
        super().__init__()
        self.output = output

    def expand(self, rejects: beam.PCollection) -> beam.PCollection:
        return (
            rejects
            | "ToJson" >> beam.Map(lambda r: json.dumps(r, sort_keys=True, ensure_ascii=False))
            | "WriteJsonl" >> beam.io.WriteToText(
                join(self.output, "_rejects", "rejects"),
                file_name_suffix=".jsonl.gz",
                compression_type=beam.io.filesystem.CompressionTypes.GZIP,
            )
        )
