"""Readers on every format in ../shared/data and on hostile inputs, split reading of plain JSONL,
and one shared Beam pipeline that checks ReadCorpus end to end (docs once each, rejects by reason,
metrics)."""
from __future__ import annotations

import bz2
import collections
import glob
import gzip
import io
import json
import lzma
import tarfile
from pathlib import Path

import pytest
import zstandard
from hypothesis import example, given, settings
from hypothesis import strategies as st

from replaymill.pipeline.readers import WorkItem, classify, parse_hf_uri, read_item
from replaymill.pipeline.sources import ReadCorpus, expand_inputs, match_inputs, plan_reads
from replaymill.schemas.document import COLUMN_NAMES, to_record_batch

from conftest import read_path

DOLMA_697 = "dolma-cc/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
CAP = 16 << 10  # max_record_bytes for the hostile files: small, so a "gigantic" line stays cheap to write


def reasons(rejects) -> dict[str, int]:
    return dict(collections.Counter(r["reason"] for r in rejects))


# ---------------------------------------------------------------- hostile inputs, built once per module

def _good_records(shared_data: Path, n: int) -> list[dict]:
    out = []
    with gzip.open(shared_data / DOLMA_697) as f:
        for raw in f:
            rec = json.loads(raw)
            if rec["text"].strip() and len(json.dumps(rec)) < CAP // 2:  # under the cap of the hostile files
                out.append(rec)
            if len(out) == n:
                return out
    raise AssertionError("not enough real documents")


