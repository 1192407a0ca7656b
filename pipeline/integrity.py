"""The integrity gate: checked in the graph, on the worker that writes the seal, just before it.

Why in the graph: on Dataflow, Flink, Spark or Dask replaymill cannot watch the runner, and a
runner that loses, duplicates or invents elements (issue 16: a Dask run read 20 of 10 documents
and dropped 10 as `unknown`) must fail rather than produce a set whose seal says it is whole.
If any invariant is broken, `IntegrityError` is raised: no seal is written, the staged set is never
swapped in, and the command prints the one line naming the invariant.

Invariants of a shard set (build, sample):
- funnel: `read (+ added) == kept + sum(dropped)`, and no document dropped for an `unknown` reason
  (`added`: the rows a sample writes beyond its input, its upsampled repeats);
- rows: the rows in the shard files == the rows the manifest lists == the funnel's `kept`;
- listing: every shard is listed once, and every file of the set's partitions is listed;
- checksums: every listed shard exists with the listed size and sha256.
Reshard parts are checked the same way (`check_parts`): listed once, all present, lines recounted.
"""
from __future__ import annotations

import hashlib
import logging
from collections import Counter
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from replaymill.pipeline.errors import exception_chain, without_beam_step
from replaymill.pipeline.staging import list_files
from replaymill.shards.io import TEMP_SUFFIX

GATE = "integrity gate failed"


class IntegrityError(RuntimeError):
    """One broken invariant; the message is `integrity gate failed: <invariant>: <detail>`."""

    def __init__(self, invariant: str, detail: str):
        super().__init__(f"{GATE}: {invariant}: {detail}")


class GateFailures(logging.Filter):
    """Drops a runner's or worker's log record of a gate failure (traceback included): the command
    prints the gate's one line itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return GATE not in record.getMessage() and (error is None or GATE not in str(error))


def filter_gate_failures() -> None:
    """Put `GateFailures` on every handler of the root logger (the driver's console, a worker's)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(GateFailures())


def gate_line(error: BaseException) -> str | None:
    """The gate's one line inside an error a runner re-raised (it may wrap the worker's traceback)."""
    for exc in exception_chain(error):
        for line in str(exc).splitlines():
            at = line.find(GATE)
            if at >= 0:
                return without_beam_step(line[at:]).strip().rstrip("'\"").strip()
    return None


def shard_problem(root: str, info: dict[str, Any]) -> dict[str, Any]:
    """Re-read one listed shard: `{"path", "rows", "problem"}`, problem None when size and sha256 match."""
    path = FileSystems.join(root, info["path"])
    try:
        with FileSystems.open(path, compression_type="uncompressed") as f:
            data = f.read()
    except Exception:  # noqa: BLE001 - missing or unreadable: the same broken invariant
        return {"path": info["path"], "rows": 0, "problem": "listed but missing"}
    if len(data) != info["bytes"]:
        return {"path": info["path"], "rows": 0, "problem": f"{len(data)} bytes, listed {info['bytes']}"}
    digest = hashlib.sha256(data).hexdigest()
    if digest != info["sha256"]:
        return {"path": info["path"], "rows": 0, "problem": f"sha256 {digest[:12]}..., listed {info['sha256'][:12]}..."}
    try:
        reader = pa.ipc.open_file(pa.BufferReader(data), options=pa.ipc.IpcReadOptions(included_fields=[0]))
        rows = sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
    except pa.ArrowException as e:
        return {"path": info["path"], "rows": 0, "problem": f"not a readable Arrow file ({e})"}
    return {"path": info["path"], "rows": rows, "problem": None}


class VerifyShards(beam.PTransform):
    """`checks = shard_infos | VerifyShards(root)`: one list of `shard_problem` results (a singleton)."""

    def __init__(self, root: str):
        super().__init__()
        self.root = root

    def expand(self, shard_infos: beam.PCollection) -> beam.PCollection:
        root = self.root
        return (
            shard_infos
            | "ReadBack" >> beam.Map(lambda info: shard_problem(root, info))
            | "AllChecks" >> beam.combiners.ToList()
        )


