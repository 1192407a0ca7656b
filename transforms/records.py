"""Raw corpus records to documents: JSON-line parsing, corpus-shape detection and reader rejects.

Pure functions (no Beam, no I/O) so that every reader (JSONL ranges, compressed streams, tar
members, Parquet rows, Hugging Face rows) shares one definition of what a good record is and why
a bad one was dropped. The open corpora store the same information in different places:

- The Pile / lm_dataformat: `{"text", "meta": {"pile_set_name", ...}}`
- RedPajama / SlimPajama:   `{"text", "meta": {"redpajama_set_name", ...}}` (meta sometimes a JSON string)
- Dolma:                    `{"id", "text", "source", "added", "created", "metadata": {"url", ...}}`
- C4 / FineWeb:             `{"text", "url", "timestamp" | "date", ...}` (FineWeb adds `id`, `dump`)
- CCNet / RedPajama-V2:     `{"raw_content", "url", "digest", "cc_segment", ...}`

A record becomes a `schemas.document.new_document` dict whose `source` is the detected family,
`source_label` the corpus's own label, `url` taken from wherever that shape keeps it, and
`metadata` every other field as compact JSON (lossless, so nothing the corpus knew is thrown away).
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Iterator, NamedTuple

from replaymill.schemas.document import new_document
from replaymill.schemas.reject import Reject, encodable, is_encodable, make_reject

# Reject reasons of the read stage (each becomes a Beam counter `rejects_<reason>` and a funnel row).
MALFORMED_JSON = "malformed_json"        # not JSON, or JSON that is not an object
BAD_UTF8 = "bad_utf8"                    # bytes that are not UTF-8, or any string with lone surrogate escapes
MISSING_TEXT = "missing_text"            # no text field at all
TEXT_NOT_STRING = "text_not_string"      # text is a number / object / list holding non-strings
EMPTY_TEXT = "empty_text"                # text empty or whitespace only
TOO_LARGE = "too_large"                  # one record over max_record_bytes (skipped without buffering it)
TRUNCATED_FILE = "truncated_file"        # compressed stream or archive ends early; records before it are kept
UNREADABLE_FILE = "unreadable_file"      # cannot be opened or decoded at all (corrupt, not the format its name says)
UNSUPPORTED_FORMAT = "unsupported_format"  # a file (or archive member) of a kind no reader handles
UNSUPPORTED_CONTENT = "unsupported_content"  # WARC response that is not a 2xx HTML/plain-text page

REJECT_REASONS: tuple[str, ...] = (
    MALFORMED_JSON, BAD_UTF8, MISSING_TEXT, TEXT_NOT_STRING, EMPTY_TEXT, TOO_LARGE,
    TRUNCATED_FILE, UNREADABLE_FILE, UNSUPPORTED_FORMAT, UNSUPPORTED_CONTENT,
)

# Where the text lives, in order of preference: most corpora use "text"; CCNet and RedPajama-V2
# keep it in "raw_content"; The Stack and other code sets in "content".
TEXT_KEYS: tuple[str, ...] = ("text", "raw_content", "content")
# A text given as a list of strings is its paragraphs, joined as lm_dataformat's reader joins them
# (`Reader.read_jsonl(autojoin_paragraphs=True, para_joiner="\n\n")`); Pile records can hold one.
PARAGRAPH_JOINER = "\n\n"


class Parsed(NamedTuple):
    """Exactly one of `doc` and `reject` is set."""

    doc: dict[str, Any] | None
    reject: Reject | None


def detect_shape(record: dict[str, Any]) -> str:
    """The corpus family whose native layout `record` follows ("generic" when none fits)."""
    meta = _as_dict(record.get("meta"))
    if meta is not None:
        if "pile_set_name" in meta:
            return "pile"
        if "redpajama_set_name" in meta:
            return "redpajama"
    if "red_pajama_subset" in record:
        return "redpajama"
    if isinstance(record.get("source"), str) and "id" in record:
        return "dolma"
    if "raw_content" in record or ("cc_segment" in record and "digest" in record):
        return "ccnet"
    if "url" in record and "dump" in record:
        return "fineweb"
    if "url" in record and ("timestamp" in record or "date" in record):
        return "c4"
    if meta is not None:
        return "lm_dataformat"  # the Pile's container format without a set name
    return "generic"


def source_label_of(record: dict[str, Any], shape: str) -> str | None:
    """The corpus's own sub-corpus label, which domain tagging maps onto the taxonomy."""
    meta = _as_dict(record.get("meta")) or {}
    if shape == "pile":
        return _str_or_none(meta.get("pile_set_name"))
    if shape == "redpajama":
        return _str_or_none(meta.get("redpajama_set_name", record.get("red_pajama_subset")))
    if shape == "dolma":
        return _str_or_none(record.get("source"))
    return None


