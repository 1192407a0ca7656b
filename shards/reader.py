"""Open a finished shard set and read its documents, verified, split across ranks and dataloader workers.

The trainer, the sampler and the audit all read shard sets the same way, so this is the one place
that (1) refuses a set without a manifest, (2) checks every shard's sha256 against the manifest
before a single row of it is used (a truncated or swapped file is a `CorruptShardError`, not a
silent partial epoch), and (3) splits shards over `rank * num_workers + worker` readers so that
data-parallel ranks and their DataLoader workers never see the same document twice.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator

import pyarrow as pa

from replaymill.schemas.document import COLUMN_NAMES, upgrade_table
from replaymill.schemas.manifest import Manifest, ShardInfo
from replaymill.shards.fs import filesystem
from replaymill.shards.io import (
    CorruptShardError,
    SchemaVersionError,
    check_file_schema,
    iter_batches,
    join,
    read_manifest,
    read_shard_bytes,
)

__all__ = ["ShardSet", "CorruptShardError", "SchemaVersionError", "reader_slot"]


def reader_slot(rank: int, world_size: int, worker: int, num_workers: int) -> tuple[int, int]:
    """(index, count) of one reader among all `world_size * num_workers` readers, validated.

    Readers are numbered rank-major (`rank * num_workers + worker`), so the split of shards is a
    pure function of these four integers and needs no coordination between processes.
    """
    if world_size < 1 or num_workers < 1:
        raise ValueError(f"world_size and num_workers must be >= 1, got {world_size} and {num_workers}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
    if not 0 <= worker < num_workers:
        raise ValueError(f"worker {worker} outside 0..{num_workers - 1}")
    return rank * num_workers + worker, world_size * num_workers


class ShardSet:
    """A built (or sampled) shard set: its manifest and verified access to its shards.

    Verified shard tables are kept in a small LRU cache (`cache_shards` decoded shards), so
    random access by (shard, row), as the sampler does, decodes each shard once while it is hot
    without ever holding the whole set in memory.
    """

    def __init__(self, root: str, manifest: Manifest, verify: bool = True, cache_shards: int = 8):
        self.root = root
        self.manifest = manifest
        self.shards: list[ShardInfo] = list(manifest.shards)
        self.verify = verify
        self._cache_size = max(0, cache_shards)
        self._cache: OrderedDict[tuple[str, tuple[str, ...] | None], pa.Table] = OrderedDict()
        self._verified: set[str] = set()

    @classmethod
    def open(cls, root: str, verify: bool = True, cache_shards: int = 8) -> "ShardSet":
        """Open the set at `root` (local, gs://, s3://); raises FileNotFoundError without a manifest and
        SchemaVersionError for a set of another schema version."""
        return cls(str(root), read_manifest(str(root)), verify=verify, cache_shards=cache_shards)

    def __repr__(self) -> str:
        return f"ShardSet({self.root!r}, shards={len(self.shards)}, docs={self.manifest.total.docs})"

    def domains(self) -> dict[str, list[ShardInfo]]:
        """Shards grouped by domain, domains sorted by name, shards in manifest order."""
        out: dict[str, list[ShardInfo]] = {}
        for info in self.shards:
            out.setdefault(info.domain, []).append(info)
        return dict(sorted(out.items()))

    def _check_columns(self, columns: list[str] | None) -> None:
        if columns is None:
            return
        unknown = [c for c in columns if c not in COLUMN_NAMES]
        if unknown:
            raise KeyError(f"unknown column(s) {unknown}; shard columns are {list(COLUMN_NAMES)}")

    def _bytes(self, info: ShardInfo) -> bytes:
        """Shard bytes, sha256-checked against the manifest (once per shard per ShardSet when cached)."""
        data = read_shard_bytes(self.root, info, verify=self.verify and info.path not in self._verified)
        if self.verify:
            self._verified.add(info.path)
        return data

    def read_table(self, info: ShardInfo, columns: list[str] | None = None, cache: bool = True) -> pa.Table:
        """One shard as a table (optionally projected), verified; kept in the LRU cache when `cache`."""
        self._check_columns(columns)
        key = (info.path, tuple(columns) if columns else None)
        table = self._cache.get(key)
        if table is not None:
            self._cache.move_to_end(key)
            return table
        reader = pa.ipc.open_file(pa.BufferReader(self._bytes(info)))
        check_file_schema(reader.schema, info.path)
        table = upgrade_table(reader.read_all(), columns)
        if columns:
            table = table.select(columns)
        if table.num_rows != info.rows:
            raise CorruptShardError(f"{info.path}: {table.num_rows} rows, manifest says {info.rows}")
        if cache and self._cache_size:
            self._cache[key] = table
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return table

    def read_index_columns(self, info: ShardInfo, columns: list[str]) -> pa.Table:
        """Small columns (n_tokens, quality) of one shard by random access, *without* the checksum.

        Arrow IPC files let a reader fetch only the buffers of the wanted fields, so a sampler's
        size index over a large set costs a few bytes per document instead of decompressing
        every text. It is not verified here; the shard is verified when its rows are read.
        """
        self._check_columns(columns)
        try:
            with filesystem().open(join(self.root, info.path)) as f:
                file = pa.PythonFile(f, mode="r")
                schema = pa.ipc.open_file(file).schema  # the file's own field order (older versions differ)
                check_file_schema(schema, info.path)
                fields = [schema.get_field_index(c) for c in columns if c in schema.names]
                file.seek(0)
                table = pa.ipc.open_file(file, options=pa.ipc.IpcReadOptions(included_fields=fields)).read_all()
        except FileNotFoundError:
            raise CorruptShardError(f"{info.path}: missing from {self.root} (its manifest lists it)") from None
        except (pa.ArrowInvalid, OSError) as e:
            raise CorruptShardError(f"{info.path}: not a readable Arrow IPC file ({e})") from None
        table = upgrade_table(table, columns).select(columns)  # included_fields keeps schema order
        if table.num_rows != info.rows:
            raise CorruptShardError(f"{info.path}: {table.num_rows} rows, manifest says {info.rows}")
        return table

    def shards_for_reader(
        self,
        shards: list[ShardInfo] | None = None,
        rank: int = 0,
        world_size: int = 1,
        worker: int = 0,
        num_workers: int = 1,
    ) -> list[ShardInfo]:
        """The shards one reader owns: round-robin over `rank * num_workers + worker`.

        With more readers than shards some readers get none (they yield nothing); that is the
        price of never splitting a shard, which keeps every read a whole, verifiable file.
        """
        index, count = reader_slot(rank, world_size, worker, num_workers)
        pool = self.shards if shards is None else shards
        return [info for i, info in enumerate(pool) if i % count == index]

    def iter_documents(
        self,
        columns: list[str] | None = None,
        shards: list[ShardInfo] | None = None,
        rank: int = 0,
        world_size: int = 1,
        worker: int = 0,
        num_workers: int = 1,
    ) -> Iterator[dict[str, Any]]:
        """Documents (dicts of `columns`, all by default) of this reader's shards, in manifest order.

        Each shard is read and checksum-verified once, streamed batch by batch (not cached), so
        a full pass holds one shard in memory at a time.
        """
        self._check_columns(columns)
        for info in self.shards_for_reader(shards, rank, world_size, worker, num_workers):
            rows = 0
            for batch in iter_batches(self._bytes(info), columns, where=info.path):
                rows += batch.num_rows
                yield from batch.to_pylist()
            if rows != info.rows:
                raise CorruptShardError(f"{info.path}: {rows} rows, manifest says {info.rows}")
