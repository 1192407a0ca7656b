"""Audit of finished shard sets: stream every shard once, projected to the columns the audit needs.

Single process by design: shards already carry every tag (domain, language, quality, cluster
sizes), so auditing them is a columnar scan, not a pipeline; the counting columns of one shard are a
few bytes per document, and one shard at a time is in memory, so memory is flat in the number of
shards. `text` is decoded only for the distinct-text sketch and the contamination check (both
optional). For shard sets far larger than one machine reads in reasonable time, the same
accumulators merge across processes (`AuditStats.merge`), exactly as the Beam audit of raw input does.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from replaymill.audit.contamination import ContaminationIndex, ContaminationStats
from replaymill.audit.funnel import merge_funnels
from replaymill.audit.stats import DISTINCT_COLUMNS, STAT_COLUMNS, AuditStats
from replaymill.schemas.manifest import Manifest
from replaymill.shards.reader import ShardSet

BATCH_ROWS = 1024


def is_shard_set(path: str) -> bool:
    """True when `path` holds a `_manifest.json` (a finished build, sample or reshard output)."""
    from apache_beam.io.filesystems import FileSystems

    from replaymill.schemas.manifest import MANIFEST_NAME

    return FileSystems.exists(FileSystems.join(path, MANIFEST_NAME))


def audit_shard_sets(
    roots: list[str], *, distinct: bool = True, text_identity: str = "exact", index: ContaminationIndex | None = None,
    verify: bool = True, on_rows: Callable[[int], None] | None = None, manifests: list[Manifest] | None = None,
) -> tuple[AuditStats, ContaminationStats | None, dict[str, Any] | None]:
    """(stats, contamination tally, summed manifest funnel or None) over one or more shard sets.

    `text_identity` defaults to "exact": a built set was deduplicated on normalized text already
    (see `audit.stats.DistinctSketches`). `on_rows(n)` hears each batch of rows scanned (progress).
    `manifests` (one per root, in order) are the roots' manifests a caller already read; without
    them each root's manifest is read here."""
    stats = AuditStats(distinct=distinct, text_identity=text_identity)
    cont = ContaminationStats() if index is not None else None
    columns = list(STAT_COLUMNS)
    if distinct:
        columns += list(DISTINCT_COLUMNS)
    if index is not None:
        columns += [c for c in ("id", "text") if c not in columns]
    funnels = []
    for i, root in enumerate(roots):
        if manifests is None:
            shardset = ShardSet.open(root, verify=verify, cache_shards=0)
        else:
            shardset = ShardSet(str(root), manifests[i], verify=verify, cache_shards=0)
        funnels.append(shardset.manifest.funnel.model_dump())
        for info in shardset.shards:
            table = shardset.read_table(info, columns)
            for batch in table.to_batches(max_chunksize=BATCH_ROWS):
                stats.add_table(batch)
                if on_rows is not None:
                    on_rows(batch.num_rows)
                if index is not None:
                    cont.add(index.query(batch.column("id").to_pylist(), batch.column("text").to_pylist()))
    funnel = merge_funnels(funnels)
    has_funnel = funnel["read"] or funnel["kept"] or funnel["dropped"]
    return stats, cont, (funnel if has_funnel else None)
