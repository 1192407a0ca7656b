"""Re-shard big compressed JSONL into many smaller zstd JSONL parts, so later builds parallelize.

Why: a .gz or .zst stream cannot be entered in the middle, so Beam reads each compressed file on
one worker from start to end; a corpus delivered as a few huge `.jsonl.gz` files builds no faster
on 100 workers than on a few. Uncompressed JSONL does not need this (it splits by byte ranges).
Reshard pays the sequential decompression once: each input file is streamed line by line on one
worker (files spread over workers), lines are spread round-robin over N output parts by Beam's file
sink, and every part is written as zstd JSONL through temp files that are renamed when complete.

Inputs are read exactly as the build reads them (`readers.work_item` and `readers.iter_jsonl_lines`):
the codec comes from the file's first bytes, not its name (plain JSONL named `.gz`, zstd named
`.gz`, gzip named `.jsonl`), and a tar (`*.jsonl.zst.tar`) is opened member by member, so reshard
never loses or garbles a document the build would keep. Other formats (WARC, Parquet) hold no
lines to copy and are reported as `unsupported_format`.

Lines are copied as raw bytes, not parsed: judging records is the build's job, and a bad line
must reach the build's dead-letter output rather than vanish here. A truncated or corrupt input
keeps the lines decoded before the damage and yields a reject record (reason `truncated_file` or
`unreadable_file`, as the readers name them), counted in `_reshard.json`.

Layout: `OUT/part-NNNNN-of-MMMMM.jsonl.zst` and `OUT/_reshard.json` (written last, atomically,
after the integrity gate: every part read back, listed once, its lines recounted; `part_files`
records each part's lines, bytes and sha256).
Order of lines inside a part is not fixed (it depends on the runner); the set of lines is.
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any, Iterator

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes

from replaymill.pipeline import progress
from replaymill.pipeline.integrity import check_parts, count_part
from replaymill.pipeline.readers import (
    LINE_FORMATS, SourceLine, is_truncation, iter_jsonl_lines, line_is_whole, work_item,
)
from replaymill.pipeline.staging import RESHARD_SEAL
from replaymill.pipeline.rejects import RejectEmitter
from replaymill.schemas.reject import make_reject
from replaymill.shards.io import join, write_bytes_atomic
from replaymill.transforms.records import TOO_LARGE, TRUNCATED_FILE, UNREADABLE_FILE, UNSUPPORTED_FORMAT, is_blank_line

SUMMARY_NAME = RESHARD_SEAL
PART_PREFIX = "part"
PART_SUFFIX = ".jsonl.zst"
STAGE = "reshard"
REJECTS = "rejects"
MAX_LINE_BYTES = 32 << 20  # as the build's default max_record_bytes: longer lines would be rejected there too
# Beam's file sink opens every part up front, so a mistyped count (--parts 1000000000) would fill a
# directory with empty temp files for as long as it is let run: a part gets at least MIN_PART_BYTES
# of input, and there are never more than MAX_PARTS (100,000 parts of 64 MB is 6.4 TB; more
# data wants bigger parts).
MIN_PART_BYTES = 1024
MAX_PARTS = 100_000


def parts_for(total_bytes: int, part_bytes: int) -> int:
    """How many parts give parts of about `part_bytes` (compressed zstd is close to compressed gzip)."""
    if not part_bytes > 0:
        raise ValueError("part_bytes must be positive")
    return max(1, math.ceil(total_bytes / part_bytes))


def max_parts(total_bytes: int) -> int:
    """The most parts `total_bytes` of input is split into: one per MIN_PART_BYTES, at most MAX_PARTS."""
    return max(1, min(MAX_PARTS, total_bytes // MIN_PART_BYTES))


class _StreamLines(beam.DoFn):
    """Streams one file's lines as raw bytes, read exactly as the build reads them: the codec sniffed
    from the content (`readers.work_item`), tars opened member by member (`readers.iter_jsonl_lines`)."""

    def __init__(self, max_line_bytes: int):
        self.max_line_bytes = max_line_bytes
        self._rejects = RejectEmitter(STAGE, REJECTS)
        self._progress = progress.reporter()

    def finish_bundle(self) -> None:
        self._progress.flush()

    def process(self, path: str) -> Iterator[Any]:
        item = work_item(path, path)
        with progress.metering(self._progress, "read.bytes", compressed=bool(item.codec)):
            yield from self._lines(item, path)

    def _lines(self, item, path: str) -> Iterator[Any]:
        if item.fmt not in LINE_FORMATS:
            yield self._reject(UNSUPPORTED_FORMAT, path, f"{item.name}: a {item.fmt} file holds no JSON lines to copy")
            return
        lines = 0
        try:
            for entry in iter_jsonl_lines(item, self.max_line_bytes):
                if not isinstance(entry, SourceLine):  # a tar member that is not JSONL, or is cut
                    yield self._reject(entry.reject["reason"], path, entry.reject["detail"], id=entry.reject["id"])
                elif not line_is_whole(entry.line):
                    yield self._reject(TOO_LARGE, path, f"line of {entry.line.size} bytes over {self.max_line_bytes}",
                                       id=f"{entry.name}@{entry.line.offset}", sample=entry.line.data[:800])
                elif not is_blank_line(entry.line.data):
                    lines += 1
                    self._progress.add("reshard.lines")
                    yield entry.line.data.rstrip(b"\r\n")
        except Exception as exc:  # noqa: BLE001 - a cut or corrupt input keeps the lines before the damage
            reason = TRUNCATED_FILE if is_truncation(exc) else UNREADABLE_FILE
            detail = f"{type(exc).__name__}: {exc} (after {lines} lines)".splitlines()[0][:500]
            yield self._reject(reason, path, detail)

    def _reject(self, reason: str, path: str, detail: str, **fields: Any) -> beam.pvalue.TaggedOutput:
        return self._rejects.emit(make_reject(reason, source=path, detail=detail, stage=STAGE, **fields))


class _WriteSummary(beam.DoFn):
    """Writes `_reshard.json` once, after every part is final and read back, and only if the
    integrity gate holds: every part listed once and present, its lines recounted equal to the
    lines streamed in (it consumes the sink's file list)."""

    def __init__(self, output: str, inputs: list[str]):
        self.output = output
        self.inputs = inputs

    def process(self, _: Any, parts: list[str], lines: list[int], rejects: list[dict],
                counted: list[dict]) -> Iterator[str]:
        names = sorted(p.rsplit("/", 1)[-1] for p in parts)
        check_parts(self.output, names, counted, int(sum(lines)), PART_PREFIX)
        dropped: dict[str, int] = {}
        for r in rejects:
            dropped[r["reason"]] = dropped.get(r["reason"], 0) + 1
        summary = {
            "kind": "reshard",
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "inputs": self.inputs,
            "parts": names,
            "part_files": sorted(({k: c[k] for k in ("path", "rows", "bytes", "sha256")} for c in counted),
                                 key=lambda c: c["path"]),
            "lines": int(sum(lines)),
            "dropped": dict(sorted(dropped.items())),
            "rejects": sorted(rejects, key=lambda r: r["source"] or ""),
        }
        path = join(self.output, SUMMARY_NAME)
        write_bytes_atomic(path, json.dumps(summary, indent=2).encode("utf-8"))
        yield path


class Reshard(beam.PTransform):
    """`p | Reshard(files, out, num_parts)`: the parts and `_reshard.json`; returns the summary path."""

    def __init__(self, files: list[str], output: str, num_parts: int, max_line_bytes: int = MAX_LINE_BYTES):
        super().__init__()
        if num_parts < 1:
            raise ValueError("num_parts must be >= 1")
        self.files = sorted(files)
        self.output = output
        self.num_parts = num_parts
        self.max_line_bytes = max_line_bytes

    def expand(self, root: beam.pvalue.PBegin) -> beam.PCollection:
        read = (
            root
            | "Files" >> beam.Create(self.files)
            | "SpreadFiles" >> beam.Reshuffle()
            | "StreamLines" >> beam.ParDo(_StreamLines(self.max_line_bytes)).with_outputs(REJECTS, main="lines")
        )
        parts = read.lines | "WriteParts" >> beam.io.WriteToText(
            join(self.output, PART_PREFIX),
            file_name_suffix=PART_SUFFIX,
            num_shards=self.num_parts,
            shard_name_template="-SSSSS-of-NNNNN",
            coder=beam.coders.BytesCoder(),
            compression_type=CompressionTypes.ZSTD,
        )
        lines = read.lines | "CountLines" >> beam.combiners.Count.Globally()
        output = self.output
        counted = (
            parts
            | "ReadBack" >> beam.Map(lambda path: count_part(output, path.rsplit("/", 1)[-1]))
            | "AllCounts" >> beam.combiners.ToList()
        )
        return (
            root
            | "Once" >> beam.Create([None])
            | "WriteSummary" >> beam.ParDo(
                _WriteSummary(self.output, self.files),
                parts=beam.pvalue.AsList(parts),
                lines=beam.pvalue.AsList(lines),
                rejects=beam.pvalue.AsList(read[REJECTS]),
                counted=beam.pvalue.AsSingleton(counted),
            )
        )
