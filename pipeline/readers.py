"""Streaming readers, one per input format, over Beam's FileSystems (local, gs://, s3://).

Each reader turns one `WorkItem` (a whole file, a byte range of a plain JSONL file, or a run of
Parquet row groups) into a stream of `Parsed` results without ever holding a whole file, or even
a whole oversized line, in memory. They are plain generators so they can be tested without Beam;
`pipeline.sources.ReadCorpus` runs them inside a DoFn.

Compressed streams are decompressed here (gzip, zstd, bz2, xz) rather than by Beam, because a
file that ends early must be *reported* (`truncated_file`) with the records before the cut kept:
gzip/bz2/xz raise EOFError there, and the zstd reader below checks that the last frame ended.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
from dataclasses import dataclass
from typing import IO, Callable, Iterator

import zstandard
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from replaymill.pipeline.progress import metered
from replaymill.schemas.document import new_document
from replaymill.transforms.html_text import charset_of, decode_html, html_to_text
from replaymill.transforms.plain_text import TextDocuments
from replaymill.transforms.records import (
    BAD_UTF8, EMPTY_TEXT, TOO_LARGE, TRUNCATED_FILE, UNREADABLE_FILE, UNSUPPORTED_CONTENT, UNSUPPORTED_FORMAT,
    Line, Parsed, compact_json, is_blank_line, make_reject, parse_json_line, record_to_document,
    split_wet_records, wet_record_to_document,
)

CODEC_SUFFIXES: dict[str, str] = {"gz": "gzip", "zst": "zstd", "zstd": "zstd", "bz2": "bz2", "xz": "xz"}
JSONL_SUFFIXES = ("jsonl", "json", "ndjson", "jl")
TEXT_SUFFIXES = ("txt",)  # plain text, split into documents as `train` splits it (after WET's `.wet.txt`)
HF_SCHEME = "hf://"
READ_CHUNK = 1 << 20          # bytes per read when skipping an oversized line or feeding zstd
ROW_BATCH = 1024              # Parquet / Arrow rows decoded per batch
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
PLAIN_TYPES = frozenset({"text/plain"})


@dataclass(frozen=True)
class WorkItem:
    """One unit of reading: `path` to open, `name` (path relative to its input pattern, used in
    fallback ids and reject records), the format and codec, and for split formats the range
    [start, end): bytes of a plain JSONL file or row groups of a Parquet file (end None = to the end)."""

    path: str
    name: str
    fmt: str
    codec: str = ""
    start: int = 0
    end: int | None = None


def classify(name: str, *, bare_compressed: str = "jsonl") -> tuple[str, str]:
    """(format, codec) from a file name: `x.jsonl.zst` -> ("jsonl", "zstd"), `x.warc.gz` -> ("warc", "gzip").

    A bare compressed name without an inner extension (lm_dataformat's `1.zst`) is JSONL, the
    convention of the Pile's shards.
    """
    if name.startswith(HF_SCHEME):
        return "hf_hub", ""
    base = name.rsplit("/", 1)[-1].lower()
    parts = base.split(".")
    codec = ""
    if len(parts) > 1 and parts[-1] in CODEC_SUFFIXES:
        codec = CODEC_SUFFIXES[parts.pop()]
    if parts[-1] == "tgz":
        return "tar", "gzip"
    inner = set(parts[1:])
    if parts[-1] == "tar":
        return "tar", codec
    if parts[-1] in JSONL_SUFFIXES:
        return "jsonl", codec
    if "wet" in inner:
        return "wet", codec
    if "wat" in inner:
        return "unsupported", codec  # WAT holds link/metadata JSON, no document text
    if "warc" in inner or "arc" in inner:
        return "warc", codec
    if parts[-1] in TEXT_SUFFIXES:
        return "text", codec
    if parts[-1] in ("parquet", "pq") and not codec:
        return "parquet", ""
    if parts[-1] == "arrow" and not codec:
        return "arrow", ""
    if codec and len(parts) == 1:
        return bare_compressed, codec
    return "unsupported", codec


# Leading bytes of each codec's stream, to catch files whose name lies about their compression
# (Dolma's own test data has a `.jsonl.zst` that is plain JSONL).
CODEC_MAGIC: dict[str, bytes] = {
    "gzip": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd", "bz2": b"BZh", "xz": b"\xfd7zXZ\x00",
}


def sniff_codec(path: str, declared: str) -> str:
    """The codec the file's first bytes show: a compressed file named as plain gets its codec,
    and a file named compressed that starts like JSON (`{`) is read as plain; anything else keeps
    the declared codec (so a corrupt file is still reported as unreadable)."""
    try:
        with open_raw(path) as raw:
            head = raw.read(8)
    except Exception:  # noqa: BLE001 - an unopenable file is reported when its item is read
        return declared
    for codec, magic in CODEC_MAGIC.items():
        if head.startswith(magic):
            return codec
    if declared and head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{":
        return ""
    return declared


def open_raw(path: str) -> IO[bytes]:
    """The file's bytes as stored (Beam must not decompress: we detect truncation ourselves),
    counted for the progress bar when the calling DoFn is `metering` (`pipeline.progress`)."""
    return metered(FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED))


class _ZstdFrameTracker:
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


class _TrackedSource(io.RawIOBase):
    """Passes compressed bytes through to the decompressor while the tracker watches them."""

    def __init__(self, source: IO[bytes], tracker: _ZstdFrameTracker):
        self._source = source
        self._tracker = tracker

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._tracker.feed(data)
        return data

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class _ZstdReader(io.RawIOBase):
    """Streaming zstd decompression across concatenated frames, in bounded pieces (a highly
    compressible gigantic line never lands in memory at once), raising EOFError when the input
    ends inside a frame."""

    def __init__(self, source: IO[bytes]):
        self._tracker = _ZstdFrameTracker()
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


def open_decompressed(raw: IO[bytes], codec: str) -> IO[bytes]:
    """A buffered, line-readable stream of the decompressed bytes."""
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


def iter_lines(stream: IO[bytes], limit: int, offset: int = 0, stop: int | None = None) -> Iterator[Line]:
    """Lines with their offsets, each holding at most `limit` + 1 bytes: the rest of a longer line
    is read and discarded in chunks (`Line.size` says how long it was). Stops at the first line
    starting at or after `stop`."""
    while stop is None or offset < stop:
        data = stream.readline(limit + 1)
        if not data:
            return
        size = len(data)
        if size > limit and not data.endswith(b"\n"):
            size += _skip_line(stream)
        yield Line(offset, data, size)
        offset += size


def line_is_whole(line: Line) -> bool:
    """Whether `line.data` is the entire line (an oversized line keeps only its first bytes)."""
    return len(line.data) == line.size


def _skip_line(stream: IO[bytes]) -> int:
    """Discard through the next newline (or end of stream), returning how many bytes that was."""
    skipped = 0
    while True:
        more = stream.readline(READ_CHUNK)
        skipped += len(more)
        if not more or more.endswith(b"\n"):
            return skipped


def parse_lines(lines: Iterator[Line], name: str, limit: int) -> Iterator[Parsed]:
    """JSON lines to documents and rejects; ids fall back to `<name>@<byte offset>`."""
    for line in lines:
        fallback_id = f"{name}@{line.offset}"
        if not line_is_whole(line):
            yield Parsed(None, make_reject(
                TOO_LARGE, id=fallback_id, detail=f"line of {line.size} bytes over max_record_bytes={limit}",
                sample=line.data[:800]))
        elif not is_blank_line(line.data):
            yield parse_json_line(line.data, fallback_id=fallback_id)


def read_jsonl_range(item: WorkItem, limit: int) -> Iterator[Parsed]:
    """The lines of a plain JSONL file that *start* inside [start, end), as Beam's text source
    splits: a range that does not begin at 0 first skips the line that straddles its start."""
    with open_raw(item.path) as raw:
        offset = item.start
        if offset > 0:
            raw.seek(offset - 1)
            offset = offset - 1 + _skip_line(raw)
        yield from parse_lines(iter_lines(raw, limit, offset, item.end), item.name, limit)


def read_jsonl_stream(item: WorkItem, limit: int) -> Iterator[Parsed]:
    """A compressed JSONL file, start to end, as one stream."""
    with open_raw(item.path) as raw:
        yield from parse_lines(iter_lines(open_decompressed(raw, item.codec), limit), item.name, limit)


def read_tar(item: WorkItem, limit: int) -> Iterator[Parsed]:
    """A tar of JSONL shards (lm_dataformat's `*.jsonl.zst.tar`), member by member, streaming."""
    with open_raw(item.path) as raw, tarfile.open(fileobj=open_decompressed(raw, item.codec), mode="r|") as tar:
        for member in tar:
            if not member.isfile():
                continue
            label = f"{item.name}/{member.name}"
            fmt, codec = classify(member.name)
            if fmt != "jsonl":
                yield Parsed(None, make_reject(UNSUPPORTED_FORMAT, id=label, detail=f"{label}: not a JSONL member"))
                continue
            stream = open_decompressed(tar.extractfile(member), codec)
            try:
                yield from parse_lines(iter_lines(stream, limit), label, limit)
            except EOFError as e:  # this member's compressed stream is cut; the tar itself goes on
                yield Parsed(None, make_reject(TRUNCATED_FILE, id=label, detail=f"{label}: {e}"))


def read_text(item: WorkItem, limit: int) -> Iterator[Parsed]:
    """A plain-text file (`.txt`, optionally compressed), split into documents exactly as `train`
    splits a task file (`transforms.plain_text`); ids are `<name>@<byte offset of the first line>`.
    A line that is not UTF-8 or longer than the record limit ends the document before it and is
    rejected (`bad_utf8`, `too_large`)."""
    docs = TextDocuments()
    with open_raw(item.path) as raw:
        for line in iter_lines(open_decompressed(raw, item.codec), limit):
            line_id = f"{item.name}@{line.offset}"
            if not line_is_whole(line):
                unusable = make_reject(TOO_LARGE, id=line_id, detail=f"line of {line.size} bytes over "
                                       f"max_record_bytes={limit}", sample=line.data[:800])
            else:
                try:
                    text = line.data.decode("utf-8")
                except UnicodeDecodeError as e:
                    unusable = make_reject(BAD_UTF8, id=line_id, detail=f"invalid UTF-8 at byte {line.offset + e.start}",
                                           sample=line.data)
                else:
                    done = docs.add(line.offset, text.lstrip("\ufeff") if line.offset == 0 else text)
                    if done is not None:
                        yield _text_document(item, done)
                    continue
            done = docs.flush()
            if done is not None:
                yield _text_document(item, done)
            yield Parsed(None, unusable)
    done = docs.flush()
    if done is not None:
        yield _text_document(item, done)


def _text_document(item: WorkItem, done: tuple[int, str]) -> Parsed:
    offset, text = done
    return record_to_document({"text": text}, fallback_id=f"{item.name}@{offset}", source="text")


def read_wet(item: WorkItem, limit: int) -> Iterator[Parsed]:
    """WET `conversion` records (Common Crawl's extracted text), split as cc_net does."""
    with open_raw(item.path) as raw:
        lines = iter_lines(open_decompressed(raw, item.codec), limit)
        for record in split_wet_records(lines, limit):
            parsed = wet_record_to_document(record, fallback_id=f"{item.name}@{record.offset}")
            if parsed is not None:
                yield parsed


def read_warc(item: WorkItem, limit: int) -> Iterator[Parsed]:
    """WARC `response` records with HTML (text extracted) or plain text; `conversion` records as in WET.
    Requests, metadata, warcinfo and resource records describe the crawl, not pages, and are skipped."""
    from warcio.archiveiterator import ArchiveIterator

    with open_raw(item.path) as raw:
        for n, record in enumerate(ArchiveIterator(open_decompressed(raw, item.codec))):
            if record.rec_type in ("response", "conversion"):
                yield _warc_document(record, f"{item.name}#{n}", limit)


def _warc_document(record, fallback_id: str, limit: int) -> Parsed:
    headers = record.rec_headers
    doc_id = headers.get_header("WARC-Record-ID") or fallback_id
    url = headers.get_header("WARC-Target-URI")
    meta = {"warc_date": headers.get_header("WARC-Date"), "warc_type": record.rec_type}
    if record.rec_type == "response":
        http = record.http_headers
        status = (http.get_statuscode() if http else "") or ""
        content_type = (http.get_header("Content-Type") if http else None) or ""
        mime = content_type.split(";")[0].strip().lower()
        meta.update(http_status=status, content_type=content_type)
        if not status.startswith("2") or mime not in HTML_TYPES | PLAIN_TYPES:
            return Parsed(None, make_reject(
                UNSUPPORTED_CONTENT, id=doc_id, detail=f"HTTP {status or '?'} {mime or 'no content type'} at {url}"))
    else:
        content_type = headers.get_header("Content-Type") or "text/plain"
        mime = "text/plain"
    payload = record.content_stream().read(limit + 1)
    if len(payload) > limit:
        return Parsed(None, make_reject(
            TOO_LARGE, id=doc_id, detail=f"payload over max_record_bytes={limit} at {url}", sample=payload[:800]))
    charset = charset_of(content_type)
    decoded = decode_html(payload, charset)
    if mime in HTML_TYPES:
        text = html_to_text(decoded)
    else:
        text = decoded if isinstance(decoded, str) else decoded.decode("utf-8", errors="replace")
    if not text.strip():
        return Parsed(None, make_reject(EMPTY_TEXT, id=doc_id, detail=f"no text in {mime} page {url}"))
    return Parsed(new_document(doc_id, text, "warc", url=url, metadata=compact_json(meta)), None)


def read_parquet(item: WorkItem, limit: int) -> Iterator[Parsed]:
    """Rows of the row groups [start, end) of a Parquet file, in batches; ids fall back to `<name>#<row>`."""
    import pyarrow.parquet as pq

    with open_raw(item.path) as raw:
        pf = pq.ParquetFile(raw)
        end = pf.num_row_groups if item.end is None else item.end
        row = sum(pf.metadata.row_group(i).num_rows for i in range(item.start))
        groups = list(range(item.start, end))
        if not groups:
            return
        for batch in pf.iter_batches(batch_size=ROW_BATCH, row_groups=groups):
            for record in batch.to_pylist():
                yield row_to_parsed(record, f"{item.name}#{row}", limit)
                row += 1


def read_arrow(item: WorkItem, limit: int) -> Iterator[Parsed]:
    """An Arrow IPC file or stream (a Hugging Face `save_to_disk` shard is a stream), batch by batch."""
    import pyarrow as pa

    with open_raw(item.path) as raw:
        is_file_format = raw.read(6) == b"ARROW1"
        raw.seek(0)
        if is_file_format:
            reader = pa.ipc.open_file(raw)
            batches: Iterator = (reader.get_batch(i) for i in range(reader.num_record_batches))
        else:
            batches = iter(pa.ipc.open_stream(raw))
        row = 0
        for batch in batches:
            for record in batch.to_pylist():
                yield row_to_parsed(record, f"{item.name}#{row}", limit)
                row += 1


def parse_hf_uri(uri: str) -> tuple[str, str | None, str]:
    """`hf://org/name[?config=c&split=s]` -> (name, config, split); split defaults to "train"."""
    from urllib.parse import parse_qs, urlsplit

    rest = uri[len(HF_SCHEME):]
    parts = urlsplit("x://" + rest)
    name = (parts.netloc + parts.path).strip("/")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return name, query.get("config") or query.get("name"), query.get("split", "train")


def read_hf_hub(item: WorkItem, limit: int) -> Iterator[Parsed]:
    """A Hugging Face Hub dataset streamed with `datasets.load_dataset(..., streaming=True)`."""
    import datasets

    name, config, split = parse_hf_uri(item.path)
    for row, record in enumerate(datasets.load_dataset(name, config, split=split, streaming=True)):
        yield row_to_parsed(record, f"{item.name}#{row}", limit)


def row_to_parsed(record: dict, fallback_id: str, limit: int) -> Parsed:
    """A table row as a document, with the same size cap that JSON lines get."""
    parsed = record_to_document(record, fallback_id=fallback_id)
    doc = parsed.doc
    if doc is not None and len(doc["text"]) * 4 > limit:
        size = len(doc["text"].encode("utf-8"))
        if size > limit:
            return Parsed(None, make_reject(
                TOO_LARGE, id=doc["id"], detail=f"text of {size} bytes over max_record_bytes={limit}",
                sample=doc["text"]))
    return parsed


def read_jsonl(item: WorkItem, limit: int) -> Iterator[Parsed]:
    """Plain JSONL is read by byte range (split across workers); compressed JSONL as one stream."""
    return (read_jsonl_stream if item.codec else read_jsonl_range)(item, limit)


READERS: dict[str, Callable[[WorkItem, int], Iterator[Parsed]]] = {
    "jsonl": read_jsonl,
    "tar": read_tar,
    "text": read_text,
    "wet": read_wet,
    "warc": read_warc,
    "parquet": read_parquet,
    "arrow": read_arrow,
    "hf_hub": read_hf_hub,
}


def read_item(item: WorkItem, max_record_bytes: int) -> Iterator[Parsed]:
    """Every document and reject of one work item; a file that cannot be read, or ends early,
    becomes one counted reject (after the records read before the failure) instead of a crash.
    Reject records carry the input's name as `source`."""
    reader = READERS.get(item.fmt)
    if reader is None:
        yield Parsed(None, make_reject(
            UNSUPPORTED_FORMAT, source=item.name, detail=f"{item.name}: no reader for this kind of file"))
        return
    count = 0
    try:
        for parsed in reader(item, max_record_bytes):
            count += 1
            if parsed.reject is not None:
                parsed.reject["source"] = item.name
            yield parsed
    except Exception as e:  # noqa: BLE001 - any failure of one input must not stop the run
        reason = TRUNCATED_FILE if _is_truncation(e) else UNREADABLE_FILE
        detail = f"{item.name}: after {count} records: {type(e).__name__}: {e}".splitlines()[0][:500]
        yield Parsed(None, make_reject(reason, source=item.name, detail=detail))


def _is_truncation(error: BaseException) -> bool:
    if isinstance(error, EOFError):
        return True
    return isinstance(error, tarfile.ReadError) and "unexpected end" in str(error)
