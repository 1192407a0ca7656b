"""Streaming readers, one per input format, over Beam's FileSystems (local, gs://, s3://).

Each reader turns one `WorkItem` (a whole file, a byte range of a plain JSONL file, or a run of
Parquet row groups) into a stream of `Parsed` results without ever holding a whole file, or even
a whole oversized line, in memory. They are plain generators so they can be tested without Beam;
`pipeline.sources.ReadCorpus` runs them inside a DoFn, and `pipeline.reshard` copies the raw lines
of `iter_jsonl_lines` so that reshard and build see the same records of the same files.

Which codec a file really uses and how a cut stream is reported live in `pipeline.compression`.
Beyond the codecs, the readers check the ends that their formats mark: a tar must end with its
end-of-archive block, a WARC record must hold its Content-Length, an Arrow IPC stream its
end-of-stream marker. Every cut becomes a counted `truncated_file` reject after the records
read before it; plain JSONL and WET have no end marker, so a cut there is only seen as a broken
last line or record.
"""
from __future__ import annotations

import tarfile
from dataclasses import dataclass
from typing import IO, Callable, Iterator, NamedTuple

from replaymill.pipeline.compression import (
    CODEC_SUFFIXES, READ_CHUNK, EofWatch, open_decompressed, open_raw, sniff_codec, sniff_stream,
)
from replaymill.schemas.document import new_document
from replaymill.transforms.html_text import charset_of, decode_html, html_to_text
from replaymill.transforms.plain_text import TextDocuments
from replaymill.transforms.records import (
    BAD_UTF8, EMPTY_TEXT, TOO_LARGE, TRUNCATED_FILE, UNREADABLE_FILE, UNSUPPORTED_CONTENT, UNSUPPORTED_FORMAT,
    Line, Parsed, compact_json, encodable, is_blank_line, make_reject, parse_json_line, record_to_document,
    split_wet_records, wet_record_to_document,
)

JSONL_SUFFIXES = ("jsonl", "json", "ndjson", "jl")
TEXT_SUFFIXES = ("txt",)  # plain text, split into documents as `train` splits it (after WET's `.wet.txt`)
STREAM_FORMATS = ("jsonl", "tar", "wet", "warc", "text")  # read start to end through a codec, so sniffed
LINE_FORMATS = ("jsonl", "tar")  # what `iter_jsonl_lines` reads (a tar holds JSONL members)
HF_SCHEME = "hf://"
ROW_BATCH = 1024              # Parquet / Arrow rows decoded per batch
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
PLAIN_TYPES = frozenset({"text/plain"})
ARROW_STREAM_ENDS = (b"\xff\xff\xff\xff\x00\x00\x00\x00", b"\x00\x00\x00\x00")  # EOS, and pre-1.0 EOS


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


def work_item(path: str, name: str) -> WorkItem:
    """The whole-file work item of one input: format from the name, codec from the content for
    formats read as a stream (a name can lie about compression; the first bytes cannot)."""
    name = encodable(name)  # ids and rejects are built from it: an undecodable file name must not poison them
    fmt, codec = classify(name)
    if fmt in STREAM_FORMATS:
        codec = sniff_codec(path, codec)
    return WorkItem(path, name, fmt, codec)


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


def parse_line(line: Line, name: str, limit: int) -> Parsed | None:
    """One JSON line to a document or reject (None for a blank line); ids fall back to `<name>@<byte offset>`."""
    fallback_id = f"{name}@{line.offset}"
    if not line_is_whole(line):
        return Parsed(None, make_reject(
            TOO_LARGE, id=fallback_id, detail=f"line of {line.size} bytes over max_record_bytes={limit}",
            sample=line.data[:800]))
    if is_blank_line(line.data):
        return None
    return parse_json_line(line.data, fallback_id=fallback_id)


class SourceLine(NamedTuple):
    """One raw line of a JSONL input and the name it is counted under (the file, or `file/member` in a tar)."""

    name: str
    line: Line


def iter_jsonl_lines(item: WorkItem, limit: int) -> Iterator[SourceLine | Parsed]:
    """Every raw line of a JSONL item (a byte range of a plain file, a compressed stream, or the
    JSONL members of a tar), plus rejects for tar members that are not JSONL or are cut short.
    Build parses these lines; reshard copies them: one definition of what a JSONL input holds."""
    if item.fmt == "tar":
        yield from _tar_lines(item, limit)
        return
    with open_raw(item.path) as raw:
        if item.codec:
            lines = iter_lines(open_decompressed(raw, item.codec), limit)
        else:  # the lines that *start* inside [start, end), as Beam's text source splits
            offset = item.start
            if offset > 0:
                raw.seek(offset - 1)
                offset = offset - 1 + _skip_line(raw)
            lines = iter_lines(raw, limit, offset, item.end)
        for line in lines:
            yield SourceLine(item.name, line)


