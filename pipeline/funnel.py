"""The funnel of a build, computed as data inside the pipeline, and its terminal rendering.

`read` = documents the readers produced + reader rejects (records that could not become documents);
`dropped` = rejects of every stage counted per reason; `kept` = documents reaching the sink.
So `read == kept + sum(dropped.values())` whenever every stage accounts for what it drops, which
the tests check. All three are counted by Beam combines and meet in one singleton, so nothing
passes through driver memory; the CLI renders the table afterwards from the manifest alone.
"""
from __future__ import annotations

from typing import Any

import apache_beam as beam

from replaymill.schemas.manifest import Manifest

DEDUP_REASONS = ("exact_duplicate", "near_duplicate")


def _assemble(read_docs: int, reader_rejects: int, dropped: dict[str, int], kept: int) -> dict[str, Any]:
    return {
        "read": int(read_docs) + int(reader_rejects),
        "dropped": {k: int(v) for k, v in sorted(dropped.items())},
        "kept": int(kept),
    }


class ComputeFunnel(beam.PTransform):
    """`funnel = pipeline | ComputeFunnel(read_docs, reader_rejects, all_rejects, kept)`: one Funnel dict."""

    def __init__(self, read_docs: beam.PCollection, reader_rejects: beam.PCollection,
                 all_rejects: beam.PCollection, kept: beam.PCollection):
        super().__init__()
        self.read_docs = read_docs
        self.reader_rejects = reader_rejects
        self.all_rejects = all_rejects
        self.kept = kept

    def expand(self, root: beam.pvalue.PBegin) -> beam.PCollection:
        n_read = self.read_docs | "CountRead" >> beam.combiners.Count.Globally()
        n_reader_rejects = self.reader_rejects | "CountReaderRejects" >> beam.combiners.Count.Globally()
        n_kept = self.kept | "CountKept" >> beam.combiners.Count.Globally()
        dropped = (
            self.all_rejects
            | "Reason" >> beam.Map(lambda r: r.get("reason") or "unknown")
            | "PerReason" >> beam.combiners.Count.PerElement()
            | "AsDict" >> beam.combiners.ToDict()
        )
        return n_read | "Assemble" >> beam.Map(
            _assemble,
            reader_rejects=beam.pvalue.AsSingleton(n_reader_rejects),
            dropped=beam.pvalue.AsSingleton(dropped),
            kept=beam.pvalue.AsSingleton(n_kept),
        )


def render_funnel(manifest: Manifest, console: Any = None) -> None:
    """Print the funnel and the per domain x language table of a finished build (rich)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    f = manifest.funnel
    funnel = Table(title="Build funnel", show_header=True, header_style="bold")
    funnel.add_column("stage")
    funnel.add_column("documents", justify="right")
    funnel.add_column("share of read", justify="right")

    def pct(n: int) -> str:
        return f"{100.0 * n / f.read:.1f}%" if f.read else "-"

    funnel.add_row("read", f"{f.read:,}", pct(f.read))
    for reason, n in f.dropped.items():
        if reason not in DEDUP_REASONS:
            funnel.add_row(f"  dropped: {reason}", f"{n:,}", pct(n))
    for reason in DEDUP_REASONS:
        if reason in f.dropped:
            funnel.add_row(f"  deduplicated: {reason}", f"{f.dropped[reason]:,}", pct(f.dropped[reason]))
    funnel.add_row("kept", f"{f.kept:,}", pct(f.kept), style="bold")
    console.print(funnel)

    cells: dict[tuple[str, str], list[int]] = {}
    for s in manifest.shards:
        c = cells.setdefault((s.domain, s.lang), [0, 0, 0])
        c[0] += s.rows
        c[1] += s.tokens
        c[2] += 1
    grid = Table(title="Kept, per domain x language", show_header=True, header_style="bold")
    for name, justify in (("domain", "left"), ("lang", "left"), ("docs", "right"), ("tokens", "right"), ("shards", "right")):
        grid.add_column(name, justify=justify)
    for (domain, lang), (docs, tokens, n) in sorted(cells.items(), key=lambda kv: -kv[1][1]):
        grid.add_row(domain, lang, f"{docs:,}", f"{tokens:,}", str(n))
    grid.add_row("total", "", f"{manifest.total.docs:,}", f"{manifest.total.tokens:,}", str(len(manifest.shards)), style="bold")
    console.print(grid)