def url_of(record: dict[str, Any]) -> str | None:
    """The page URL wherever the shape keeps it; Dolma's `metadata.url` lacks the scheme, so its
    `warc_url` (the full URL) is preferred."""
    url = record.get("url")
    if isinstance(url, str) and url:
        return url
    for container in (_as_dict(record.get("metadata")), _as_dict(record.get("meta"))):
        if container:
            for key in ("warc_url", "url"):
                value = container.get(key)
                if isinstance(value, str) and value:
                    return value
    return None


def record_to_document(
    record: Any, *, fallback_id: str, source: str | None = None, check_surrogates: bool = True,
) -> Parsed:
    """One decoded record (a JSON object, a Parquet or dataset row) to a document or a reject.

    `fallback_id` names the record's position (file plus offset or row) and is used when the record
    carries no id of its own, so ids never depend on how the input was split among workers.
    `source` overrides the detected family (e.g. "warc"). A string anywhere in the record (id, url,
    source, metadata keys or values, the text) that holds a lone surrogate, which neither Arrow
    nor a UTF-8 file can store, makes the whole record a `bad_utf8` reject naming the field;
    `check_surrogates=False` skips that scan when the caller knows there can be none.
    """
    if not isinstance(record, dict):
        return Parsed(None, make_reject(
            MALFORMED_JSON, id=fallback_id, source=source,
            detail=f"JSON value is a {type(record).__name__}, not an object", sample=repr(record)))
    own_id = record.get("id")
    doc_id = str(own_id) if own_id not in (None, "") else fallback_id
    if check_surrogates:
        bad_field = unencodable_field(record)
        if bad_field is not None:
            return Parsed(None, make_reject(
                BAD_UTF8, id=doc_id, source=source, detail=f"{bad_field} has lone surrogate escapes",
                sample=compact_json(record)))
    shape = detect_shape(record)
    family = source or shape
    text_key = next((k for k in TEXT_KEYS if k in record), None)
    if text_key is None:
        return Parsed(None, make_reject(
            MISSING_TEXT, id=doc_id, source=family,
            detail=f"no {'/'.join(TEXT_KEYS)} field; keys: {sorted(record)[:20]}",
            sample=compact_json(record)))
    text = record[text_key]
    if isinstance(text, list) and text and all(isinstance(part, str) for part in text):
        text = PARAGRAPH_JOINER.join(text)  # lm_dataformat's autojoin_paragraphs (the Pile's reader)
    if not isinstance(text, str):
        return Parsed(None, make_reject(
            TEXT_NOT_STRING, id=doc_id, source=family,
            detail=f"{text_key} is a {type(text).__name__}", sample=compact_json(text)))
    if not text or text.isspace():
        return Parsed(None, make_reject(EMPTY_TEXT, id=doc_id, source=family, detail=f"{text_key} is blank"))
    rest = {k: v for k, v in record.items() if k not in (text_key, "id")}
    return Parsed(new_document(
        doc_id, text, family,
        source_label=source_label_of(record, shape),
        url=url_of(record),
        metadata=compact_json(rest, check_surrogates=False),
    ), None)


def parse_json_line(line: bytes, *, fallback_id: str, source: str | None = None) -> Parsed:
    """One raw JSON line (bytes, newline optional) to a document or a reject.

    The bytes go to the JSON parser undecoded (one pass fewer); lone surrogates can only come
    from `\\uD8xx` escapes or from UTF-8-encoded surrogates (bytes ED A0-BF), so lines with
    neither skip the surrogate scan of the text and metadata.
    """
    try:
        record = json.loads(line)
    except UnicodeDecodeError as e:
        return Parsed(None, make_reject(
            BAD_UTF8, id=fallback_id, source=source, detail=f"invalid UTF-8 at byte {e.start}", sample=line))
    except (ValueError, RecursionError) as e:
        return Parsed(None, make_reject(
            MALFORMED_JSON, id=fallback_id, source=source, detail=_one_line(e), sample=line))
    maybe_surrogates = b"\\u" in line or b"\xed" in line
    return record_to_document(record, fallback_id=fallback_id, source=source, check_surrogates=maybe_surrogates)


def is_blank_line(line: bytes) -> bool:
    """Blank lines separate nothing in JSONL and are skipped, not counted as records."""
    return not line or line.isspace()


def _as_dict(value: Any) -> dict[str, Any] | None:
    """A mapping, or a JSON string holding one (Parquet/HF exports often stringify `meta`)."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def compact_json(value: Any, *, check_surrogates: bool = True) -> str:
    """Compact JSON that Arrow can store: non-ASCII kept readable unless it holds lone surrogates."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    if not check_surrogates or is_encodable(text):
        return text
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), default=str)