class _EndCheckedTarInfo(tarfile.TarInfo):
    """Tar headers that tell a cut archive from a finished one: tarfile ends iteration silently when
    the data stops at (or inside) a header, or at a damaged header; a finished archive ends with a
    zero block instead."""

    @classmethod
    def fromtarfile(cls, tar):  # type: ignore[override]
        try:
            return super().fromtarfile(tar)
        except (tarfile.EmptyHeaderError, tarfile.TruncatedHeaderError) as e:
            raise EOFError(f"tar archive ends without its end-of-archive block at byte {tar.offset} ({e})") from None
        except tarfile.InvalidHeaderError as e:
            if isinstance(e, tarfile.EOFHeaderError):
                raise  # the zero block: a normal end
            raise tarfile.ReadError(f"damaged tar header at byte {tar.offset}: {e}") from None


def _tar_lines(item: WorkItem, limit: int) -> Iterator[SourceLine | Parsed]:
    """The JSONL members of a tar (lm_dataformat's `*.jsonl.zst.tar`), member by member, streaming."""
    with open_raw(item.path) as raw:
        outer = EofWatch(open_decompressed(raw, item.codec))
        yield from _tar_members(item, outer, limit)


def _tar_members(item: WorkItem, outer: EofWatch, limit: int) -> Iterator[SourceLine | Parsed]:
    with tarfile.open(fileobj=outer, mode="r|", tarinfo=_EndCheckedTarInfo) as tar:
        for member in tar:
            if not member.isfile():
                continue
            label = encodable(f"{item.name}/{member.name}")
            fmt, codec = classify(member.name)
            if fmt != "jsonl":
                yield Parsed(None, make_reject(UNSUPPORTED_FORMAT, id=label, detail=f"{label}: not a JSONL member"))
                continue
            member_file = tar.extractfile(member)
            stream = open_decompressed(member_file, sniff_stream(member_file, codec))
            try:
                for line in iter_lines(stream, limit):
                    yield SourceLine(label, line)
            except EOFError as e:
                if outer.truncation is not None:
                    raise  # the tar itself is cut: one reject for the file, from read_item
                # only this member's compressed stream is cut; the tar goes on
                yield Parsed(None, make_reject(TRUNCATED_FILE, id=label, detail=f"{label}: {e}"))


def read_jsonl(item: WorkItem, limit: int) -> Iterator[Parsed]:
    """JSONL (plain by byte range, compressed as one stream) and tars of JSONL members."""
    for entry in iter_jsonl_lines(item, limit):
        if isinstance(entry, SourceLine):
            parsed = parse_line(entry.line, entry.name, limit)
            if parsed is not None:
                yield parsed
        else:
            yield entry


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
    Requests, metadata, warcinfo and resource records describe the crawl, not pages, and are skipped.

    warcio ends its iteration quietly on a cut stream (it takes the EOFError for the end of the
    archive, and a record short of its Content-Length for a whole one), so both are checked here."""
    from warcio.archiveiterator import ArchiveIterator

    with open_raw(item.path) as raw:
        stream = EofWatch(open_decompressed(raw, item.codec))
        record = None
        for n, record in enumerate(ArchiveIterator(stream)):
            if record.rec_type in ("response", "conversion"):
                yield _warc_document(record, f"{item.name}#{n}", limit)
        stream.raise_if_truncated()
        if record is not None:
            _check_record_complete(record)


def _check_record_complete(record) -> None:
    """Raise EOFError when a WARC record's block ended before its Content-Length (a cut file)."""
    block = record.raw_stream
    while block.read(READ_CHUNK):
        pass
    missing = getattr(block, "limit", 0)
    if missing > 0:
        raise EOFError(f"WARC record ends {missing} bytes short of its Content-Length")


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
    _check_record_complete(record)  # a page cut by the end of the file is not a shorter page
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
        head = raw.read(6)
        is_file_format = head == b"ARROW1"
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
        if not is_file_format:
            _check_stream_end(raw, head)


def _check_stream_end(raw: IO[bytes], head: bytes) -> None:
    """Raise EOFError when an Arrow IPC stream lacks its end-of-stream marker: the stream reader
    stops quietly when the data ends between two messages, which is what a cut file looks like.
    `head` is the stream's first bytes, read once by the caller (no second ranged read for them)."""
    size = raw.seek(0, 2)
    raw.seek(max(0, size - 8))
    tail = raw.read(8)
    modern = head[:4] == ARROW_STREAM_ENDS[0][:4]  # messages framed by the 0xFFFFFFFF continuation marker
    if not (tail == ARROW_STREAM_ENDS[0] if modern else tail.endswith(ARROW_STREAM_ENDS[1])):
        raise EOFError("Arrow IPC stream ends without its end-of-stream marker")


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


READERS: dict[str, Callable[[WorkItem, int], Iterator[Parsed]]] = {
    "jsonl": read_jsonl,
    "tar": read_jsonl,
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
        reason = TRUNCATED_FILE if is_truncation(e) else UNREADABLE_FILE
        detail = f"{item.name}: after {count} records: {type(e).__name__}: {e}".splitlines()[0][:500]
        yield Parsed(None, make_reject(reason, source=item.name, detail=detail))


def is_truncation(error: BaseException) -> bool:
    """Whether a reader's failure means the file ends early (rather than being unreadable)."""
    if isinstance(error, EOFError):
        return True
    return isinstance(error, tarfile.ReadError) and "unexpected end" in str(error)
