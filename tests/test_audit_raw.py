"""`replaymill audit` on raw corpora (Dolma CC, C4, the Pile container fixture) through the Beam pipeline.

One DirectRunner pipeline for the module; its numbers are checked against an independent parse of
the same files with json/gzip/zstandard (records read, documents kept, distinct normalized texts).
"""
from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest
import zstandard

from replaymill.pipeline.cli import main
from replaymill.transforms.normalize import dedup_key


def _records(shared_data):
    """Every JSON record of the audited files, parsed independently of the readers."""
    out = []
    for path in [shared_data / "dolma-cc" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz",
                 *sorted((shared_data / "olmo-c4").glob("*.json*.gz"))]:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            out += [json.loads(line) for line in f if line.strip()]
    with tarfile.open(shared_data / "lm-dataformat-fixture" / "blns.jsonl.zst.tar") as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(".zst"):
                raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(tar.extractfile(member).read())).read()
                out += [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
    return out


@pytest.fixture(scope="module")
def raw_run(tmp_path_factory, shared_data):
    tmp = tmp_path_factory.mktemp("audit-raw")
    c4 = [json.loads(l) for l in gzip.open(shared_data / "olmo-c4" / "c4-sample.01.json.gz", "rt", encoding="utf-8")]
    planted = max(c4, key=lambda r: len(r["text"]))
    (tmp / "eval.jsonl").write_text(json.dumps({"id": "leak", "text": planted["text"]}) + "\n", encoding="utf-8")
    out = tmp / "raw.json"
    rc = main(["audit", str(shared_data / "dolma-cc" / "CC-MAIN-*.jsonl.gz"), str(shared_data / "olmo-c4"),
               str(shared_data / "lm-dataformat-fixture" / "blns.jsonl.zst.tar"), "--in-memory", "-q",
               "--target", "llama1", "--contamination", str(tmp / "eval.jsonl"), "--json", str(out)])
    return rc, json.loads(out.read_text(encoding="utf-8"))


def test_raw_funnel_matches_independent_parse(raw_run, shared_data):
    rc, report = raw_run
    assert rc == 0 and report["input_kind"] == "raw"
    records = _records(shared_data)
    # a list of strings is paragraphs, joined as lm_dataformat joins them
    good = [r for r in records if (isinstance(r.get("text"), str) and r["text"].strip())
            or (isinstance(r.get("text"), list) and r["text"] and all(isinstance(t, str) for t in r["text"]))]
    funnel = report["funnel"]
    assert funnel["read"] == len(records)
    assert funnel["kept"] == report["totals"]["docs"] == len(good)
    assert sum(funnel["dropped"].values()) == len(records) - len(good)
    assert set(funnel["stage_of"].values()) == {"format"}  # reader rejects only: the audit recipe filters nothing


def test_raw_tags_computed_on_the_fly(raw_run):
    _, report = raw_run
    assert report["totals"]["tokens"] > 0 and report["totals"]["tokens_missing_docs"] == 0
    assert len(report["by_lang"]) > 10  # the Dolma CC sample is multilingual
    assert "unknown" not in report["by_domain"]
    assert all(q["unscored"] == 0 for q in report["quality"]["by_domain"].values())
    assert report["target"]["total_variation"] > 0


def test_raw_distinct_texts_match_exact_dedup_keys(raw_run, shared_data):
    _, report = raw_run
    good = [r["text"] for r in _records(shared_data) if isinstance(r.get("text"), str) and r["text"].strip()]
    exact = len({dedup_key(t) for t in good})
    dist = report["distinct"]
    assert dist["text_identity"] == "normalized"
    assert abs(dist["texts"] - exact) <= 4 * dist["relative_error"] * exact + 2


def test_raw_contamination_through_beam(raw_run):
    _, report = raw_run
    cont = report["contamination"]
    assert cont["eval_docs_matched"] == 1
    assert [m["eval_id"] for m in cont["matches"]] == ["leak"] and cont["matches"][0]["overlap"] == 1.0
