"""A record with an unencodable string in any field is one counted reject through build and audit,
never a crash (issue 10.4: before, a lone surrogate in `id`, `url` or Dolma `source` stopped the
whole build and audit with a 190-line UnicodeEncodeError)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from replaymill.pipeline.cli import main

BAD_RECORDS = [
    b'{"id": "x\\ud800y", "text": "A perfectly fine text about gardens and the weather in spring."}',
    b'{"id": "u1", "text": "Another fine text about rivers.", "url": "http://e.org/\\udfff", "timestamp": "t"}',
    b'{"id": "d1", "text": "Dolma text about cats.", "source": "c\\udc80c", "metadata": {"url": "e.org"}}',
    b'{"id": "m1", "text": "Metadata text about dogs.", "source": "cc", "metadata": {"title": "\\ud83d"}}',
]


@pytest.fixture(scope="module")
def corpus(shared_data: Path, tmp_path_factory) -> tuple[Path, int]:
    """Real Dolma documents with the bad records in between; returns (file, good document count)."""
    lines = [line.rstrip(b"\n") for line in gzip.open(shared_data / "dolma-cc" / "cc_en_head-0091.jsonl.gz")]
    root = tmp_path_factory.mktemp("badfields")
    mixed = [x for pair in zip(lines, BAD_RECORDS + [b""] * len(lines)) for x in pair if x]
    path = root / "mixed.jsonl"
    path.write_bytes(b"\n".join(mixed) + b"\n")
    return path, len(lines)


def test_build_rejects_each_bad_record_and_keeps_the_rest(corpus, tmp_path, capsys):
    path, good = corpus
    out = tmp_path / "out"
    assert main(["build", "-i", str(path), "-o", str(out), "--in-memory", "--write-rejects"]) == 0
    manifest = json.loads((out / "_manifest.json").read_text())
    funnel = manifest["funnel"]
    assert funnel["read"] == good + len(BAD_RECORDS)
    assert funnel["dropped"].get("bad_utf8") == len(BAD_RECORDS)
    assert funnel["read"] == funnel["kept"] + sum(funnel["dropped"].values())
    rejects = [json.loads(line) for f in (out / "_rejects").glob("*.jsonl.gz") for line in gzip.open(f)]
    details = sorted(r["detail"] for r in rejects if r["reason"] == "bad_utf8")
    assert details == sorted(f"{field} has lone surrogate escapes"
                             for field in ("id", "url", "source", "metadata.title"))


def test_audit_of_raw_input_counts_them(corpus, tmp_path, capsys):
    path, good = corpus
    report = tmp_path / "a.json"
    assert main(["audit", str(path), "--in-memory", "-q", "--json", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["totals"]["docs"] == good
    dropped = {reason.split(":")[-1]: n for reason, n in data["funnel"]["dropped"].items()}  # "read:" stage prefix or not
    assert dropped == {"bad_utf8": len(BAD_RECORDS)}


def test_undecodable_file_name_gives_storable_ids_and_rejects(tmp_path):
    """Python hands an undecodable file name over with surrogates; ids and rejects built from it
    must still be storable."""
    import os

    from replaymill.pipeline.readers import read_item
    from replaymill.pipeline.sources import match_inputs, plan_reads
    from replaymill.schemas.document import to_record_batch

    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.jsonl"), "wb") as f:
        f.write(b'{"text": "no id of its own"}\nnot json\n')
    results = [p for spec in match_inputs([str(tmp_path)]) for item in plan_reads(spec, 1 << 20)
               for p in read_item(item, 1 << 20)]
    docs = [p.doc for p in results if p.doc]
    rejects = [p.reject for p in results if p.reject]
    assert len(docs) == 1 and docs[0]["id"].endswith("/caf\\udce9.jsonl@0")
    assert to_record_batch(docs).num_rows == 1
    assert [r["reason"] for r in rejects] == ["malformed_json"]
    json.dumps(rejects, ensure_ascii=False).encode("utf-8")
