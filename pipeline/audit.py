"""Beam audit of raw corpora: Read -> Annotate (nothing filtered) -> one mergeable accumulator.

Raw input carries no tags, so the audit computes them with the very transforms `build` uses
(`ReadCorpus`, `Annotate` with a recipe that drops nothing), then folds documents into
`audit.stats.AuditStats` partials, one per batch (vectorized), merged by `CombineGlobally`. Memory
is flat: a worker holds one batch and one accumulator of fixed size; the runner merges partials
in any order, which the accumulator's exact, commutative merge allows. The single combined result
is written as one JSON file with Beam's `WriteToText`, so it works on any runner and filesystem.

The contamination index (small: an evaluation set) travels pickled inside the DoFn, the portable
way to ship a read-only in-memory structure to every worker.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, Iterable

import apache_beam as beam

from replaymill.audit.contamination import ContaminationIndex, ContaminationStats
from replaymill.audit.stats import AuditStats
from replaymill.pipeline.annotate import Annotate
from replaymill.pipeline.sources import ReadCorpus
from replaymill.schemas.filters import QualityConfig
from replaymill.schemas.recipe import Recipe


def audit_recipe() -> Recipe:
    """A recipe that tags everything and drops nothing (all rule sets off, no length bounds, all languages)."""
    return Recipe(name="audit", description="tag only: every document kept",
                  quality=QualityConfig(min_chars=0, max_chars=sys.maxsize))


@dataclass(frozen=True)
class PartialSpec:
    """What every partial accumulates (all partials of one run must agree, or they cannot merge)."""

    distinct: bool = True
    text_identity: str = "normalized"
    contamination: bool = False

    def new(self) -> "Partial":
        return Partial(AuditStats(distinct=self.distinct, text_identity=self.text_identity),
                       ContaminationStats() if self.contamination else None)


class Partial:
    """Audit stats and (optional) contamination tally of part of the input; merges exactly."""

    def __init__(self, stats: AuditStats, cont: ContaminationStats | None):
        self.stats = stats
        self.cont = cont

    def merge(self, other: "Partial") -> "Partial":
        self.stats.merge(other.stats)
        if other.cont is not None:
            self.cont = self.cont.merge(other.cont) if self.cont is not None else other.cont
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"stats": self.stats.to_dict(), "contamination": self.cont.to_dict() if self.cont else None}


class AccumulateBatch(beam.DoFn):
    """One batch of annotated documents -> one Partial (vectorized stats + contamination query)."""

    def __init__(self, spec: PartialSpec, index: ContaminationIndex | None):
        self.spec = spec
        self.index = index

    def process(self, docs: list[dict[str, Any]]) -> Iterable[Partial]:
        part = self.spec.new()
        part.stats.add_documents(docs)
        if self.index is not None:
            part.cont.add(self.index.query([d["id"] for d in docs], [d["text"] for d in docs]))
        beam.metrics.Metrics.counter("audit", "documents").inc(len(docs))
        yield part


def _rejects_partial(rejects: list[dict[str, Any]], spec: PartialSpec) -> Partial:
    """Reject records (reader or annotate) counted by `stage:reason`, for the funnel."""
    part = spec.new()
    for r in rejects:
        part.stats.add_rejects(f"{r.get('stage', 'read')}:{r.get('reason', 'unknown')}")
    return part


class MergePartials(beam.CombineFn):
    """CombineFn whose inputs are already accumulators: merging is the whole job."""

    def __init__(self, spec: PartialSpec):
        self.spec = spec

    def create_accumulator(self) -> Partial:
        return self.spec.new()

    def add_input(self, acc: Partial, part: Partial) -> Partial:
        return acc.merge(part)

    def merge_accumulators(self, accs: Iterable[Partial]) -> Partial:
        accs = iter(accs)
        first = next(accs)
        for a in accs:
            first.merge(a)
        return first

    def extract_output(self, acc: Partial) -> str:
        return json.dumps(acc.to_dict(), separators=(",", ":"))


class AuditCorpus(beam.PTransform):
    """patterns -> a PCollection with one JSON string: `{"stats": ..., "contamination": ...}`."""

    def __init__(self, patterns: list[str], *, distinct: bool = True, text_identity: str = "normalized",
                 index: ContaminationIndex | None = None, batch_size: int = 512):
        super().__init__()
        self.patterns = patterns
        self.spec = PartialSpec(distinct, text_identity, index is not None)
        self.index = index
        self.batch_size = batch_size

    def expand(self, root: beam.pvalue.PBegin) -> beam.PCollection:
        docs, read_rejects = root | "Read" >> ReadCorpus(self.patterns)
        kept, annotate_rejects = docs | "Annotate" >> Annotate(audit_recipe())
        doc_parts = (
            kept
            | "BatchDocs" >> beam.BatchElements(min_batch_size=min(64, self.batch_size), max_batch_size=self.batch_size)
            | "Accumulate" >> beam.ParDo(AccumulateBatch(self.spec, self.index))
        )
        reject_parts = (
            (read_rejects, annotate_rejects)
            | "AllRejects" >> beam.Flatten()
            | "BatchRejects" >> beam.BatchElements(min_batch_size=1, max_batch_size=4096)
            | "CountRejects" >> beam.Map(_rejects_partial, self.spec)
        )
        return (
            (doc_parts, reject_parts)
            | "AllParts" >> beam.Flatten()
            | "Merge" >> beam.CombineGlobally(MergePartials(self.spec))
        )


def run_audit(patterns: list[str], out_path: str, options, *, distinct: bool = True,
              text_identity: str = "normalized", index: ContaminationIndex | None = None, progress: bool = False,
              runner: str = "DirectRunner") -> None:
    """Run the audit pipeline; the combined result is the single file `out_path` (any Beam filesystem).
    `progress`: bars with an ETA (input bytes read, documents tagged) on a terminal."""
    from replaymill.pipeline.progress import ProgressView, Task, graph_reporting
    from replaymill.pipeline.sources import match_inputs

    size = sum(s.size for s in match_inputs(patterns))
    view = ProgressView([Task("read.bytes", "read", total=size or None, unit="bytes", detail={"read.docs": "docs"}),
                         Task("annotate.docs", "tag", unit="docs")], enabled=None if progress else False)
    p = beam.Pipeline(options=options)
    with graph_reporting(view, runner):
        (p
         | "Audit" >> AuditCorpus(patterns, distinct=distinct, text_identity=text_identity, index=index)
         | "Write" >> beam.io.WriteToText(out_path, shard_name_template="", num_shards=1))
    view.run(p)


def read_result(path: str) -> tuple[AuditStats, ContaminationStats | None]:
    """The stats and contamination tally `run_audit` wrote."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as f:
        d = json.loads(f.read().decode("utf-8"))
    cont = ContaminationStats.from_dict(d["contamination"]) if d["contamination"] else None
    return AuditStats.from_dict(d["stats"]), cont