def unencodable_field(value: Any, path: str = "") -> str | None:
    """The path (`metadata.url`, `tags[2]`, `meta.<key>`) of the first string in a decoded record
    that UTF-8 cannot encode (a lone surrogate), or None. One C-level serialization answers the
    common case; only a bad record is walked to name the field."""
    try:
        json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")
        return None
    except UnicodeEncodeError:
        pass
    except (ValueError, TypeError, RecursionError):
        pass  # circular or odd values: walk them below
    return _walk_unencodable(value, path or "record", depth=0)


def _walk_unencodable(value: Any, path: str, depth: int) -> str | None:
    if depth > 200:
        return None
    if isinstance(value, str):
        return None if is_encodable(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            name = key if isinstance(key, str) else str(key)
            where = name if path == "record" else f"{path}.{name}"
            if not is_encodable(name):
                return f"{encodable(where)} (a key)"
            found = _walk_unencodable(item, where, depth + 1)
            if found:
                return encodable(found)
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _walk_unencodable(item, f"{path}[{i}]", depth + 1)
            if found:
                return found
        return None
    return None if is_encodable(str(value)) else path


def _one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0][:300]


class Line(NamedTuple):
    """One line of a byte stream: where it starts, its bytes (only the first `limit` + 1 bytes when
    it is over the reader's cap, so a gigantic line is never held whole) and its full length."""

    offset: int
    data: bytes
    size: int


class WetRecord(NamedTuple):
    """One WARC record of a WET file: its headers and its content (None when over the size cap)."""

    offset: int
    headers: dict[str, str]
    content: bytes | None
    size: int


_WARC_VERSION_LINES = (b"WARC/1.0", b"WARC/1.1", b"WARC/0.18")


def split_wet_records(lines: Iterable[Line], max_record_bytes: int) -> Iterator[WetRecord]:
    """WET records from a stream of `Line`s, split at `WARC/1.x` version lines as cc_net does.

    Splitting on version lines rather than trusting Content-Length tolerates the hand-made WET
    files whose lengths are wrong (the cc_net fixture), at the cost of ending a record at a content
    line that reads exactly `WARC/1.0` (which real extracted page text does not contain).
    Content over `max_record_bytes` is dropped while streaming and reported with content None.
    """
    offset = -1
    headers: dict[str, str] = {}
    in_headers = False
    chunks: list[bytes] = []
    size = 0
    for line in lines:
        if line.data.rstrip(b"\r\n") in _WARC_VERSION_LINES:
            if offset >= 0:
                yield _wet_record(offset, headers, chunks, size, max_record_bytes)
            offset, headers, in_headers, chunks, size = line.offset, {}, True, [], 0
            continue
        if offset < 0:
            continue  # bytes before the first record: not WARC
        if in_headers:
            stripped = line.data.rstrip(b"\r\n")
            if not stripped:
                in_headers = False
                continue
            key, _, value = stripped.decode("utf-8", errors="replace").partition(":")
            headers[key.strip()] = value.strip()
            continue
        size += line.size
        if size <= max_record_bytes:
            chunks.append(line.data)
        else:
            chunks = []
    if offset >= 0:
        yield _wet_record(offset, headers, chunks, size, max_record_bytes)


def _wet_record(offset: int, headers: dict[str, str], chunks: list[bytes], size: int, limit: int) -> WetRecord:
    if size > limit:
        return WetRecord(offset, headers, None, size)
    return WetRecord(offset, headers, b"".join(chunks).rstrip(b"\r\n"), size)


def wet_record_to_document(record: WetRecord, *, fallback_id: str, source: str = "wet") -> Parsed | None:
    """A WET `conversion` record to a document or reject; None for records that hold no page
    (warcinfo, metadata), which are not documents and are not counted."""
    if record.headers.get("WARC-Type", "").lower() != "conversion":
        return None
    doc_id = record.headers.get("WARC-Record-ID") or fallback_id
    if record.content is None:
        return Parsed(None, make_reject(
            TOO_LARGE, id=doc_id, source=source, detail=f"record of {record.size} bytes over the cap"))
    try:
        text = record.content.decode("utf-8")
    except UnicodeDecodeError as e:
        return Parsed(None, make_reject(
            BAD_UTF8, id=doc_id, source=source, detail=f"invalid UTF-8 at byte {e.start}", sample=record.content))
    if not text or text.isspace():
        return Parsed(None, make_reject(EMPTY_TEXT, id=doc_id, source=source, detail="conversion record is blank"))
    skip = {"WARC-Type", "WARC-Record-ID", "WARC-Target-URI", "Content-Length"}
    metadata = {k: v for k, v in record.headers.items() if k not in skip}
    return Parsed(new_document(
        doc_id, text, source, url=record.headers.get("WARC-Target-URI") or None, metadata=compact_json(metadata),
    ), None)
