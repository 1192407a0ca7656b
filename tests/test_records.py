"""Pure record parsing: corpus shapes, reject reasons, WET splitting, HTML to text (no Beam, no I/O
beyond reading fixture files)."""
from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaymill.schemas.document import COLUMN_NAMES, to_record_batch
from replaymill.transforms.html_text import charset_of, decode_html, html_to_text
from replaymill.transforms.records import (
    BAD_UTF8, EMPTY_TEXT, MALFORMED_JSON, MISSING_TEXT, REJECT_REASONS, TEXT_NOT_STRING, TOO_LARGE,
    Line, detect_shape, parse_json_line, record_to_document, split_wet_records, wet_record_to_document,
)


def _line(obj) -> bytes:
    return json.dumps(obj).encode()


def _doc(obj, fallback_id="f.jsonl@0"):
    parsed = parse_json_line(_line(obj), fallback_id=fallback_id)
    assert parsed.reject is None, parsed.reject
    return parsed.doc


def _reason(raw: bytes) -> str:
    parsed = parse_json_line(raw, fallback_id="f.jsonl@7")
    assert parsed.doc is None
    assert parsed.reject["id"] is not None and parsed.reject["stage"] == "read"
    return parsed.reject["reason"]


@pytest.mark.parametrize("record, shape, label, url", [
    ({"text": "a b", "meta": {"pile_set_name": "ArXiv"}}, "pile", "ArXiv", None),
    ({"text": "a b", "meta": {"redpajama_set_name": "RedPajamaGithub"}}, "redpajama", "RedPajamaGithub", None),
    ({"text": "a b", "meta": '{"redpajama_set_name": "RedPajamaC4"}'}, "redpajama", "RedPajamaC4", None),
    ({"id": "x1", "text": "a b", "source": "stack-dedup", "metadata": {"url": "http://e.org/p"}},
     "dolma", "stack-dedup", "http://e.org/p"),
    ({"id": "x2", "text": "a b", "source": "cc", "metadata": {"url": "e.org/p", "warc_url": "http://e.org/p"}},
     "dolma", "cc", "http://e.org/p"),
    ({"text": "a b", "url": "https://c4.org/x", "timestamp": "2019-04-25T12:57:54Z"}, "c4", None, "https://c4.org/x"),
    ({"text": "a b", "id": "<urn:uuid:1>", "dump": "CC-MAIN-2013-20", "url": "http://f.org/", "date": "2013"},
     "fineweb", None, "http://f.org/"),
    ({"raw_content": "a b", "url": "http://cc.net/", "digest": "sha1:X", "cc_segment": "s"}, "ccnet", None,
     "http://cc.net/"),
    ({"text": "a b", "meta": {}}, "lm_dataformat", None, None),
    ({"content": "def f(): pass", "repo": "x/y"}, "generic", None, None),
])
def test_shapes_labels_and_urls(record, shape, label, url):
    assert detect_shape(record) == shape
    doc = _doc(record)
    assert doc["source"] == shape and doc["source_label"] == label and doc["url"] == url
    assert set(doc) == set(COLUMN_NAMES)
    assert doc["n_chars"] == len(doc["text"])
    # everything but the text and the id is kept, losslessly, as compact JSON
    rest = {k: v for k, v in record.items() if k not in ("text", "raw_content", "content", "id")}
    assert json.loads(doc["metadata"]) == rest
    assert doc["metadata"] == json.dumps(rest, separators=(",", ":"), ensure_ascii=False)


def test_own_id_kept_else_positional_fallback():
    assert _doc({"id": "abc", "text": "t"}, "f@9")["id"] == "abc"
    assert _doc({"id": 17, "text": "t"}, "f@9")["id"] == "17"
    assert _doc({"id": "", "text": "t"}, "f@9")["id"] == "f@9"
    assert _doc({"text": "t"}, "f@9")["id"] == "f@9"


def test_real_dolma_and_c4_lines(shared_data):
    with gzip.open(shared_data / "dolma-cc/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz") as f:
        raw = f.readline()
    doc = parse_json_line(raw, fallback_id="unused").doc
    assert doc["id"] == "blj5uzvcoa4iybpd5o6kom5nir6ngmoj"
    assert doc["source"] == "dolma" and doc["source_label"] == "test_gz"
    assert doc["url"] == "http://16thfleet.wikidot.com/chatter:anewhome"
    assert json.loads(doc["metadata"])["metadata"]["uncompressed_offset"] == 813814
    with gzip.open(shared_data / "olmo-c4/c4-sample.01.json.gz") as f:
        doc = parse_json_line(f.readline(), fallback_id="c4-sample.01.json.gz@0").doc
    assert doc["source"] == "c4" and doc["id"] == "c4-sample.01.json.gz@0"
    assert doc["url"].startswith("https://www.kentlive.news/")
    assert to_record_batch([doc]).num_rows == 1  # fits the Arrow schema


