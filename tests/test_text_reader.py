"""Build reads plain text as `train` does (one splitting rule), and joins list-valued Pile text."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import apache_beam as beam
import pytest

from replaymill.pipeline.build import build
from replaymill.pipeline.options import make_options
from replaymill.pipeline.readers import READERS, WorkItem, classify, read_item
from replaymill.schemas.recipe import resolve_recipe
from replaymill.shards.io import read_manifest
from replaymill.trainer.sources import _text_documents
from replaymill.transforms.plain_text import TEXT_DOC_CHARS, text_documents
from replaymill.transforms.records import parse_json_line

LIMIT = 32 << 20


def read(path: Path, name: str | None = None, limit: int = LIMIT):
    fmt, codec = classify(path.name)
    docs, rejects = [], []
    for parsed in read_item(WorkItem(str(path), name or path.name, fmt, codec), limit):
        (docs.append(parsed.doc) if parsed.doc is not None else rejects.append(parsed.reject))
    return docs, rejects


def test_classify_text_but_not_wet():
    assert classify("book.txt") == ("text", "") and classify("book.txt.gz") == ("text", "gzip")
    assert classify("ccnet-sample.warc.wet.txt")[0] == "wet"
    assert "text" in READERS


def test_paragraphs_and_long_runs_split_as_train_splits(tmp_path):
    para = "A short paragraph.\nIts second line.\n"
    long_run = "".join(f"Line {i} of a book that puts one paragraph on every line.\n" for i in range(120))
    path = tmp_path / "book.txt"
    path.write_text("\ufeff" + para + "\n\n" + long_run + "\n" + para, encoding="utf-8")
    docs, rejects = read(path)
    assert rejects == []
    assert [d["text"] for d in docs] == list(_text_documents(path))  # the trainer's documents, exactly
    assert docs[0]["text"] == para.rstrip("\n").lstrip("\ufeff") and len(docs) > 3
    assert all(len(d["text"]) < TEXT_DOC_CHARS + 200 for d in docs)
    raw = path.read_bytes()
    for d in docs:  # ids are name@byte offset of the document's first line
        offset = int(d["id"].rsplit("@", 1)[1])
        first = d["text"].split("\n", 1)[0].encode("utf-8")
        assert d["id"].startswith("book.txt@") and raw[offset:].lstrip(b"\xef\xbb\xbf").startswith(first)
    assert {d["source"] for d in docs} == {"text"}


def test_compressed_text_reads_the_same(tmp_path):
    text = "One.\nTwo.\n\nThree.\n"
    (tmp_path / "a.txt").write_text(text)
    with gzip.open(tmp_path / "a.txt.gz", "wt") as f:
        f.write(text)
    plain, _ = read(tmp_path / "a.txt", name="a")
    packed, _ = read(tmp_path / "a.txt.gz", name="a")
    assert [(d["id"], d["text"]) for d in plain] == [(d["id"], d["text"]) for d in packed] == [
        ("a@0", "One.\nTwo."), ("a@11", "Three.")]


def test_bad_and_oversized_lines_are_rejected_not_lost(tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"good start\nbad \xff byte\nafter\n\n" + b"x" * 100 + b"\nend\n")
    docs, rejects = read(path, limit=64)
    assert [d["text"] for d in docs] == ["good start", "after", "end"]
    assert [(r["reason"], r["id"]) for r in rejects] == [("bad_utf8", "mixed.txt@11"), ("too_large", "mixed.txt@29")]


def test_text_documents_offsets():
    lines = [(0, "a\n"), (2, "\n"), (3, "b\n"), (5, "c")]
    assert list(text_documents(lines)) == [(0, "a"), (3, "b\nc")]


def test_pile_list_text_is_joined_as_lm_dataformat():
    parsed = parse_json_line(json.dumps({"text": ["First paragraph.", "Second."], "meta": {"pile_set_name": "Pile-CC"}})
                             .encode(), fallback_id="f@0")
    assert parsed.doc["text"] == "First paragraph.\n\nSecond." and parsed.doc["source"] == "pile"
    assert parse_json_line(b'{"text": []}', fallback_id="f@1").reject["reason"] == "text_not_string"


@pytest.fixture(scope="module")
def prose(shared_data) -> Path:
    return shared_data / "prose" / "en-tinyshakespeare.txt"


def test_build_reads_a_txt_input(prose, tmp_path):
    excerpt = tmp_path / "shakespeare.txt"
    excerpt.write_text(prose.read_text(encoding="utf-8")[:60_000], encoding="utf-8")
    with beam.Pipeline(options=make_options(running_mode="in_memory")) as p:
        build(p, [str(excerpt)], str(tmp_path / "out"), resolve_recipe("minimal"))
    manifest = read_manifest(str(tmp_path / "out"))
    expected = list(_text_documents(excerpt))
    assert manifest.funnel.read == len(expected) > 20
    assert "unsupported_format" not in manifest.funnel.dropped
    assert manifest.total.docs == manifest.funnel.kept > 0
