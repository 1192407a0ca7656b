"""Global exact deduplication: one representative per hash of normalized text, through a Beam shuffle.

Why this shape: the choice of representative must not depend on how many workers there are or on
the order documents arrive in, so it is a pure function of the cluster (the smallest
`(id, source, url, content hash)`, `transforms.order`: ids repeat in real corpora, so without the
content hash two copies with one id would tie and arrival order would pick the kept metadata), computed by a commutative, associative CombineFn. Only `(rank, count)` pairs
travel through that combine, never whole texts; the documents then meet their cluster's result in
one CoGroupByKey (the single shuffle of full documents, which any global dedup needs), where the
representative is kept with `dup_exact_count` = cluster size and every other member becomes a
reject record (`reason="exact_duplicate"`, `matched_id` = the representative's id).
"""
from __future__ import annotations

from typing import Any, Callable, Hashable, Iterable, Iterator

import apache_beam as beam

from replaymill.pipeline.rejects import RejectEmitter
from replaymill.schemas.dedup import ExactDedupConfig
from replaymill.transforms.normalize import normalize_for_dedup, text_hash
from replaymill.transforms.order import Rank, content_hash, doc_key, doc_rank

REJECTS_TAG = "rejects"
REASON = "exact_duplicate"
STAGE = "exact_dedup"

__all__ = ["ExactDedup", "MinRankCountFn", "dedup_key", "doc_rank", "Rank"]


def dedup_key(doc: dict[str, Any]) -> bytes:
    """The identity two documents share when they are exact duplicates (after normalization)."""
    return text_hash(normalize_for_dedup(doc["text"]))


class MinRankCountFn(beam.CombineFn):
    """Combines `(rank, 1)` values into `(smallest rank, cluster size)`; order- and split-independent."""

    def create_accumulator(self) -> tuple[Rank | None, int]:
        return (None, 0)

    def add_input(self, acc: tuple[Rank | None, int], value: tuple[Rank, int]) -> tuple[Rank | None, int]:
        rank, count = value
        best = rank if acc[0] is None or rank < acc[0] else acc[0]
        return (best, acc[1] + count)

    def merge_accumulators(self, accs: Iterable[tuple[Rank | None, int]]) -> tuple[Rank | None, int]:
        best, total = None, 0
        for rank, count in accs:
            if rank is not None and (best is None or rank < best):
                best = rank
            total += count
        return (best, total)

    def extract_output(self, acc: tuple[Rank | None, int]) -> tuple[Rank | None, int]:
        return acc


def _is_rank(doc: dict[str, Any], rank: Rank) -> bool:
    """`doc_rank(doc) == rank`, hashing the document only when its (id, source, url) already tie."""
    return doc_key(doc) == rank[:3] and content_hash(doc) == rank[3]


class _SplitCluster(beam.DoFn):
    """Given one key's documents and its (rank, count), keep the representative and reject the rest.

    A cluster of one is its own representative, so its document is not hashed again; in a larger
    cluster only members tied with the representative on (id, source, url) are.
    """

    def __init__(self):
        self._rejects = RejectEmitter(STAGE, REJECTS_TAG)

    def process(self, element: tuple[str, dict[str, list]]) -> Iterator[Any]:
        _, grouped = element
        (best, count), = grouped["stats"]
        kept = False
        for doc in grouped["docs"]:
            if not kept and (count == 1 or _is_rank(doc, best)):
                kept = True
                yield {**doc, "dup_exact_count": int(count)}
            else:
                matched = best[0]
                yield self._rejects.document(doc, REASON, f"exact duplicate of {matched} (cluster of {count})", matched)


class ExactDedup(beam.PTransform):
    """`kept, rejects = docs | ExactDedup(cfg)`; with `cfg.enabled` False documents pass through unchanged.

    `key` is the identity function (default: hash of normalized text); another key, e.g. the URL,
    gives URL dedup with the same deterministic representative (the Dolma comparison uses both).
    """

    def __init__(self, config: ExactDedupConfig | None = None, key: Callable[[dict[str, Any]], Hashable] = dedup_key):
        super().__init__()
        self.config = config or ExactDedupConfig()
        self.key = key

    def expand(self, docs: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        if not self.config.enabled:
            none = docs.pipeline | "NoRejects" >> beam.Create([])
            return docs, none
        key = self.key
        keyed = docs | "KeyByIdentity" >> beam.Map(lambda d: (key(d), d))
        stats = (
            keyed
            | "RankOnly" >> beam.MapTuple(lambda k, d: (k, (doc_rank(d), 1)))
            | "MinRankCount" >> beam.CombinePerKey(MinRankCountFn())
        )
        results = (
            {"docs": keyed, "stats": stats}
            | "JoinClusters" >> beam.CoGroupByKey()
            | "SplitClusters" >> beam.ParDo(_SplitCluster()).with_outputs(REJECTS_TAG, main="kept")
        )
        return results.kept, results[REJECTS_TAG]