@pytest.mark.parametrize("raw, reason", [
    (b'{"text": "unterminated', MALFORMED_JSON),
    (b"not json at all", MALFORMED_JSON),
    (b'["a", "list"]', MALFORMED_JSON),
    (b"42", MALFORMED_JSON),
    (b"[" * 100_000 + b"]" * 100_000, MALFORMED_JSON),  # nesting deeper than the parser's recursion
    (b'{"text": "caf\xe9 latin-1"}', BAD_UTF8),
    (b'{"text": "lone \\ud800 surrogate"}', BAD_UTF8),
    (b'{"meta": {"pile_set_name": "Pile-CC"}}', MISSING_TEXT),
    (b'{"text": ["a", 3], "meta": {}}', TEXT_NOT_STRING),  # a list of strings is joined (test_text_reader)
    (b'{"text": 3}', TEXT_NOT_STRING),
    (b'{"text": null}', TEXT_NOT_STRING),
    (b'{"text": ""}', EMPTY_TEXT),
    (b'{"text": " \\n\\t "}', EMPTY_TEXT),
])
def test_reject_reasons(raw, reason):
    assert reason in REJECT_REASONS
    assert _reason(raw) == reason


def test_reject_record_shape_and_sample_cut():
    parsed = parse_json_line(b'{"text": ' + b'"x' * 1000, fallback_id="f@3")
    rej = parsed.reject
    assert set(rej) == {"reason", "stage", "id", "source", "detail", "sample", "matched_id", "n_tokens"}
    assert rej["n_tokens"] is None  # a reader reject has no text to count
    assert rej["id"] == "f@3" and len(rej["sample"]) == 200 and rej["detail"]


def test_byte_order_mark_and_crlf_are_not_errors():
    assert _doc_raw(b'\xef\xbb\xbf{"text": "bom"}\r\n')["text"] == "bom"


def _doc_raw(raw: bytes):
    parsed = parse_json_line(raw, fallback_id="f@0")
    assert parsed.doc is not None, parsed.reject
    return parsed.doc


@pytest.mark.parametrize("raw, field", [
    (b'{"id": "x\\ud800y", "text": "ok"}', "id"),
    (b'{"id": "a", "text": "ok", "url": "http://e.org/\\udfff", "timestamp": "t"}', "url"),
    (b'{"id": "a", "text": "ok", "source": "cc\\udc80", "metadata": {"url": "e.org"}}', "source"),
    (b'{"id": "a", "text": "ok", "source": "cc", "metadata": {"url": "e.org/\\ud83d"}}', "metadata.url"),
    (b'{"text": "ok", "meta": {"pile_set_name": "Pile\\udc80CC"}}', "meta.pile_set_name"),
    (b'{"text": "ok", "meta": {"title": "bad \\udc80 title", "t": "\xc3\xa9"}}', "meta.title"),
    (b'{"text": "ok", "tags": ["fine", "bad\\udc00"]}', "tags[1]"),
    (b'{"text": "ok", "k\\udc00": 1}', "k\\udc00 (a key)"),
    (b'{"raw_content": "bad \\ud800 text", "url": "u", "digest": "d", "cc_segment": "s"}', "raw_content"),
    (b'{"text": "ok", "id": "x\xed\xa0\x80y"}', None),  # a UTF-8-encoded surrogate is not UTF-8 at all
])
def test_lone_surrogate_in_any_field_is_a_bad_utf8_reject(raw, field):
    """Issue 10.4: any string field Arrow cannot store rejects the record, naming the field
    (before: only the text was checked, and a bad id, url or Dolma source crashed the build)."""
    parsed = parse_json_line(raw, fallback_id="f@0")
    assert parsed.doc is None and parsed.reject["reason"] == BAD_UTF8
    if field is not None:
        assert parsed.reject["detail"] == f"{field} has lone surrogate escapes"
    json.dumps(parsed.reject, ensure_ascii=False).encode("utf-8")  # the reject itself can be written


def test_table_rows_with_surrogates_are_rejected_too():
    parsed = record_to_document({"text": "ok", "id": "r\udc80"}, fallback_id="t.parquet#1")
    assert parsed.reject["reason"] == BAD_UTF8 and parsed.reject["id"] == "r\\udc80"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(value=json_values, text=st.one_of(st.none(), st.text(), st.integers()))
