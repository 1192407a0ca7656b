"""Compressed input streams: which codec a file really uses, and decompression that reports a cut.

Build, reshard and audit read gzip, zstd, bz2 and xz themselves rather than through Beam, for two
reasons that this module holds in one place:

* A name can lie. Dolma's own test data has a `.jsonl.zst` that is plain JSONL; users rename
  files. `sniff_codec` trusts the first bytes over the suffix, so every command that reads the
  same file reads the same records.
* A file that ends early must be *reported* (`truncated_file`) with the records before the cut
  kept. gzip, bz2 and xz raise EOFError there; zstd does not (python-zstandard's stream reader
  ends silently at a truncation), so `_ZstdReader` follows the frame layout and raises it itself.
  A consumer that swallows EOFError (warcio takes it for the end of the archive) is watched by
  `EofWatch`, which remembers the cut so the reader can still report it.

A cut that falls exactly between two gzip members or zstd frames cannot be told from a smaller
file; that is the one truncation no codec can reveal.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
from typing import IO

import zstandard
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from replaymill.pipeline.progress import metered

CODEC_SUFFIXES: dict[str, str] = {"gz": "gzip", "zst": "zstd", "zstd": "zstd", "bz2": "bz2", "xz": "xz"}
READ_CHUNK = 1 << 20  # bytes per read of a stream: zstd decompression, skipping an oversized line or a WARC block
SNIFF_BYTES = 16      # how much of a file's head `sniff_codec` looks at (the longest magic is 10 bytes)

# Leading bytes of each codec's stream (bz2: "BZh", a block size digit, then the block or
# end-of-stream magic, so a text file that happens to start with "BZh" is not taken for bz2).
_GZIP_MAGIC = b"\x1f\x8b\x08"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_BZ2_BLOCK_MAGICS = (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")


def sniff_head(head: bytes) -> str:
    """The codec to read a stream with, from its first bytes: a codec's magic wins over the name,
    and a file without any codec's magic is read as stored (""), whatever its name says. Every codec
    stream starts with its magic, so a file without it cannot be decompressed anyway: reading it as
    stored keeps a plain file named `.gz` whole, and turns a file that is neither into counted
    rejects (`malformed_json`, `too_large`, ...) instead of one `unreadable_file`."""
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC) or (len(head) >= 4 and head[0] & 0xF0 == 0x50 and head[1:4] == b"\x2a\x4d\x18"):
        return "zstd"  # a zstd frame, or a skippable frame (which may come first)
    if head.startswith(_XZ_MAGIC):
        return "xz"
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[3:4] != b"0" and head[4:10] in _BZ2_BLOCK_MAGICS:
        return "bz2"
    return ""


def sniff_codec(path: str, declared: str) -> str:
    """`sniff_head` over the first bytes of the file at `path` (the declared, suffix codec if it
    cannot be opened: its item then reports it as unreadable)."""
    try:
        with open_raw(path) as raw:
            head = raw.read(SNIFF_BYTES)
    except Exception:  # noqa: BLE001 - an unopenable file is reported when its item is read
        return declared
    return sniff_head(head)


def sniff_stream(stream: IO[bytes], declared: str) -> str:
    """`sniff_head` over a stream that can `peek` (a tar member), without consuming it."""
    peek = getattr(stream, "peek", None)
    if peek is None:
        return declared
    return sniff_head(peek(SNIFF_BYTES)[:SNIFF_BYTES])


def open_raw(path: str) -> IO[bytes]:
    """The file's bytes as stored (Beam must not decompress: we detect truncation ourselves),
    counted for the progress bar when the calling DoFn is `metering` (`pipeline.progress`)."""
    return metered(FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED))


def open_decompressed(raw: IO[bytes], codec: str) -> IO[bytes]:
    """A buffered, line-readable stream of the decompressed bytes; a cut raises EOFError."""
    if codec == "":
        return raw
    if codec == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if codec == "zstd":
        return io.BufferedReader(_ZstdReader(raw), buffer_size=READ_CHUNK)
    if codec == "bz2":
        return bz2.BZ2File(raw, mode="rb")
    if codec == "xz":
        return lzma.LZMAFile(raw, mode="rb")
    raise ValueError(f"unknown codec {codec!r}")


class _PassThrough(io.RawIOBase):
    """A raw stream over `source` whose every read goes through `read`, which subclasses watch."""

    def __init__(self, source: IO[bytes]):
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class EofWatch(_PassThrough):
    """A pass-through stream that remembers an EOFError (a truncated codec stream) raised while
    reading, for consumers that catch it and carry on as if the input had ended (warcio's
    ArchiveIterator does). After the consumer is done, `raise_if_truncated` re-raises it."""

    def __init__(self, source: IO[bytes]):
        super().__init__(source)
        self.truncation: EOFError | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            return self._source.read(size)
        except EOFError as e:
            self.truncation = e
            raise

    def raise_if_truncated(self) -> None:
        if self.truncation is not None:
            raise self.truncation


class ZstdFrameTracker:
    """Follows the zstd frame layout (RFC 8878: frame header, 3-byte block headers, optional
    checksum, skippable frames) over the compressed bytes without decompressing them, so the end
    of input can be checked to fall on a frame boundary. python-zstandard's stream reader, which
    bounds how much it decompresses at once, otherwise ends silently at a truncation."""

    _ZSTD_MAGIC = 0xFD2FB528
    _SKIPPABLE_MASK, _SKIPPABLE_MAGIC = 0xFFFFFFF0, 0x184D2A50

    def __init__(self) -> None:
        self._pending = b""     # header bytes collected so far
        self._need = 4          # header bytes wanted next
        self._state = "magic"
        self._skip = 0          # payload bytes to pass over
        self._checksum = False

    def feed(self, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            if self._skip:
                step = min(self._skip, len(data) - pos)
                self._skip -= step
                pos += step
                continue
            take = min(self._need - len(self._pending), len(data) - pos)
            self._pending += data[pos:pos + take]
            pos += take
            if len(self._pending) == self._need:
                header, self._pending = self._pending, b""
                self._advance(header)

    def _advance(self, header: bytes) -> None:
        value = int.from_bytes(header, "little")
        if self._state == "magic":
            if value == self._ZSTD_MAGIC:
                self._state, self._need = "descriptor", 1
            elif value & self._SKIPPABLE_MASK == self._SKIPPABLE_MAGIC:
                self._state, self._need = "skippable", 4
            else:
                self._state, self._need = "invalid", 1 << 62  # the decompressor reports it
        elif self._state == "skippable":
            self._state, self._need, self._skip = "magic", 4, value
        elif self._state == "descriptor":
            fcs_flag, single_segment = value >> 6, (value >> 5) & 1
            self._checksum = bool((value >> 2) & 1)
            window = 0 if single_segment else 1
            dict_id = (0, 1, 2, 4)[value & 3]
            fcs = (single_segment, 2, 4, 8)[fcs_flag]
            self._state, self._need, self._skip = "block", 3, window + dict_id + fcs
        elif self._state == "block":
            last, block_type, size = value & 1, (value >> 1) & 3, value >> 3
            self._skip = 1 if block_type == 1 else size  # an RLE block stores one byte
            if last:
                self._skip += 4 if self._checksum else 0
                self._state, self._need = "magic", 4

    def at_frame_boundary(self) -> bool:
        return self._state == "magic" and not self._pending and not self._skip


class _TrackedSource(_PassThrough):
    """Passes compressed bytes through to the decompressor while the tracker watches them."""

    def __init__(self, source: IO[bytes], tracker: ZstdFrameTracker):
        super().__init__(source)
        self._tracker = tracker

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._tracker.feed(data)
        return data


class _ZstdReader(io.RawIOBase):
    """Streaming zstd decompression across concatenated frames, in bounded pieces (a highly
    compressible gigantic line never lands in memory at once), raising EOFError when the input
    ends inside a frame."""

    def __init__(self, source: IO[bytes]):
        self._tracker = ZstdFrameTracker()
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            _TrackedSource(source, self._tracker), read_across_frames=True, closefd=False)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self._reader.read(len(buffer))
        if not data and not self._tracker.at_frame_boundary():
            raise EOFError("zstd stream ended inside a frame (file truncated)")
        buffer[:len(data)] = data
        return len(data)
