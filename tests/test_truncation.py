"""A file cut short is reported, never read as a smaller whole file (issue 10.5).

Every streamed format (JSONL, WET, WARC, tar of JSONL) in every codec (gzip as one member, zstd,
bz2, xz), cut inside its data, must give exactly one `truncated_file` reject after a prefix of the
documents the whole file gives; so must the formats that mark their own end when stored plain
(a WARC record's Content-Length, a tar's end-of-archive block, an Arrow IPC stream's end marker).
"""
from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import tarfile
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard

from replaymill.pipeline.readers import read_item, work_item

COMPRESS = {
    "gz": lambda b: gzip.compress(b, mtime=0),  # one gzip member holding the whole file
    "zst": lambda b: zstandard.ZstdCompressor().compress(b),
    "bz2": bz2.compress,
    "xz": lzma.compress,
}
CUTS = (0.3, 0.6, 0.95)


def read_file(path: Path):
    item = work_item(str(path), path.name)
    docs, rejects = [], []
    for parsed in read_item(item, 32 << 20):
        (docs.append(parsed.doc) if parsed.doc is not None else rejects.append(parsed.reject))
    return docs, rejects


@pytest.fixture(scope="module")
def plain(shared_data) -> dict[str, bytes]:
    """Uncompressed bodies of each streamed format, from real data."""
    records = [json.loads(line) for line in gzip.open(shared_data / "dolma-cc/cc_en_head-0091.jsonl.gz")]
    jsonl = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    wet = b""
    for i, r in enumerate(records):
        body = r["text"].encode()
        wet += (f"WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Record-ID: <urn:uuid:{i}>\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body + b"\r\n\r\n"
    warc = gzip.decompress((shared_data / "dolma-cc/dolma-sample-0000.warc.gz").read_bytes())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        half = jsonl.index(b"\n", len(jsonl) // 2) + 1
        for n, part in enumerate((jsonl[:half], jsonl[half:])):
            data = zstandard.ZstdCompressor().compress(part)
            info = tarfile.TarInfo(f"shard/{n}.jsonl.zst")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return {"jsonl": jsonl, "warc.wet": wet, "warc": warc, "jsonl.zst.tar": buf.getvalue()}


@pytest.mark.parametrize("codec", sorted(COMPRESS))
@pytest.mark.parametrize("fmt", ["jsonl", "warc.wet", "warc", "jsonl.zst.tar"])
def test_cut_compressed_file_is_truncated_file(plain, tmp_path, fmt, codec):
    blob = COMPRESS[codec](plain[fmt])
    whole = tmp_path / f"whole.{fmt}.{codec}"
    whole.write_bytes(blob)
    docs, rejects = read_file(whole)
    assert len(docs) >= 10 and (rejects == [] or fmt == "warc")  # the WARC holds non-page responses
    assert all(r["reason"] == "unsupported_content" for r in rejects)
    ids = [d["id"] for d in docs]
    for cut in CUTS:
        path = tmp_path / f"cut{cut}.{fmt}.{codec}"
        path.write_bytes(blob[: int(len(blob) * cut)])
        cut_docs, cut_rejects = read_file(path)
        truncated = [r for r in cut_rejects if r["reason"] == "truncated_file"]
        assert len(truncated) == 1, (fmt, codec, cut, cut_rejects[-3:])
        assert [d["id"] for d in cut_docs] == ids[: len(cut_docs)] and len(cut_docs) < len(ids)


def test_single_member_warc_gz_cut_at_60_percent(shared_data, tmp_path):
    """The issue's repro: before, 18 of 22 pages and 0 rejects, because warcio swallows the EOFError."""
    blob = gzip.compress(gzip.decompress((shared_data / "dolma-cc/dolma-sample-0000.warc.gz").read_bytes()))
    (tmp_path / "one.warc.gz").write_bytes(blob[: len(blob) * 6 // 10])
    docs, rejects = read_file(tmp_path / "one.warc.gz")
    assert 0 < len(docs) < 22
    assert [r["reason"] for r in rejects if r["reason"] != "unsupported_content"] == ["truncated_file"]


@pytest.mark.parametrize("cut", CUTS)
def test_plain_warc_cut_inside_a_record(plain, tmp_path, cut):
    """A record short of its Content-Length was a shorter page before; now the file is reported."""
    (tmp_path / "cut.warc").write_bytes(plain["warc"][: int(len(plain["warc"]) * cut)])
    docs, rejects = read_file(tmp_path / "cut.warc")
    assert [r["reason"] for r in rejects if r["reason"] != "unsupported_content"] == ["truncated_file"]


def test_plain_tar_cut_at_a_member_boundary(plain, tmp_path):
    """tarfile ends quietly when the data stops exactly at a header; the end-of-archive block is missing."""
    tar = plain["jsonl.zst.tar"]
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        second = t.getmembers()[1].offset  # where the second member's header starts
    for end in (second, second + 100):  # at the header, and inside it
        (tmp_path / "cut.tar").write_bytes(tar[:end])
        docs, rejects = read_file(tmp_path / "cut.tar")
        assert [r["reason"] for r in rejects] == ["truncated_file"] and docs
    (tmp_path / "whole.tar").write_bytes(tar)
    assert read_file(tmp_path / "whole.tar")[1] == []


def test_arrow_stream_cut_between_batches(tmp_path):
    """An IPC stream (HF save_to_disk) ends quietly at a message boundary unless its end marker is checked."""
    table = pa.table({"text": [f"document number {i}" for i in range(300)]})
    sink = io.BytesIO()
    ends = []
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=100):
            writer.write_batch(batch)
            ends.append(sink.tell())
    data = sink.getvalue()
    (tmp_path / "whole.arrow").write_bytes(data)
    docs, rejects = read_file(tmp_path / "whole.arrow")
    assert (len(docs), rejects) == (300, [])
    (tmp_path / "cut.arrow").write_bytes(data[: ends[1]])  # two whole batches, then nothing
    docs, rejects = read_file(tmp_path / "cut.arrow")
    assert len(docs) == 200 and [r["reason"] for r in rejects] == ["truncated_file"]