def test_any_json_value_gives_exactly_one_result(value, text):
    """Whatever a line holds, parsing returns a storable document or a known reject, never raises."""
    if isinstance(value, dict) and text is not None:
        value = {**value, "text": text}
    parsed = parse_json_line(json.dumps(value).encode(), fallback_id="h@0")
    assert (parsed.doc is None) != (parsed.reject is None)
    if parsed.doc is not None:
        assert parsed.doc["text"].strip()
        assert to_record_batch([parsed.doc]).num_rows == 1
    else:
        assert parsed.reject["reason"] in REJECT_REASONS


def test_record_to_document_accepts_table_rows():
    parsed = record_to_document({"text": "row text", "url": None, "n": 3}, fallback_id="t.parquet#5")
    assert parsed.doc["id"] == "t.parquet#5" and parsed.doc["url"] is None
    assert json.loads(parsed.doc["metadata"]) == {"url": None, "n": 3}


def _lines(data: bytes) -> list[Line]:
    out, offset = [], 0
    for raw in data.splitlines(keepends=True):
        out.append(Line(offset, raw, len(raw)))
        offset += len(raw)
    return out


def test_wet_split_tolerates_wrong_content_length(shared_data):
    """The cc_net fixture's Content-Length values are wrong; splitting on version lines still
    finds its warcinfo and three conversion records, text intact."""
    data = (shared_data / "cc-warc/ccnet-sample.warc.wet.txt").read_bytes()
    records = list(split_wet_records(_lines(data), 1 << 20))
    assert [r.headers["WARC-Type"] for r in records] == ["warcinfo", "conversion", "conversion", "conversion"]
    assert records[0].offset == 0
    parsed = [wet_record_to_document(r, fallback_id=f"s@{r.offset}") for r in records]
    assert parsed[0] is None  # warcinfo is not a document
    docs = [p.doc for p in parsed[1:]]
    assert [d["url"] for d in docs] == ["http://sample_english.com", "http://sample_chinese.zh",
                                        "http://sample_russian.ru"]
    assert docs[0]["text"].startswith("Famous Mark Twain Quotes\nDon't part with your illusions.")
    assert docs[0]["text"].endswith("Truth isn't.")
    assert docs[1]["text"].startswith("馬克·吐溫名言")
    assert docs[0]["id"] == "<urn:uuid:cd61b0b3-d9b0-466c-9a5e-99c191f8d2e1>"
    assert json.loads(docs[0]["metadata"])["WARC-Date"] == "2019-03-18T00:00:00Z"


def test_wet_record_over_cap_is_too_large():
    data = (b"WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Record-ID: <r1>\r\n\r\n" + b"word " * 100 + b"\r\n"
            b"WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Record-ID: <r2>\r\n\r\nsmall\r\n")
    parsed = [wet_record_to_document(r, fallback_id="x") for r in split_wet_records(_lines(data), 100)]
    assert parsed[0].reject["reason"] == TOO_LARGE and parsed[0].reject["id"] == "<r1>"
    assert parsed[1].doc["text"] == "small"


def test_html_to_text_keeps_blocks_drops_boilerplate():
    html = """<html><head><title>T</title><style>p {color: red}</style><script>var x = 1;</script></head>
    <body><header>Site header</header><nav><a href="/">Home</a> | <a href="/b">Blog</a></nav>
    <h1>The   title</h1><p>First <b>bold</b>
       paragraph, wrapped.</p><div>Second<br>line</div><ul><li>one</li><li>two</li></ul>
    <footer>Copyright</footer><form>Search</form></body></html>"""
    assert html_to_text(html) == "The title\nFirst bold paragraph, wrapped.\nSecond\nline\none\ntwo"


def test_html_pre_keeps_lines():
    html = "<body>See:<pre>def f():\n    return 1\n</pre><p>end</p></body>"
    assert html_to_text(html) == "See:\ndef f():\nreturn 1\nend"


def test_html_charsets():
    page = "<html><body><p>你好，世界</p></body></html>"
    assert html_to_text(decode_html(page.encode("gb2312"), charset_of("text/html; charset=GB2312"))) == "你好，世界"
    meta_page = '<html><head><meta charset="windows-1251"></head><body><p>Привет</p></body></html>'
    assert html_to_text(decode_html(meta_page.encode("cp1251"), None)) == "Привет"
    assert html_to_text(decode_html("<p>é</p>".encode(), "no-such-charset")) == "é"
    assert charset_of("text/html") is None and charset_of(None) is None
    assert html_to_text("") == ""
