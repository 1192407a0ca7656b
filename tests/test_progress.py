"""Progress while a job runs: workers' counts reach the driver through the channel (in one process
and across SDK worker processes), input bytes are counted as read, even in a file with no
documents, and nothing is shown when stdout is not a terminal."""
from __future__ import annotations

import gzip
import io
import json
import pickle

import apache_beam as beam
import pytest
from rich.console import Console

from replaymill.pipeline import progress
from replaymill.pipeline.build import build
from replaymill.pipeline.options import make_options
from replaymill.pipeline.progress import ProgressReporter, ProgressView, Task, metered, metering
from replaymill.pipeline.compression import open_decompressed, open_raw
from replaymill.schemas.recipe import resolve_recipe


def quiet_console() -> Console:
    return Console(file=io.StringIO(), width=100)


def test_reporter_appends_deltas_that_the_view_sums(tmp_path):
    view = ProgressView([Task("a", "a")], enabled=True, console=quiet_console())
    reporter = pickle.loads(pickle.dumps(ProgressReporter(view.channel, metrics=False)))  # as a worker gets it
    for _ in range(5):
        reporter.add("a")
    reporter.add("b", 7)
    reporter.flush()
    with open(view.channel, "ab") as f:
        f.write(b'{"a": 100')  # a line still being written is not read yet
    assert view.poll() == {"a": 5, "b": 7}
    with open(view.channel, "ab") as f:
        f.write(b"}\n")
    assert view.poll()["a"] == 105


def test_inactive_reporter_and_unreachable_channel_never_fail(tmp_path):
    idle = progress.reporter()  # outside `reporting`: a library call or a test pipeline
    assert not idle.active
    idle.add("x")
    lost = ProgressReporter(str(tmp_path / "no" / "such" / "dir" / "channel"), metrics=False)
    lost.add("x")
    lost.flush()  # a worker on another machine: the channel is dropped, the job goes on
    assert lost.channel is None


def test_metered_file_counts_bytes_and_cuts_compressed_reads(tmp_path):
    path = tmp_path / "blank.jsonl.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\n" * 2_000_000)
    view = ProgressView([Task("bytes", "read")], enabled=True, console=quiet_console())
    reporter = ProgressReporter(view.channel, metrics=False)
    reads = []
    with metering(reporter, "bytes", compressed=True):
        raw = open_raw(str(path))
    original = raw._raw.read
    raw._raw.read = lambda n=-1: reads.append(n) or original(n)
    with raw:
        assert open_decompressed(raw, "gzip").read() == b"\n" * 2_000_000
    reporter.flush()
    assert view.poll()["bytes"] == path.stat().st_size
    assert max(reads) <= progress.COMPRESSED_READ


def test_unmetered_open_is_the_plain_file(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"abc")
    with open_raw(str(path)) as raw:
        assert not isinstance(raw, progress._MeteredFile) and raw.read() == b"abc"
    assert metered(io.BytesIO(b"x")).read() == b"x"


def test_quiet_when_stdout_is_not_a_terminal():
    view = ProgressView([Task("a", "a")])  # pytest captures stdout: not a terminal
    assert not view.enabled and view.channel is None
    with progress.graph_reporting(view, "DirectRunner"):
        assert not progress.reporter().active


def write_corpus(root, n_docs: int = 40) -> list[str]:
    docs = root / "docs.jsonl"
    def words(i: int) -> str:  # digits vanish in dedup normalization: spell the number in letters
        return " ".join("abcdefghij"[int(c)] * 3 for c in str(i))

    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": f"Document {words(i)} says something new. " * 5}) + "\n"
                            for i in range(n_docs)))
    blank = root / "blank.jsonl.gz"
    with gzip.open(blank, "wb") as f:
        f.write(b"\n" * 500_000)
    return [str(docs), str(blank)]


@pytest.mark.parametrize("mode,workers", [("in_memory", 1), ("multi_processing", 2)])
def test_build_reports_bytes_documents_and_rows_while_running(tmp_path, mode, workers):
    inputs = write_corpus(tmp_path)
    size = sum((tmp_path / name).stat().st_size for name in ("docs.jsonl", "blank.jsonl.gz"))
    view = ProgressView([Task("read.bytes", "read", total=size, unit="bytes")], enabled=True, console=quiet_console())
    pipeline = beam.Pipeline(options=make_options(workers=workers, running_mode=mode))
    with progress.graph_reporting(view, "DirectRunner"):
        build(pipeline, inputs, str(tmp_path / "out"), resolve_recipe("minimal"))
    view.run(pipeline)
    counts = view.counts
    assert counts["read.docs"] == 40 and counts["annotate.kept"] == 40 and counts["write.rows"] == 40
    assert counts["read.bytes"] >= size  # every input byte, the blank gzip included (a range reads a little past)
    assert counts["write.shards"] >= 1 and (tmp_path / "out" / "_manifest.json").is_file()


def test_reshard_and_shard_set_scans_report_progress(tmp_path, make_shard_set, real_docs_by_domain):
    from replaymill.audit.shardset import audit_shard_sets
    from replaymill.pipeline.reshard import Reshard

    src = tmp_path / "big.jsonl.gz"
    with gzip.open(src, "wt") as f:
        f.writelines(json.dumps({"text": f"line {i} " * 20}) + "\n" for i in range(3000))
    view = ProgressView([Task("read.bytes", "read", total=src.stat().st_size, unit="bytes")], enabled=True,
                        console=quiet_console())
    pipeline = beam.Pipeline(options=make_options(running_mode="in_memory"))
    with progress.graph_reporting(view, "DirectRunner"):
        pipeline | Reshard([str(src)], str(tmp_path / "parts"), 2)
    view.run(pipeline)
    assert view.counts["read.bytes"] == src.stat().st_size and view.counts["reshard.lines"] == 3000

    root = make_shard_set(tmp_path / "set", {"web": real_docs_by_domain["web"][:300]}, rows_per_shard=50)
    seen = []
    audit_shard_sets([root], distinct=False, on_rows=seen.append)
    assert sum(seen) == 300
