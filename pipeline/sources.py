"""`ReadCorpus`: the corpus-reading PTransform of `replaymill build`, and input expansion.

    docs, rejects = p | "Read" >> ReadCorpus(["gs://bucket/dolma/*.json.gz", "local/c4/"])

Inputs are matched on the driver (so a missing input fails before the pipeline starts), planned
into work items on workers (a plain JSONL file becomes byte ranges of `range_bytes`, a Parquet file
runs of row groups, everything else one item per file), spread with a Reshuffle so that one huge
file is read by many workers, and read by `pipeline.readers` inside a DoFn. Every document read is
counted (`replaymill.read/docs_read`) and every rejected record counted by reason
(`replaymill.rejects/<reason>`, through `pipeline.rejects`).
"""
from __future__ import annotations

import logging
import os
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from replaymill.pipeline import progress
from replaymill.pipeline.compression import open_raw
from replaymill.pipeline.readers import HF_SCHEME, WorkItem, classify, read_item, work_item
from replaymill.pipeline.rejects import RejectEmitter

METRICS_NAMESPACE = "replaymill.read"
DOCS_TAG = "docs"
REJECTS_TAG = "rejects"
HF_DATASET_MARKERS = ("state.json", "dataset_info.json")
HF_DATASET_DICT = "dataset_dict.json"
_GLOB_CHARS = re.compile(r"[*?\[{]")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileSpec:
    """A matched input: full path, stable name (path relative to its pattern's fixed prefix), size."""

    path: str
    name: str
    size: int


def expand_inputs(patterns: list[str]) -> list[str]:
    """Every input file the patterns name, on any Beam filesystem, in a stable order.

    Globs, single files, directories (all readable files below them) and Hugging Face datasets
    (a `save_to_disk` directory, or `hf://org/name[?config=c&split=s]`) are accepted. Raises
    FileNotFoundError with one clear line for the first pattern that matches nothing.
    """
    return [spec.path for spec in match_inputs(patterns)]


def match_inputs(patterns: list[str]) -> list[FileSpec]:
    """`expand_inputs` with names and sizes (each file once, even if several patterns match it)."""
    if not patterns:
        raise FileNotFoundError("no input given: pass at least one --input path or glob")
    specs: dict[str, FileSpec] = {}
    for pattern in patterns:
        for spec in _match_pattern(pattern):
            specs.setdefault(spec.path, spec)
    return list(specs.values())


def _match_pattern(given: str) -> list[FileSpec]:
    if given.startswith(HF_SCHEME):
        _check_hub_dataset(given)
        return [FileSpec(given, given, 0)]
    # Local patterns are made absolute: Beam's local matcher misses relative globs like "*/x.gz",
    # and workers need not share the driver's working directory.
    pattern = given if "://" in given else os.path.abspath(given)
    stripped = pattern.rstrip("/")
    if not _GLOB_CHARS.search(stripped) and (given.endswith("/") or _is_directory(stripped)):
        return _match_directory(stripped)
    try:
        metadata = FileSystems.match([pattern])[0].metadata_list
    except Exception as e:  # noqa: BLE001 - Beam raises BeamIOError / ValueError / OSError by filesystem
        raise FileNotFoundError(f"input {given!r} cannot be listed: {type(e).__name__}: {e}") from e
    root = _pattern_root(pattern)
    specs = sorted(
        (FileSpec(m.path, _relative(m.path, root), m.size_in_bytes) for m in metadata if not _is_directory(m.path)),
        key=lambda s: s.path,
    )
    if not specs:
        raise FileNotFoundError(f"input {given!r} matches no file")
    return specs


def _match_directory(directory: str) -> list[FileSpec]:
    """A Hugging Face dataset directory's Arrow files, or every readable file below a directory."""
    parent = posixpath.dirname(directory)
    parent = parent + "/" if parent else ""
    if FileSystems.exists(FileSystems.join(directory, HF_DATASET_DICT)):
        splits = [m.path for m in FileSystems.match([FileSystems.join(directory, "*", "state.json")])[0].metadata_list]
        specs = [s for split in sorted(splits) for s in _arrow_files(posixpath.dirname(split), parent)]
    elif any(FileSystems.exists(FileSystems.join(directory, m)) for m in HF_DATASET_MARKERS):
        specs = _arrow_files(directory, parent)
    else:
        metadata = FileSystems.match([FileSystems.join(directory, "**")])[0].metadata_list
        specs = sorted(
            (FileSpec(m.path, _relative(m.path, parent), m.size_in_bytes) for m in metadata
             if not _is_directory(m.path) and _is_readable_name(m.path)),
            key=lambda s: s.path,
        )
    if not specs:
        raise FileNotFoundError(f"input directory {directory!r} holds no readable corpus file")
    return specs


def _arrow_files(directory: str, parent: str) -> list[FileSpec]:
    metadata = FileSystems.match([FileSystems.join(directory, "*.arrow")])[0].metadata_list
    return sorted((FileSpec(m.path, _relative(m.path, parent), m.size_in_bytes) for m in metadata),
                  key=lambda s: s.path)


def _is_readable_name(path: str) -> bool:
    base = posixpath.basename(path)
    return not base.startswith((".", "_")) and classify(base, bare_compressed="unsupported")[0] != "unsupported"