def check_funnel(funnel: dict[str, Any]) -> None:
    """`read + added == kept + dropped` (`added`: a sample's upsampled repeats), no `unknown` reason."""
    dropped = funnel.get("dropped") or {}
    if dropped.get("unknown"):
        raise IntegrityError("funnel", f"{dropped['unknown']} document(s) dropped for an unknown reason")
    total, added = sum(dropped.values()), sum((funnel.get("added") or {}).values())
    if funnel["read"] + added != funnel["kept"] + total:
        more = f" + added {added}" if added else ""
        raise IntegrityError("funnel", f"read {funnel['read']}{more} != kept {funnel['kept']} + dropped {total}")


def set_files(root: str) -> list[str]:
    """The files a dataset reader sees under `root` (not `_`/`.`-prefixed, no temp debris).

    Temp debris: an atomic write's temp file that never got renamed (a retried bundle's), not part
    of the set; the swap moves listed files only, so it is removed with the staging directory."""
    return [f for f in list_files(root) if f[0] not in "_." and not TEMP_SUFFIX.search(f)]


def check_listing(paths: list[str], on_disk: list[str]) -> None:
    twice = sorted(p for p, n in Counter(paths).items() if n > 1)
    if twice:
        raise IntegrityError("listing", f"{twice[0]} is listed {Counter(paths)[twice[0]]} times")
    unlisted = sorted(set(on_disk) - set(paths))
    if unlisted:
        raise IntegrityError("listing", f"{unlisted[0]} is in the set but not listed ({len(unlisted)} such file(s))")


def gate(root: str, shard_dicts: list[dict[str, Any]], checks: list[dict[str, Any]], funnel: dict[str, Any]) -> None:
    """Every invariant of a shard set about to be sealed; raises IntegrityError on the first broken one."""
    check_funnel(funnel)
    paths = [s["path"] for s in shard_dicts]
    check_listing(paths, set_files(root))
    for c in sorted(checks, key=lambda c: c["path"]):
        if c["problem"]:
            raise IntegrityError("checksums", f"{c['path']}: {c['problem']}")
    listed = sum(s["rows"] for s in shard_dicts)
    in_files = sum(c["rows"] for c in checks)
    if len(checks) != len(shard_dicts) or in_files != listed:
        raise IntegrityError("rows", f"the shard files hold {in_files} rows, the manifest lists {listed}")
    if listed != funnel["kept"]:
        raise IntegrityError("rows", f"the shards hold {listed} rows, the funnel kept {funnel['kept']}")


def check_parts(root: str, part_names: list[str], counted: list[dict[str, Any]], lines: int,
                prefix: str) -> None:
    """Reshard's gate: parts listed once, every `prefix*` file listed, every part present, lines recounted."""
    on_disk = [f for f in list_files(root) if f.startswith(prefix) and "/" not in f and not TEMP_SUFFIX.search(f)]
    check_listing(part_names, on_disk)
    missing = sorted(set(part_names) - {c["path"] for c in counted if c["problem"] is None})
    if missing:
        raise IntegrityError("checksums", f"{missing[0]}: listed but missing or unreadable")
    in_parts = sum(c["rows"] for c in counted)
    if in_parts != lines:
        raise IntegrityError("rows", f"the parts hold {in_parts} lines, the reader kept {lines}")


def count_part(root: str, name: str) -> dict[str, Any]:
    """Lines, size and sha256 of one zstd JSONL part, read back: `{"path", "rows", "bytes", "sha256", "problem"}`."""
    import zstandard

    path = FileSystems.join(root, name)
    try:
        with FileSystems.open(path, compression_type="uncompressed") as f:
            data = f.read()
        lines = 0
        reader = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True)
        for chunk in iter(lambda: reader.read(1 << 20), b""):
            lines += chunk.count(b"\n")
    except Exception as e:  # noqa: BLE001 - any failure to read the part back is the broken invariant
        return {"path": name, "rows": 0, "bytes": 0, "sha256": "", "problem": f"{type(e).__name__}: {e}"}
    return {"path": name, "rows": lines, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "problem": None}

