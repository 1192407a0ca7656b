"""`replaymill reshard`: compressed JSONL in, N zstd parts out, every line kept, damage reported."""
from __future__ import annotations

import collections
import gzip
import json
from pathlib import Path

import apache_beam as beam
import pytest
import zstandard
from apache_beam.options.pipeline_options import PipelineOptions

from replaymill.pipeline.cli import main
from replaymill.pipeline.readers import classify
from replaymill.pipeline.reshard import SUMMARY_NAME, Reshard, parts_for
from replaymill.transforms.records import parse_json_line

PARTS = 4


def real_lines(path: Path) -> list[bytes]:
    with gzip.open(path, "rb") as f:
        return [line.rstrip(b"\r\n") for line in f if line.strip()]


def read_parts(out: Path) -> dict[str, list[bytes]]:
    parts = {}
    for p in sorted(out.glob("part-*.jsonl.zst")):
        with zstandard.ZstdDecompressor().stream_reader(p.open("rb"), read_across_frames=True) as r:
            parts[p.name] = [line for line in r.read().split(b"\n") if line]
    return parts


@pytest.fixture(scope="module")
def inputs(shared_data: Path, tmp_path_factory) -> dict:
    """Real Dolma CC and C4 gzip files, plus a real-text .zst cut in half (a truncated download)."""
    gz = [shared_data / "dolma-cc" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz",
          *sorted((shared_data / "olmo-c4").glob("*.gz"))]
    cc_lines = real_lines(gz[0])
    blob = zstandard.ZstdCompressor().compress(b"\n".join(cc_lines[:300]) + b"\n")
    cut = tmp_path_factory.mktemp("cut") / "cut.jsonl.zst"
    cut.write_bytes(blob[: len(blob) // 2])
    return {"gz": [str(p) for p in gz], "cut": str(cut),
            "lines": [line for p in gz for line in real_lines(p)], "cut_source": cc_lines[:300]}


@pytest.fixture(scope="module")
def resharded(inputs: dict, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("resharded")
    options = PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"])
    with beam.Pipeline(options=options) as p:
        p | Reshard([*inputs["gz"], inputs["cut"]], str(out), PARTS)
    return out


def test_every_line_lands_in_exactly_one_part(inputs: dict, resharded: Path):
    parts = read_parts(resharded)
    assert len(parts) == PARTS
    got = collections.Counter(line for lines in parts.values() for line in lines)
    from_gz = collections.Counter(inputs["lines"])
    from_cut = got - from_gz
    assert got & from_gz == from_gz  # nothing from the intact inputs lost or altered
    cut_kept = sum(from_cut.values())
    assert 0 < cut_kept < len(inputs["cut_source"])
    # what survives of the truncated file is exactly a prefix of it
    assert collections.Counter(inputs["cut_source"][:cut_kept]) == from_cut
    sizes = [len(v) for v in parts.values()]
    assert min(sizes) > 0.5 * max(sizes), f"parts badly unbalanced: {sizes}"


def test_summary_counts_lines_and_reports_the_cut_file(inputs: dict, resharded: Path):
    summary = json.loads((resharded / SUMMARY_NAME).read_text())
    parts = read_parts(resharded)
    assert summary["lines"] == sum(len(v) for v in parts.values())
    assert summary["parts"] == sorted(parts)
    assert summary["dropped"] == {"truncated_file": 1}
    assert summary["rejects"][0]["source"] == inputs["cut"]
    assert sorted(summary["inputs"]) == sorted([*inputs["gz"], inputs["cut"]])


def parse_outcome(line: bytes) -> str:
    """What the build's reader makes of a line: the document's text, or the reject reason."""
    parsed = parse_json_line(line, fallback_id="x")
    return parsed.doc["text"] if parsed.doc else "reject:" + parsed.reject["reason"]


def test_parts_are_jsonl_the_build_reads_as_the_same_documents(inputs: dict, resharded: Path):
    assert {classify(name) for name in read_parts(resharded)} == {("jsonl", "zstd")}
    got = collections.Counter(parse_outcome(line) for lines in read_parts(resharded).values() for line in lines)
    original = collections.Counter(parse_outcome(line) for line in inputs["lines"])
    assert sum(original.values()) > 700
    assert got & original == original


def test_parts_for_sizes():
    assert parts_for(1, 64) == 1
    assert parts_for(64, 64) == 1
    assert parts_for(65, 64) == 2
    with pytest.raises(ValueError):
        parts_for(10, 0)


def test_cli_runs_refuses_to_mix_and_overwrites(inputs: dict, tmp_path: Path, capsys):
    out = tmp_path / "out"
    args = ["reshard", "--input", *inputs["gz"][1:], "--output", str(out), "--parts", "2", "--in-memory"]
    assert main(args) == 0
    assert len(read_parts(out)) == 2
    assert json.loads((out / SUMMARY_NAME).read_text())["lines"] == sum(
        len(real_lines(Path(p))) for p in inputs["gz"][1:])
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args[:-3], "--parts", "1", "--overwrite"]) == 0
    assert len(read_parts(out)) == 1


def test_cli_missing_input_fails_in_one_line(tmp_path: Path, capsys):
    assert main(["reshard", "--input", str(tmp_path / "nope-*.jsonl.gz"), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("replaymill reshard: error:") and "\n" not in err


def test_build_reader_reads_the_parts_as_the_originals(inputs: dict, resharded: Path, tmp_path: Path):
    """The build's own reader (ReadCorpus) gets the same documents from the parts as from the inputs."""
    from replaymill.pipeline.sources import ReadCorpus

    with beam.Pipeline(options=PipelineOptions(["--direct_running_mode=in_memory"])) as p:
        for name, patterns in (("parts", [str(resharded / "part-*.jsonl.zst")]), ("inputs", inputs["gz"])):
            docs, _ = p | f"Read{name}" >> ReadCorpus(patterns)
            (docs | f"Text{name}" >> beam.Map(lambda d: json.dumps(d["text"]))
                  | f"Write{name}" >> beam.io.WriteToText(str(tmp_path / name)))

    def texts(name: str) -> collections.Counter:
        return collections.Counter(json.loads(line) for f in tmp_path.glob(name + "*")
                                   for line in f.read_text().splitlines())

    from_parts, from_inputs = texts("parts"), texts("inputs")
    assert sum(from_inputs.values()) > 700
    assert from_parts & from_inputs == from_inputs  # plus the lines kept from the cut file


def build_outcomes(paths: list[str]) -> collections.Counter:
    """What the build's readers make of whole files: document texts and reject reasons."""
    from replaymill.pipeline.readers import read_item, work_item

    out: collections.Counter = collections.Counter()
    for path in paths:
        for parsed in read_item(work_item(path, Path(path).name), 32 << 20):
            out[parsed.doc["text"] if parsed.doc else "reject:" + parsed.reject["reason"]] += 1
    return out


def test_reshard_reads_misnamed_files_and_tars_as_build_does(shared_data: Path, tmp_path: Path):
    """Issue 10.6: reshard trusted extensions (before: a plain file named .gz and zstd named .gz were
    unreadable_file, gzip named .jsonl became binary lines, a .jsonl.zst.tar became tar-header lines)."""
    lines = real_lines(shared_data / "dolma-cc" / "cc_en_head-0091.jsonl.gz")
    body = b"\n".join(lines) + b"\n"
    files = {
        "plain_named.jsonl.gz": body,
        "zstd_named.jsonl.gz": zstandard.ZstdCompressor().compress(body),
        "gzip_named.jsonl": gzip.compress(body),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    inputs = [str(tmp_path / n) for n in files] + [str(shared_data / "lm-dataformat-fixture" / "blns.jsonl.zst.tar")]
    out = tmp_path / "out"
    options = PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"])
    with beam.Pipeline(options=options) as p:
        p | Reshard(inputs, str(out), 2)
    from_parts = collections.Counter(parse_outcome(line) for part in read_parts(out).values() for line in part)
    expected = build_outcomes(inputs)
    assert sum(expected.values()) > 3 * len(lines)
    assert from_parts == expected
    assert json.loads((out / SUMMARY_NAME).read_text())["dropped"] == {}


def test_reshard_reports_what_holds_no_lines(shared_data: Path, tmp_path: Path):
    warc = str(shared_data / "dolma-cc" / "dolma-sample-0000.warc.gz")
    with beam.Pipeline(options=PipelineOptions(["--direct_running_mode=in_memory"])) as p:
        p | Reshard([warc], str(tmp_path), 1)
    summary = json.loads((tmp_path / SUMMARY_NAME).read_text())
    assert summary["lines"] == 0 and summary["dropped"] == {"unsupported_format": 1}
