"""Re-shard big compressed JSONL into many smaller zstd JSONL parts, so later builds parallelize.

Why: a .gz or .zst stream cannot be entered in the middle, so Beam reads each compressed file on
one worker from start to end; a corpus delivered as a few huge `.jsonl.gz` files builds no faster
on 100 workers than on a few. Uncompressed JSONL does not need this (it splits by byte ranges).
Reshard pays the sequential decompression once: each input file is streamed line by line on one
worker (files spread over workers), lines are spread round-robin over N output parts by Beam's file
sink, and every part is written as zstd JSONL through temp files that are renamed when complete.

Lines are copied as raw bytes, not parsed: judging records is the build's job, and a bad line
must reach the build's dead-letter output rather than vanish here. A truncated or corrupt input
keeps the lines decoded before the damage and yields a reject record (reason `truncated_file` or
`unreadable_file`, as the readers name them), counted in `_reshard.json`.

Layout: `OUT/part-NNNNN-of-MMMMM.jsonl.zst` and `OUT/_reshard.json` (written last, atomically).
Order of lines inside a part is not fixed (it depends on the runner); the set of lines is.
"""
from __future__ import annotations

import json
import lzma
import math
import zlib
from datetime import datetime, timezone
from typing import Any, Iterator

import apache_beam as beam
import zstandard
from apache_beam.io.filesystem import CompressionTypes

from replaymill.pipeline.readers import classify, iter_lines, line_is_whole, open_decompressed, open_raw
from replaymill.pipeline.rejects import RejectEmitter
from replaymill.schemas.reject import make_reject
from replaymill.shards.io import join, write_bytes_atomic
from replaymill.transforms.records import TOO_LARGE, TRUNCATED_FILE, UNREADABLE_FILE, is_blank_line

SUMMARY_NAME = "_reshard.json"
PART_PREFIX = "part"
PART_SUFFIX = ".jsonl.zst"
STAGE = "reshard"
REJECTS = "rejects"
MAX_LINE_BYTES = 32 << 20  # as the build's default max_record_bytes: longer lines would be rejected there too


def parts_for(total_bytes: int, part_bytes: int) -> int:
    """How many parts give parts of about `part_bytes` (compressed zstd is close to compressed gzip)."""
    if part_bytes <= 0:
        raise ValueError("part_bytes must be positive")
    return max(1, math.ceil(total_bytes / part_bytes))


class _StreamLines(beam.DoFn):
    """Streams one file's lines as raw bytes (decompressed by the readers' truncation-aware codecs)."""

    def __init__(self, max_line_bytes: int):
        self.max_line_bytes = max_line_bytes
        self._rejects = RejectEmitter(STAGE, REJECTS)

    def process(self, path: str) -> Iterator[Any]:
        _, codec = classify(path)
        lines = 0
        try:
            with open_raw(path) as raw:
                stream = open_decompressed(raw, codec)
                for line in iter_lines(stream, self.max_line_bytes):
                    if not line_is_whole(line):
                        yield self._rejects.emit(make_reject(
                            TOO_LARGE, id=f"{path}@{line.offset}", source=path, stage=STAGE,
                            detail=f"line of {line.size} bytes over {self.max_line_bytes}", sample=line.data[:800]))
                    elif not is_blank_line(line.data):
                        lines += 1
                        yield line.data.rstrip(b"\r\n")
        except (EOFError, OSError, zlib.error, zstandard.ZstdError, lzma.LZMAError) as exc:
            # A cut or corrupt stream: the lines before the damage are kept, the damage is reported.
            reason = TRUNCATED_FILE if isinstance(exc, EOFError) else UNREADABLE_FILE
            detail = f"{type(exc).__name__}: {exc} (after {lines} lines)"
            yield self._rejects.emit(make_reject(reason, source=path, detail=detail, stage=STAGE))


class _WriteSummary(beam.DoFn):
    """Writes `_reshard.json` once, after every part is final (it consumes the sink's file list)."""

    def __init__(self, output: str, inputs: list[str]):
        self.output = output
        self.inputs = inputs

    def process(self, _: Any, parts: list[str], lines: list[int], rejects: list[dict]) -> Iterator[str]:
        dropped: dict[str, int] = {}
        for r in rejects:
            dropped[r["reason"]] = dropped.get(r["reason"], 0) + 1
        summary = {
            "kind": "reshard",
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "inputs": self.inputs,
            "parts": sorted(p.rsplit("/", 1)[-1] for p in parts),
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
        return (
            root
            | "Once" >> beam.Create([None])
            | "WriteSummary" >> beam.ParDo(
                _WriteSummary(self.output, self.files),
                parts=beam.pvalue.AsList(parts),
                lines=beam.pvalue.AsList(lines),
                rejects=beam.pvalue.AsList(read[REJECTS]),
            )
        )
