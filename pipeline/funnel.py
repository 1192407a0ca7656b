"""The funnel of a build, computed as data inside the pipeline, and its terminal rendering.

`read` = documents the readers produced + reader rejects (records that could not become documents);
`dropped` = rejects of every stage counted per reason; `kept` = documents reaching the sink.
So `read == kept + sum(dropped.values())` whenever every stage accounts for what it drops, which
the tests check. Tokens are counted the same way (`dropped_tokens`, `kept_tokens`; every reject
after the reader carries its document's `n_tokens`), and `read_tokens` is their sum, so the token
column adds up too without a separate pass over the input. All of it is counted by Beam combines
meeting in one singleton, so nothing passes through driver memory; the CLI renders the table
afterwards from the manifest alone, in stage order (`audit.funnel`).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam

from replaymill.audit.funnel import FORMAT, console_for_tables, funnel_table, stage_of_reason
from replaymill.schemas.manifest import Manifest

Pair = tuple[int, int]  # (documents, tokens)


class _SumPairs(beam.CombineFn):
    """Sums (documents, tokens) pairs; order- and split-independent."""

    def create_accumulator(self) -> Pair:
        return (0, 0)

    def add_input(self, acc: Pair, value: Pair) -> Pair:
        return (acc[0] + value[0], acc[1] + value[1])

    def merge_accumulators(self, accs: Iterable[Pair]) -> Pair:
        docs = tokens = 0
        for d, t in accs:
            docs, tokens = docs + d, tokens + t
        return (docs, tokens)

    def extract_output(self, acc: Pair) -> Pair:
        return acc


def _reason_key(reject: dict[str, Any]) -> tuple[tuple[str, str], Pair]:
    reason = reject.get("reason") or "unknown"
    return (reason, stage_of_reason(reason, reject.get("stage"))), (1, int(reject.get("n_tokens") or 0))


def _assemble(read_docs: int, reader_rejects: int, per_reason: list, kept: Pair, enabled: list[str]) -> dict[str, Any]:
    dropped = {reason: int(n) for (reason, _), (n, _) in sorted(per_reason)}
    # reader rejects have no text, so no token count (rather than a misleading 0)
    dropped_tokens = {reason: int(t) for (reason, stage), (_, t) in sorted(per_reason) if stage != FORMAT}
    return {
        "read": int(read_docs) + int(reader_rejects),
        "dropped": dropped,
        "kept": int(kept[0]),
        "read_tokens": int(kept[1]) + sum(dropped_tokens.values()),
        "dropped_tokens": dropped_tokens,
        "kept_tokens": int(kept[1]),
        "stage_of": {reason: stage for (reason, stage), _ in sorted(per_reason)},
        "enabled": list(enabled),
    }


class ComputeFunnel(beam.PTransform):
    """`funnel = pipeline | ComputeFunnel(read_docs, reader_rejects, all_rejects, kept, enabled)`: one Funnel dict.

    `enabled` lists the stages the recipe switched on (`audit.funnel.enabled_stages`)."""

    def __init__(self, read_docs: beam.PCollection, reader_rejects: beam.PCollection,
                 all_rejects: beam.PCollection, kept: beam.PCollection, enabled: list[str] | None = None):
        super().__init__()
        self.read_docs = read_docs
        self.reader_rejects = reader_rejects
        self.all_rejects = all_rejects
        self.kept = kept
        self.enabled = list(enabled or [])

    def expand(self, root: beam.pvalue.PBegin) -> beam.PCollection:
        n_read = self.read_docs | "CountRead" >> beam.combiners.Count.Globally()
        n_reader_rejects = self.reader_rejects | "CountReaderRejects" >> beam.combiners.Count.Globally()
        kept = (
            self.kept
            | "KeptTokens" >> beam.Map(lambda d: (1, int(d.get("n_tokens") or 0)))
            | "SumKept" >> beam.CombineGlobally(_SumPairs())
        )
        per_reason = (
            self.all_rejects
            | "Reason" >> beam.Map(_reason_key)
            | "PerReason" >> beam.CombinePerKey(_SumPairs())
            | "AsList" >> beam.combiners.ToList()
        )
        return n_read | "Assemble" >> beam.Map(
            _assemble,
            reader_rejects=beam.pvalue.AsSingleton(n_reader_rejects),
            per_reason=beam.pvalue.AsSingleton(per_reason),
            kept=beam.pvalue.AsSingleton(kept),
            enabled=self.enabled,
        )


def layout_table(manifest: Manifest, title: str = "Kept, per domain x language") -> Any:
    """Documents, tokens and shards per (domain, language partition) of a shard set."""
    from rich import box
    from rich.table import Table

    cells: dict[tuple[str, str], list[int]] = {}
    for s in manifest.shards:
        c = cells.setdefault((s.domain, s.lang), [0, 0, 0])
        c[0] += s.rows
        c[1] += s.tokens
        c[2] += 1
    grid = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, header_style="bold")
    for name, justify in (("domain", "left"), ("lang", "left"), ("docs", "right"), ("tokens", "right"), ("shards", "right")):
        grid.add_column(name, justify=justify, no_wrap=True)
    for (domain, lang), (docs, tokens, n) in sorted(cells.items(), key=lambda kv: -kv[1][1]):
        grid.add_row(domain, lang, f"{docs:,}", f"{tokens:,}", str(n))
    grid.add_row("total", "", f"{manifest.total.docs:,}", f"{manifest.total.tokens:,}", str(len(manifest.shards)), style="bold")
    return grid


def render_funnel(manifest: Manifest, console: Any = None) -> None:
    """Print the funnel (stage order, documents and tokens) and the per domain x language table (rich)."""
    console = console or console_for_tables()
    console.print(funnel_table(manifest.funnel))
    console.print(layout_table(manifest))
    if manifest.pooled_langs:
        pooled = ", ".join(f"{domain} {len(langs)}" for domain, langs in manifest.pooled_langs.items())
        console.print(f"lang=other pools small languages (under the minimum partition size; rows keep their own "
                      f"lang column): {pooled} languages; the manifest lists them under pooled_langs", soft_wrap=True)