def _is_directory(path: str) -> bool:
    """Directories exist as such only on the local filesystem; object stores have prefixes (use a glob)."""
    return "://" not in path and os.path.isdir(path)


def _pattern_root(pattern: str) -> str:
    """The fixed directory prefix of a pattern: names below it identify files across patterns."""
    glob = _GLOB_CHARS.search(pattern)
    fixed = pattern[: glob.start()] if glob else pattern
    return fixed.rsplit("/", 1)[0] + "/" if "/" in fixed else ""


def _relative(path: str, root: str) -> str:
    """`path` below `root`; with no root (a pattern relative to the working directory) the path itself."""
    if not root:
        return path
    return path[len(root):] if path.startswith(root) else posixpath.basename(path)


def _check_hub_dataset(uri: str) -> None:
    """Fail before the pipeline starts when a Hub dataset cannot be reached (e.g. no network)."""
    from replaymill.pipeline.readers import parse_hf_uri

    name, _, _ = parse_hf_uri(uri)
    try:
        from huggingface_hub import HfApi

        HfApi().dataset_info(name, timeout=10)
    except Exception as e:  # noqa: BLE001 - offline, unknown dataset, gated: all mean "cannot read"
        raise FileNotFoundError(f"input {uri!r}: Hugging Face Hub dataset not reachable ({type(e).__name__})") from e


def plan_reads(spec: FileSpec, range_bytes: int) -> Iterator[WorkItem]:
    """Work items of one input: byte ranges of plain JSONL, row-group runs of Parquet, else the file.
    Streamed formats are sniffed first (`readers.work_item`), so a misnamed compressed file is
    never split by bytes and a plain file named `.gz` is not fed to a decompressor."""
    whole = work_item(spec.path, spec.name)
    if whole.fmt == "jsonl" and not whole.codec and spec.size > range_bytes:
        for start in range(0, spec.size, range_bytes):
            yield WorkItem(whole.path, whole.name, whole.fmt, "", start, min(start + range_bytes, spec.size))
    elif whole.fmt == "parquet":
        yield from _plan_parquet(spec, whole.name, range_bytes)
    else:
        yield whole


def _plan_parquet(spec: FileSpec, name: str, range_bytes: int) -> Iterator[WorkItem]:
    """Consecutive row groups of about `range_bytes` (uncompressed) per item, read from the footer."""
    import pyarrow.parquet as pq

    try:
        with open_raw(spec.path) as raw:
            meta = pq.ParquetFile(raw).metadata
            sizes = [meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)]
    except Exception:  # noqa: BLE001 - an unreadable footer is reported when the item is read
        yield WorkItem(spec.path, name, "parquet")
        return
    start, acc = 0, 0
    for i, size in enumerate(sizes):
        acc += size
        if acc >= range_bytes:
            yield WorkItem(spec.path, name, "parquet", "", start, i + 1)
            start, acc = i + 1, 0
    if start < len(sizes) or not sizes:
        yield WorkItem(spec.path, name, "parquet", "", start, len(sizes))


class _ReadItemFn(beam.DoFn):
    """Reads one work item; documents on the main output, rejects tagged REJECTS_TAG."""

    def __init__(self, max_record_bytes: int):
        self._max_record_bytes = max_record_bytes
        self._docs_read = Metrics.counter(METRICS_NAMESPACE, "docs_read")
        self._rejects = RejectEmitter("read", REJECTS_TAG)
        self._progress = progress.reporter()

    def process(self, item: WorkItem) -> Iterator[Any]:
        docs = rejects = 0
        with progress.metering(self._progress, "read.bytes", compressed=bool(item.codec)):
            for parsed in read_item(item, self._max_record_bytes):
                if parsed.doc is not None:
                    docs += 1
                    self._docs_read.inc()
                    self._progress.add("read.docs")
                    yield parsed.doc
                else:
                    rejects += 1
                    yield self._rejects.emit(parsed.reject)
        span = "" if item.end is None else f" [{item.start}, {item.end})"
        log.debug("read %s%s: %d docs, %d rejects", item.name, span, docs, rejects)

    def finish_bundle(self) -> None:
        self._progress.flush()


class ReadCorpus(beam.PTransform):
    """Read corpora in any supported format into `(docs, rejects)` PCollections.

    `max_record_bytes` caps one record (a longer JSON line, WARC payload or row is rejected as
    `too_large` without being held in memory); `range_bytes` is the split size of plain JSONL
    files and the row-group batch size of Parquet files.
    """

    def __init__(self, patterns: list[str], *, max_record_bytes: int = 32 << 20, range_bytes: int = 64 << 20):
        super().__init__()
        if max_record_bytes <= 0 or range_bytes <= 0:
            raise ValueError("max_record_bytes and range_bytes must be positive")
        self._patterns = list(patterns)
        self._max_record_bytes = max_record_bytes
        self._range_bytes = range_bytes

    def expand(self, pbegin):
        specs = match_inputs(self._patterns)
        outputs = (
            pbegin
            | "Inputs" >> beam.Create(specs)
            | "Plan" >> beam.FlatMap(plan_reads, self._range_bytes)
            | "Spread" >> beam.Reshuffle()
            | "Parse" >> beam.ParDo(_ReadItemFn(self._max_record_bytes)).with_outputs(REJECTS_TAG, main=DOCS_TAG)
        )
        return outputs[DOCS_TAG], outputs[REJECTS_TAG]
