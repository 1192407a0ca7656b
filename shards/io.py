"""Atomic writing and verified reading of Arrow IPC shards and the manifest, on any filesystem.

Files go through `shards.fs` (Beam's `FileSystems` where Beam is installed, else fsspec), one API
for local paths, gs:// and s3://, so the same code runs on a laptop, on Dataflow and in a trainer
image without Beam. Writes go to a temporary name and are renamed into place: a crashed run never
leaves a half shard under a final name.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
from typing import Iterator

import pyarrow as pa
from pydantic import ValidationError

from replaymill.schemas.document import (
    ADDED_COLUMNS,
    DOC_SCHEMA,
    READABLE_SCHEMA_VERSIONS,
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
    upgrade_table,
)
from replaymill.schemas.manifest import MANIFEST_NAME, Manifest, ShardInfo, check_relative_path
from replaymill.shards.fs import filesystem

IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")
# The end of a name `write_bytes_atomic` writes under before renaming it into place.
TEMP_SUFFIX = re.compile(r"\.tmp-[0-9a-f]{32}\Z")


class CorruptShardError(RuntimeError):
    """A shard that is missing or whose bytes do not match the manifest's checksum or size."""


class SchemaVersionError(ValueError):
    """A shard set or shard written with another document schema version than this replaymill reads."""


class InvalidManifestError(ValueError):
    """A `_manifest.json` that is not JSON or breaks the contract (e.g. a path that leaves its set)."""


def first_error(error: ValidationError) -> str:
    """The first problem pydantic found, as one line: `shards.0.lang: lang '../x' is not a safe ...`."""
    first = error.errors()[0]
    where = ".".join(map(str, first["loc"]))
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def check_schema_version(version: str | None, where: str) -> None:
    """Raise SchemaVersionError unless `version` is one of READABLE_SCHEMA_VERSIONS.

    Columns are read by name, so a set built before a quality rule set was added (fewer `signals`
    fields) is the same version; SCHEMA_VERSION changes when a column is added, removed, renamed or
    changes meaning. Older versions listed as readable are upgraded on read (columns added since
    are null, `schemas.document.upgrade_table`); any other version would give wrong data silently.
    """
    if version not in READABLE_SCHEMA_VERSIONS:
        found = f"schema version {version}" if version else "no replaymill schema version"
        raise SchemaVersionError(
            f"{where}: {found}, this replaymill reads versions {', '.join(READABLE_SCHEMA_VERSIONS)} "
            f"(writes {SCHEMA_VERSION}); rebuild it with this version or read it with the replaymill that wrote it")


def check_file_schema(schema: pa.Schema, where: str) -> None:
    """The version stored in one shard file's Arrow schema metadata, checked."""
    raw = (schema.metadata or {}).get(SCHEMA_VERSION_KEY)
    check_schema_version(raw.decode("utf-8", "replace") if raw is not None else None, where)


def join(root: str, *parts: str) -> str:
    """Join path parts under a root on any filesystem."""
    return filesystem().join(root, *parts)


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write `data` to a temporary sibling, then rename it to `path`. A write that fails for want
    of space names the file (a write error on an open file carries no path of its own)."""
    fs = filesystem()
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    try:
        with fs.create(tmp) as f:
            f.write(data)
    except OSError as e:
        if e.filename is None and e.errno is not None:
            raise OSError(e.errno, e.strerror, tmp) from e
        raise
    if fs.exists(path):
        fs.delete(path)
    fs.rename(tmp, path)


def encode_table(table: pa.Table, schema: pa.Schema = DOC_SCHEMA, max_chunk_rows: int = 1024) -> bytes:
    """A table as Arrow IPC *file* bytes with zstd buffers, in record batches of at most `max_chunk_rows`."""
    sink = io.BytesIO()
    with pa.ipc.new_file(sink, schema, options=IPC_OPTIONS) as writer:
        writer.write_table(table.cast(schema), max_chunksize=max_chunk_rows)
    return sink.getvalue()


def write_shard(root: str, rel_path: str, table: pa.Table, domain: str, lang: str) -> ShardInfo:
    """Write one shard atomically and describe it for the manifest; `rel_path` must stay under `root`."""
    check_relative_path(rel_path)
    data = encode_table(table)
    write_bytes_atomic(join(root, rel_path), data)
    tokens = table.column("n_tokens").to_pylist() if "n_tokens" in table.column_names else []
    chars = table.column("n_chars").to_pylist() if "n_chars" in table.column_names else []
    return ShardInfo(
        path=rel_path,
        domain=domain,
        lang=lang,
        rows=table.num_rows,
        bytes=len(data),
        tokens=int(sum(t or 0 for t in tokens)),
        chars=int(sum(c or 0 for c in chars)),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def write_manifest(root: str, manifest: Manifest) -> None:
    """Write `_manifest.json` atomically; call it last, when every shard is in place."""
    text = json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=False)
    write_bytes_atomic(join(root, MANIFEST_NAME), text.encode("utf-8"))


def read_manifest(root: str) -> Manifest:
    """Load and validate `root/_manifest.json`; a missing manifest means an incomplete or foreign set,
    another schema version a SchemaVersionError."""
    fs = filesystem()
    path = fs.join(root, MANIFEST_NAME)
    if not fs.exists(path):
        raise FileNotFoundError(f"no {MANIFEST_NAME} in {root}: not a finished replaymill shard set")
    with fs.open(path) as f:
        data = f.read()
    try:
        manifest = Manifest.model_validate_json(data)
    except ValidationError as e:
        raise InvalidManifestError(f"{path}: invalid manifest: {first_error(e)}") from None
    check_schema_version(manifest.schema_version, f"shard set {root}")
    return manifest


def read_shard_bytes(root: str, info: ShardInfo, verify: bool = True) -> bytes:
    """The bytes of one shard, checked against the manifest's size and sha256 when `verify`; a shard
    the manifest lists but the set no longer holds is a CorruptShardError too."""
    fs = filesystem()
    path = join(root, info.path)
    try:
        f = fs.open(path)
    except Exception:
        if not fs.exists(path):
            raise CorruptShardError(f"{info.path}: missing from {root} (its manifest lists it)") from None
        raise
    with f:
        data = f.read()
    if verify:
        if len(data) != info.bytes:
            raise CorruptShardError(f"{info.path}: {len(data)} bytes, manifest says {info.bytes}")
        digest = hashlib.sha256(data).hexdigest()
        if digest != info.sha256:
            raise CorruptShardError(f"{info.path}: sha256 {digest[:12]}..., manifest says {info.sha256[:12]}...")
    return data


def iter_batches(data: bytes, columns: list[str] | None = None, where: str = "shard") -> Iterator[pa.RecordBatch]:
    """Record batches of one shard's bytes (its schema version checked), optionally projected to `columns`."""
    reader = pa.ipc.open_file(pa.BufferReader(data))
    check_file_schema(reader.schema, where)
    old = any(name not in reader.schema.names for name in ADDED_COLUMNS)
    for i in range(reader.num_record_batches):
        batch = reader.get_batch(i)
        if old:  # an older version's shard: the columns added since read as nulls
            batch = upgrade_table(pa.Table.from_batches([batch]), columns).combine_chunks().to_batches()[0]
        yield batch.select(columns) if columns else batch