BAD_LINES: list[tuple[bytes, str]] = [
    (b'{"text": "unterminated', "malformed_json"),
    (b"<html>not json</html>", "malformed_json"),
    (b'["a", "list"]', "malformed_json"),
    (b'{"text": "caf\xe9 in latin-1"}', "bad_utf8"),
    (b'{"text": "\xff\xfe"}', "bad_utf8"),
    (b'{"meta": {"pile_set_name": "Pile-CC"}}', "missing_text"),
    (b'{"text": ["a", {"list": 1}], "meta": {"testing": 123}}', "text_not_string"),
    (b'{"text": {"nested": true}}', "text_not_string"),
    (b'{"text": ""}', "empty_text"),
    (b'{"text": "   \\n  "}', "empty_text"),
    (b'{"text": "' + b"gigantic " * (2 * CAP) + b'"}', "too_large"),  # 18 x CAP
    (b"x" * (20 * CAP), "too_large"),  # over the cap and not even JSON: never parsed, never held whole
]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, shared_data):
    """Plain, gzip and zstd JSONL files mixing 60 real documents with every kind of bad line, plus
    truncated and corrupt compressed files."""
    root = tmp_path_factory.mktemp("hostile")
    good = _good_records(shared_data, 60)
    lines = [json.dumps(r).encode() for r in good]
    mixed: list[bytes] = []
    for i, line in enumerate(lines):
        mixed.append(line)
        if i < len(BAD_LINES):
            mixed.append(BAD_LINES[i][0])
        if i % 7 == 0:
            mixed.append(b"   ")  # blank lines are not records
    body = b"\n".join(mixed) + b"\n"
    (root / "mixed.jsonl").write_bytes(body)
    (root / "mixed.jsonl.gz").write_bytes(gzip.compress(body))
    (root / "mixed.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(body))
    (root / "mixed.jsonl.bz2").write_bytes(bz2.compress(body))
    (root / "mixed.ndjson.xz").write_bytes(lzma.compress(body))

    clean = b"\n".join(lines) + b"\n"
    gz = gzip.compress(clean)
    (root / "cut.jsonl.gz").write_bytes(gz[: len(gz) * 6 // 10])
    half = len(lines) // 2
    frames = [zstandard.ZstdCompressor().compress(b"\n".join(part) + b"\n") for part in (lines[:half], lines[half:])]
    (root / "cut.jsonl.zst").write_bytes(frames[0] + frames[1][: len(frames[1]) // 2])
    (root / "whole.jsonl.zst").write_bytes(frames[0] + frames[1])
    (root / "notgzip.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"this is not deflate data\x00" * 10)

    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w") as tar:
        for name, data in (("shards/a.jsonl.zst", frames[0] + frames[1]), ("shards/b.jsonl", clean)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = tar_buf.getvalue()
    (root / "two.tar").write_bytes(tar_bytes)
    (root / "cut.tar").write_bytes(tar_bytes[: len(tar_bytes) - len(clean) // 2 - 1024])
    return {"root": root, "good": good, "ids": [r["id"] for r in good]}


def expected_bad() -> dict[str, int]:
    return dict(collections.Counter(reason for _, reason in BAD_LINES))


# ---------------------------------------------------------------- real data, one format at a time

def test_dolma_697_documents(shared_data):
    docs, rejects = read_path(shared_data / DOLMA_697)
    assert len(docs) + len(rejects) == 697
    assert reasons(rejects) == {"empty_text": 27}  # 27 records of the file have text ""
    assert len({d["id"] for d in docs}) == 670
    assert {d["source"] for d in docs} == {"dolma"} and {d["source_label"] for d in docs} == {"test_gz"}
    assert all(d["url"].startswith("http") for d in docs)
    assert set(docs[0]) == set(COLUMN_NAMES)
    assert to_record_batch(docs).num_rows == 670


@pytest.mark.parametrize("name, n, label", [
    ("dolma-cc/cc_en_head-0091.jsonl.gz", 10, "common-crawl"),
    ("dolma-cc/cc_en_head-0174.jsonl.gz", 10, "common-crawl"),
    ("dolma-cc/dolma-provided-documents-000.json.gz", 10, "common-crawl"),
    ("olmo-c4/c4_100_domains_theguardian_val.jsonl.gz", 10, "c4_100_domains"),
])
def test_dolma_shaped_files(shared_data, name, n, label):
    docs, rejects = read_path(shared_data / name)
    assert (len(docs), rejects) == (n, [])
    assert {d["source_label"] for d in docs} == {label}
    assert len({d["id"] for d in docs}) == n


def test_c4_files_get_positional_ids(shared_data):
    docs, rejects = read_path(shared_data / "olmo-c4/c4-sample.0*.json.gz")
    assert (len(docs), rejects) == (30, [])
    assert {d["source"] for d in docs} == {"c4"}
    assert all(d["url"].startswith("http") for d in docs)
    assert docs[0]["id"] == "c4-sample.01.json.gz@0"
    assert len({d["id"] for d in docs}) == 30
    assert json.loads(docs[0]["metadata"]) == {"url": docs[0]["url"], "date": "2019-04-21T18:54:04Z"}


@pytest.mark.parametrize("name, n_docs", [
    ("dolma-cc/dolma-sample-0000.warc.gz", 22),   # 22 responses (PROVENANCE.md), all 200 HTML
    ("cc-warc/resiliparse-warcfile.warc.gz", 16),  # 16 request/response/metadata triples
    ("cc-warc/whirlwind.warc.gz", 1),
])
def test_warc_responses_become_text(shared_data, name, n_docs):
    docs, rejects = read_path(shared_data / name)
    assert (len(docs), rejects) == (n_docs, [])
    assert all(d["id"].startswith("<urn:uuid:") and d["url"].startswith("http") for d in docs)
    assert all("<div" not in d["text"] and "<script" not in d["text"] for d in docs)
    assert {d["source"] for d in docs} == {"warc"}


def test_plain_and_truncated_warc(shared_data, tmp_path):
    data = gzip.decompress((shared_data / "dolma-cc/dolma-sample-0001.warc.gz").read_bytes())
    (tmp_path / "plain.warc").write_bytes(data)
    docs, rejects = read_path(tmp_path / "plain.warc")
    assert (len(docs), rejects) == (15, [])
    blob = (shared_data / "dolma-cc/dolma-sample-0001.warc.gz").read_bytes()
    (tmp_path / "cut.warc.gz").write_bytes(blob[: len(blob) // 2])
    cut_docs, rejects = read_path(tmp_path / "cut.warc.gz")
    assert 0 < len(cut_docs) < 15 and [d["id"] for d in cut_docs] == [d["id"] for d in docs[: len(cut_docs)]]
    assert reasons(rejects) == {"truncated_file": 1}


def test_warc_text_matches_common_crawl_wet(shared_data):
    """Our HTML extraction of the whirlwind page says what Common Crawl's own WET text says."""
    (warc,), _ = read_path(shared_data / "cc-warc/whirlwind.warc.gz")
    (wet,), _ = read_path(shared_data / "cc-warc/whirlwind.warc.wet.gz")
    assert warc["url"] == wet["url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert json.loads(wet["metadata"])["WARC-Identified-Content-Language"] == "spa"
    wet_lines = set(wet["text"].splitlines())
    warc_lines = warc["text"].splitlines()
    shared = [line for line in warc_lines if line in wet_lines]
    assert len(shared) >= 0.6 * len(warc_lines)


def test_wet_fixture_with_wrong_lengths(shared_data):
    docs, rejects = read_path(shared_data / "cc-warc/ccnet-sample.warc.wet.txt")
    assert (len(docs), rejects) == (3, [])
    assert {d["source"] for d in docs} == {"wet"}


def test_lm_dataformat_tar_with_list_text(shared_data):
    docs, rejects = read_path(shared_data / "lm-dataformat-fixture/blns.jsonl.zst.tar")
    assert len(docs) == 8 and rejects == []
    blns = (shared_data / "lm-dataformat-fixture/blns.txt").read_text(encoding="utf-8")
    assert sum(d["text"] == blns for d in docs) == 4
    joined = {d["id"]: d["text"] for d in docs if d["id"].endswith("@42839")}  # list-valued text, joined as lm_dataformat
    assert joined == dict.fromkeys(["blns.jsonl.zst.tar/test_dir/1.zst@42839", "blns.jsonl.zst.tar/test_dir/2.zst@42839"],
                                   "testing 123\n\ntesting 345")
    assert to_record_batch(docs).num_rows == 8  # the naughty strings are all storable


def test_wat_and_unknown_files_are_counted_not_read(shared_data, tmp_path):
    _, rejects = read_path(shared_data / "cc-warc/whirlwind.warc.wat.gz")
    assert reasons(rejects) == {"unsupported_format": 1}
    (tmp_path / "notes.md").write_text("# not a corpus\n")
    _, rejects = read_path(tmp_path / "notes.md")
    assert reasons(rejects) == {"unsupported_format": 1} and rejects[0]["source"] == "notes.md"


@pytest.mark.parametrize("name", ["huge.jsonl", "huge.jsonl.gz", "huge.jsonl.zst"])
def test_gigantic_line_is_skipped_without_buffering_it(tmp_path, name):
    """A 24 MiB line under a 64 KiB cap: rejected as too_large while peak memory stays a few MiB."""
    import tracemalloc

    body = b'{"text": "before"}\n{"text": "' + b"a" * (24 << 20) + b'"}\n{"text": "after"}\n'
    compress = {"huge.jsonl": bytes, "huge.jsonl.gz": lambda b: gzip.compress(b, 1),
                "huge.jsonl.zst": zstandard.ZstdCompressor().compress}[name]
    (tmp_path / name).write_bytes(compress(body))
    del body
    tracemalloc.start()
    try:
        docs, rejects = read_path(tmp_path / name, max_record_bytes=64 << 10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [d["text"] for d in docs] == ["before", "after"]
    assert reasons(rejects) == {"too_large": 1} and f"line of {(24 << 20) + 13} bytes" in rejects[0]["detail"]
    assert peak < 6 << 20, peak


def test_parquet_from_real_data_split_by_row_groups(shared_data, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    with gzip.open(shared_data / DOLMA_697) as f:
        records = [json.loads(line) for line in f]
    table = pa.Table.from_pylist([{**r, "metadata": json.dumps(r["metadata"])} for r in records])
    pq.write_table(table, tmp_path / "dolma.parquet", row_group_size=50)
    spec = match_inputs([str(tmp_path / "dolma.parquet")])[0]
    items = list(plan_reads(spec, 64 << 10))
    assert len(items) > 3 and items[0].start == 0 and items[-1].end == 14
    docs, rejects = read_path(tmp_path / "dolma.parquet", range_bytes=64 << 10)
    ref_docs, ref_rejects = read_path(shared_data / DOLMA_697)
    assert [d["id"] for d in docs] == [d["id"] for d in ref_docs]
    assert [d["text"] for d in docs] == [d["text"] for d in ref_docs]
    assert [d["url"] for d in docs] == [d["url"] for d in ref_docs]  # url found inside the stringified metadata
    assert reasons(rejects) == reasons(ref_rejects) == {"empty_text": 27}


def test_hugging_face_save_to_disk(shared_data, tmp_path):
    import datasets

    docs, _ = read_path(shared_data / "olmo-c4/c4-sample.0*.json.gz")
    rows = [{"text": d["text"], "url": d["url"], "timestamp": json.loads(d["metadata"])["date"]} for d in docs]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "c4_ds"), num_shards=2)
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:20]),
                          "validation": datasets.Dataset.from_list(rows[20:])}).save_to_disk(str(tmp_path / "c4_dict"))
    files = expand_inputs([str(tmp_path / "c4_ds")])
    assert len(files) == 2 and all(f.endswith(".arrow") for f in files)
    got, rejects = read_path(tmp_path / "c4_ds")
    assert rejects == [] and sorted(d["text"] for d in got) == sorted(r["text"] for r in rows)
    assert {d["source"] for d in got} == {"c4"} and got[0]["id"].startswith("c4_ds/data-00000-of-00002.arrow#")
    got_dict, _ = read_path(tmp_path / "c4_dict")
    assert len(got_dict) == 30 and {d["id"].split("/")[1] for d in got_dict} == {"train", "validation"}


def test_hub_dataset_rows_become_documents(monkeypatch):
    """The streaming Hub path (no network here): rows from `load_dataset(..., streaming=True)`."""
    import datasets

    calls = []

    def fake_load_dataset(name, config, split, streaming):
        calls.append((name, config, split, streaming))
        return iter([{"text": "row one", "url": "http://a.org/", "timestamp": "2019"}, {"text": ""},
                     {"text": "row three", "meta": {"pile_set_name": "Pile-CC"}}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    uri = "hf://allenai/c4?config=en&split=validation"
    out = list(read_item(WorkItem(uri, uri, "hf_hub"), 1 << 20))
    assert calls == [("allenai/c4", "en", "validation", True)]
    assert [p.doc["id"] if p.doc else p.reject["reason"] for p in out] == [f"{uri}#0", "empty_text", f"{uri}#2"]
    assert out[0].doc["source"] == "c4" and out[2].doc["source_label"] == "Pile-CC"


def test_hub_dataset_needs_network():
    with pytest.raises(FileNotFoundError, match="not reachable"):
        expand_inputs(["hf://replaymill-tests/no-such-dataset?split=validation"])
    assert parse_hf_uri("hf://allenai/c4?config=en&split=validation") == ("allenai/c4", "en", "validation")
    assert parse_hf_uri("hf://roneneldan/TinyStories") == ("roneneldan/TinyStories", None, "train")


# ---------------------------------------------------------------- inputs and planning

def test_missing_inputs_fail_with_one_clear_line(tmp_path):
    for pattern in (str(tmp_path / "nothing-*.jsonl"), str(tmp_path / "absent.jsonl.gz")):
        with pytest.raises(FileNotFoundError) as err:
            expand_inputs([pattern])
        assert pattern in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError):
        expand_inputs([])
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(FileNotFoundError, match="no readable corpus file"):
        expand_inputs([str(tmp_path / "empty_dir")])


def test_relative_patterns(shared_data, monkeypatch):
    monkeypatch.chdir(shared_data)
    names = [s.name for s in match_inputs(["*/*.tar", "olmo-c4"])]
    assert names[0] == "lm-dataformat-fixture/blns.jsonl.zst.tar" and names[1] == "olmo-c4/c4-sample.01.json.gz"
    assert all(path.startswith("/") for path in expand_inputs(["olmo-c4/*.gz"]))
    with pytest.raises(FileNotFoundError, match="'nothing/\\*.gz' matches no file"):
        expand_inputs(["nothing/*.gz"])


def test_directories_globs_and_names(shared_data):
    files = expand_inputs([str(shared_data / "olmo-c4"), str(shared_data / "olmo-c4/*.gz")])
    assert len(files) == 4  # PROVENANCE.md skipped, no file twice
    names = [s.name for s in match_inputs([str(shared_data / "*/*.warc.gz")])]
    assert "dolma-cc/dolma-sample-0000.warc.gz" in names and "cc-warc/whirlwind.warc.gz" in names


@pytest.mark.parametrize("name, expected", [
    ("a.jsonl", ("jsonl", "")), ("a.json.gz", ("jsonl", "gzip")), ("a.jsonl.zst", ("jsonl", "zstd")),
    ("1.zst", ("jsonl", "zstd")), ("a.ndjson.bz2", ("jsonl", "bz2")), ("x.jsonl.zst.tar", ("tar", "")),
    ("x.tar.gz", ("tar", "gzip")), ("x.tgz", ("tar", "gzip")), ("c.warc.gz", ("warc", "gzip")),
    ("c.warc", ("warc", "")), ("c.warc.wet.gz", ("wet", "gzip")), ("s.warc.wet.txt", ("wet", "")),
    ("c.warc.wat.gz", ("unsupported", "gzip")), ("d.parquet", ("parquet", "")), ("d.arrow", ("arrow", "")),
    ("README.md", ("unsupported", "")), ("hf://a/b", ("hf_hub", "")),
])
def test_classify(name, expected):
    assert classify(name) == expected


# ---------------------------------------------------------------- hostile inputs

@pytest.mark.parametrize("name", ["mixed.jsonl", "mixed.jsonl.gz", "mixed.jsonl.zst", "mixed.jsonl.bz2",
                                  "mixed.ndjson.xz"])
def test_hostile_lines_counted_by_reason(hostile, name):
    docs, rejects = read_path(hostile["root"] / name, max_record_bytes=CAP)
    assert [d["id"] for d in docs] == hostile["ids"]  # every good line once, in order
    assert [d["text"] for d in docs] == [r["text"] for r in hostile["good"]]
    assert reasons(rejects) == expected_bad()
    assert all(r["source"] == name and r["stage"] == "read" and r["id"].startswith(f"{name}@") for r in rejects)


def test_truncated_gzip_keeps_documents_before_the_cut(hostile):
    docs, rejects = read_path(hostile["root"] / "cut.jsonl.gz")
    assert 0 < len(docs) < 60
    assert [d["id"] for d in docs] == hostile["ids"][: len(docs)]
    assert reasons(rejects) == {"truncated_file": 1}
    assert "cut.jsonl.gz" in rejects[0]["detail"] and f"after {len(docs)} records" in rejects[0]["detail"]


def test_truncated_zstd_detected_and_whole_multiframe_read(hostile):
    docs, rejects = read_path(hostile["root"] / "cut.jsonl.zst")
    assert 30 <= len(docs) < 60 and [d["id"] for d in docs] == hostile["ids"][: len(docs)]
    assert reasons(rejects) == {"truncated_file": 1}
    docs, rejects = read_path(hostile["root"] / "whole.jsonl.zst")
    assert ([d["id"] for d in docs], rejects) == (hostile["ids"], [])


def test_misnamed_compression_is_sniffed(hostile, tmp_path):
    body = (hostile["root"] / "mixed.jsonl").read_bytes()
    (tmp_path / "really_plain.jsonl.zst").write_bytes(body)
    (tmp_path / "really_gzip.jsonl").write_bytes(gzip.compress(body))
    for name in ("really_plain.jsonl.zst", "really_gzip.jsonl"):
        docs, rejects = read_path(tmp_path / name, max_record_bytes=CAP, range_bytes=4096)
        assert [d["id"] for d in docs] == hostile["ids"] and reasons(rejects) == expected_bad()


@settings(max_examples=60, deadline=None)
@given(payloads=st.lists(st.binary(max_size=3000) | st.just(b"a" * 300_000), min_size=1, max_size=3),
       checksum=st.booleans(), content_size=st.booleans(), skippable=st.booleans(), data=st.data())
def test_zstd_frame_tracker_finds_every_truncation(payloads, checksum, content_size, skippable, data):
    """The frame tracker says "complete" exactly at frame ends, whatever the frame options."""
    from replaymill.pipeline.compression import ZstdFrameTracker

    cctx = zstandard.ZstdCompressor(write_checksum=checksum, write_content_size=content_size)
    frames = [cctx.compress(p) for p in payloads]
    if skippable:
        frames.insert(1, (0x184D2A53).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"skip!")
    blob = b"".join(frames)
    ends = {sum(len(f) for f in frames[: i + 1]) for i in range(len(frames))}
    cut = data.draw(st.integers(min_value=1, max_value=len(blob)))
    tracker = ZstdFrameTracker()
    for i in range(0, cut, 7):  # fed in odd-sized pieces
        tracker.feed(blob[i:min(i + 7, cut)])
    assert tracker.at_frame_boundary() == (cut in ends)


def test_corrupt_file_is_one_unreadable_reject(hostile):
    docs, rejects = read_path(hostile["root"] / "notgzip.jsonl.gz")
    assert docs == [] and reasons(rejects) == {"unreadable_file": 1}


def test_tar_of_shards_and_truncated_tar(hostile):
    docs, rejects = read_path(hostile["root"] / "two.tar")
    assert rejects == [] and [d["id"] for d in docs] == hostile["ids"] * 2
    docs, rejects = read_path(hostile["root"] / "cut.tar")
    assert [d["id"] for d in docs] == hostile["ids"] + hostile["ids"][: len(docs) - 60]
    assert reasons(rejects) == {"truncated_file": 1}


def test_progress_logged_per_work_item(hostile, caplog):
    from replaymill.pipeline.sources import _ReadItemFn

    item = WorkItem(str(hostile["root"] / "mixed.jsonl.gz"), "mixed.jsonl.gz", "jsonl", "gzip")
    with caplog.at_level("DEBUG", logger="replaymill.pipeline.sources"):  # per-item lines are debug: the bars show progress
        outputs = list(_ReadItemFn(CAP).process(item))
    assert len(outputs) == 60 + len(BAD_LINES)
    assert f"read mixed.jsonl.gz: 60 docs, {len(BAD_LINES)} rejects" in caplog.text


def _key(docs, rejects):
    return sorted((d["id"], d["text"]) for d in docs), sorted((r["reason"], r["id"]) for r in rejects)


@pytest.fixture(scope="module")
def whole_read(hostile):
    return _key(*read_path(hostile["root"] / "mixed.jsonl", max_record_bytes=CAP))


@settings(max_examples=40, deadline=None)
@given(range_bytes=st.integers(min_value=2048, max_value=1_000_000))
@example(range_bytes=4096)
@example(range_bytes=CAP + 1)
def test_split_reading_equals_whole_file_reading(hostile, whole_read, range_bytes):
    """Byte ranges of any size give each line to exactly one range, as Beam's text source does."""
    spec = match_inputs([str(hostile["root"] / "mixed.jsonl")])[0]
    items = list(plan_reads(spec, range_bytes))
    assert len(items) == -(-spec.size // range_bytes)
    docs, rejects = [], []
    for item in items:
        for parsed in read_item(item, CAP):
            (docs.append(parsed.doc) if parsed.doc else rejects.append(parsed.reject))
    assert _key(docs, rejects) == whole_read


def test_split_at_every_line_boundary(hostile, whole_read):
    """Ranges that start exactly on a line start, one byte before or after it."""
    path = hostile["root"] / "mixed.jsonl"
    data = path.read_bytes()
    starts = [0] + [i + 1 for i, b in enumerate(data) if b == 0x0A][:-1]
    cuts = sorted({c for s in starts[1:] for c in (s - 1, s, s + 1)})
    bounds = [0] + cuts + [len(data)]
    docs, rejects = [], []
    for start, end in zip(bounds, bounds[1:]):
        for parsed in read_item(WorkItem(str(path), "mixed.jsonl", "jsonl", "", start, end), CAP):
            (docs.append(parsed.doc) if parsed.doc else rejects.append(parsed.reject))
    assert _key(docs, rejects) == whole_read


# ---------------------------------------------------------------- Beam: one pipeline over everything

@pytest.fixture(scope="module")
def beam_run(shared_data, hostile, tmp_path_factory):
    """ReadCorpus over all shared data formats and the hostile files, split small; outputs and metrics."""
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter

    out = tmp_path_factory.mktemp("beam_out")
    root = hostile["root"]
    patterns = [
        str(shared_data / "dolma-cc/*.gz"), str(shared_data / "olmo-c4/*.gz"),
        str(shared_data / "cc-warc/*"), str(shared_data / "lm-dataformat-fixture/*.tar"),
        str(root / "mixed.jsonl"), str(root / "cut.jsonl.gz"), str(root / "cut.jsonl.zst"),
        str(root / "notgzip.jsonl.gz"),
    ]
    pipeline = beam.Pipeline(runner="DirectRunner")
    docs, rejects = pipeline | "Read" >> ReadCorpus(patterns, max_record_bytes=CAP * 16, range_bytes=4096)
    docs | "DocsJson" >> beam.Map(json.dumps) | "WriteDocs" >> beam.io.WriteToText(str(out / "docs"))
    rejects | "RejJson" >> beam.Map(json.dumps) | "WriteRej" >> beam.io.WriteToText(str(out / "rejects"))
    result = pipeline.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.result
                for c in result.metrics().query(MetricsFilter().with_namespace("replaymill.read"))["counters"]}
    counters.update({f"rejects_{c.key.metric.name}": c.result
                     for c in result.metrics().query(MetricsFilter().with_namespace("replaymill.rejects"))["counters"]})

    def load(prefix):
        return [json.loads(line) for f in sorted(glob.glob(str(out / f"{prefix}-*"))) for line in open(f)]

    expected_docs, expected_rejects = [], []
    for pattern in patterns:
        d, r = read_path(pattern, max_record_bytes=CAP * 16)
        expected_docs += d
        expected_rejects += r
    return {"docs": load("docs"), "rejects": load("rejects"), "counters": counters,
            "expected_docs": expected_docs, "expected_rejects": expected_rejects}


def test_beam_reads_every_document_exactly_once(beam_run):
    docs = beam_run["docs"]
    key = sorted((d["id"], d["source"], d["text"]) for d in docs)
    assert key == sorted((d["id"], d["source"], d["text"]) for d in beam_run["expected_docs"])
    by_source = collections.Counter(d["source"] for d in docs)
    assert by_source["c4"] == 30
    assert by_source["warc"] == 22 + 15 + 16 + 1 and by_source["wet"] == 3 + 1
    assert by_source["lm_dataformat"] == 8
    # the 697-doc file, cc_en_head x 2, provided documents, Paloma C4, 60 hostile-file documents
    # and what the two truncated files held before their cut
    assert by_source["dolma"] > 670 + 4 * 10 + 60
    assert len({d["id"] for d in docs if d["source"] == "warc"}) == 54
    assert set(docs[0]) == set(COLUMN_NAMES)


def test_beam_rejects_and_counters(beam_run):
    got = reasons(beam_run["rejects"])
    assert got == reasons(beam_run["expected_rejects"])
    bad = expected_bad()
    assert got["malformed_json"] == bad["malformed_json"] and got["too_large"] == bad["too_large"]
    assert got["empty_text"] == 27 + bad["empty_text"] and got["text_not_string"] == bad["text_not_string"]
    assert got["truncated_file"] == 2 and got["unreadable_file"] == 1
    assert got["unsupported_format"] == 2  # the WAT file and cc-warc/PROVENANCE.md
    counters = beam_run["counters"]
    assert counters["docs_read"] == len(beam_run["docs"])
    assert {k[len("rejects_"):]: v for k, v in counters.items() if k.startswith("rejects_")} == got
