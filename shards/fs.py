"""The small filesystem facade shard sets are read and written through: Beam's or fsspec's, chosen at run time.

With Beam installed (build, sample, audit), Beam's `FileSystems` is used, so the pipeline options a
command hands it (an s3 endpoint, gcs credentials) apply to shard reads and writes too. Without
Beam (the trainer image, a notebook with `pip install replaymill --no-deps` plus pyarrow), fsspec
does the same for local paths, and for gs:// or s3:// once gcsfs or s3fs is installed. Setting
`REPLAYMILL_FS=fsspec` (or `beam`) forces the choice.

Only what shard sets need: join, exists, open for reading, atomic-enough create, delete, rename.
"""
from __future__ import annotations

import os
import posixpath
from functools import lru_cache
from typing import IO, Protocol


class FileSystem(Protocol):
    name: str

    def join(self, root: str, *parts: str) -> str: ...
    def exists(self, path: str) -> bool: ...
    def open(self, path: str) -> IO[bytes]: ...
    def create(self, path: str) -> IO[bytes]: ...
    def delete(self, path: str) -> None: ...
    def rename(self, src: str, dst: str) -> None: ...


class BeamFileSystem:
    """Beam's `FileSystems` (local, gs://, s3://, hdfs://, with the options the command set)."""

    name = "beam"

    def __init__(self):
        from apache_beam.io.filesystem import CompressionTypes
        from apache_beam.io.filesystems import FileSystems

        self._fs = FileSystems
        self._raw = CompressionTypes.UNCOMPRESSED  # shards and manifests are read as the bytes they are

    def join(self, root: str, *parts: str) -> str:
        return self._fs.join(root, *parts)

    def exists(self, path: str) -> bool:
        return self._fs.exists(path)

    def open(self, path: str) -> IO[bytes]:
        return self._fs.open(path, compression_type=self._raw)

    def create(self, path: str) -> IO[bytes]:
        return self._fs.create(path, compression_type=self._raw)

    def delete(self, path: str) -> None:
        self._fs.delete([path])

    def rename(self, src: str, dst: str) -> None:
        self._fs.rename([src], [dst])


class FsspecFileSystem:
    """fsspec: local paths always; remote schemes through their fsspec package (gcsfs, s3fs, ...)."""

    name = "fsspec"

    def __init__(self):
        import fsspec

        self._url_to_fs = fsspec.core.url_to_fs

    def join(self, root: str, *parts: str) -> str:
        return posixpath.join(root, *parts) if "://" in root else os.path.join(root, *parts)

    def exists(self, path: str) -> bool:
        fs, p = self._url_to_fs(path)
        return fs.exists(p)

    def open(self, path: str) -> IO[bytes]:
        fs, p = self._url_to_fs(path)
        return fs.open(p, "rb")

    def create(self, path: str) -> IO[bytes]:
        fs, p = self._url_to_fs(path)
        if "://" not in path and os.path.dirname(p):
            os.makedirs(os.path.dirname(p), exist_ok=True)  # as Beam's local create does
        return fs.open(p, "wb")

    def delete(self, path: str) -> None:
        fs, p = self._url_to_fs(path)
        fs.rm(p)

    def rename(self, src: str, dst: str) -> None:
        fs, s = self._url_to_fs(src)
        fs.mv(s, self._url_to_fs(dst)[1])


@lru_cache(maxsize=None)
def filesystem(choice: str | None = None) -> FileSystem:
    """The facade for this process: `choice` or $REPLAYMILL_FS, else Beam when importable, else fsspec."""
    choice = choice or os.environ.get("REPLAYMILL_FS") or ""
    if choice not in ("", "beam", "fsspec"):
        raise ValueError(f"REPLAYMILL_FS must be 'beam' or 'fsspec', not {choice!r}")
    if choice != "fsspec":
        try:
            return BeamFileSystem()
        except ImportError:
            if choice == "beam":
                raise
    return FsspecFileSystem()
