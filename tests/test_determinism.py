"""Standing test (issue 10 item 7): shard bytes do not depend on input order or worker count when
ids repeat, as they do in real corpora (Dolma CC ids are URLs recurring across crawls).

The corpus is real Dolma CC text with three kinds of repeated ids: distinct documents sharing an
id and url (the sink's row order must not tie), exact duplicates sharing an id but not their
metadata (the kept copy must not depend on arrival), and near duplicates sharing an id (the
component centre must not either). Before the fix, the reversed input gave other shard sha256s.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import apache_beam as beam
import pytest

from replaymill.pipeline.build import build
from replaymill.pipeline.options import make_options
from replaymill.schemas.recipe import resolve_recipe
from replaymill.shards.io import read_manifest

CC = ("dolma-cc", "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz")


def repeated_id_records(shared_data: Path, n: int = 60) -> list[dict]:
    with gzip.open(shared_data.joinpath(*CC), "rt", encoding="utf-8") as f:
        base = [json.loads(line) for _, line in zip(range(n), f)]
    records = []
    for i, rec in enumerate(base):
        rid, url = f"https://example.org/page/{i // 3}", f"https://example.org/page/{i // 3}"
        records.append({"id": rid, "text": rec["text"], "source": "common-crawl", "added": "2019-07-17",
                        "metadata": {"url": url}})  # every id (and url) three times, distinct texts
        if i % 4 == 0:  # an exact copy under the same id, fetched in another crawl
            records.append({"id": rid, "text": rec["text"], "source": "common-crawl", "added": "2023-01-01",
                            "metadata": {"url": url, "crawl": "CC-MAIN-2023-06"}})
        if i % 5 == 0:  # a near copy under the same id (a changed footer)
            words = rec["text"].split()
            records.append({"id": rid, "text": " ".join(words[:-3] + ["updated", "footer", "text"]),
                            "source": "common-crawl", "added": "2021-05-05", "metadata": {"url": url}})
    return records


def write_jsonl(path: Path, records: list[dict]) -> str:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    return str(path)


def recipe():
    r = resolve_recipe("minimal").model_copy(deep=True)
    r.near_dedup.enabled = True
    r.output.max_shard_bytes = 60_000  # several shards, so bucket and row order both matter
    return r


def run(inputs: list[str], out: Path, running_mode: str, workers: int) -> dict:
    with beam.Pipeline(options=make_options(workers=workers, running_mode=running_mode)) as p:
        build(p, inputs, str(out), recipe())
    manifest = read_manifest(str(out))
    return {"shards": [(s.path, s.rows, s.sha256) for s in manifest.shards], "funnel": manifest.funnel.model_dump()}


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("repeated-ids")
    records = repeated_id_records(shared_data)
    half = len(records) // 2
    forward = [write_jsonl(base / "a.jsonl.gz", records[:half]), write_jsonl(base / "b.jsonl.gz", records[half:])]
    backward = [write_jsonl(base / "b-rev.jsonl.gz", records[half:][::-1]),
                write_jsonl(base / "a-rev.jsonl.gz", records[:half][::-1])]
    return base, forward, backward


@pytest.fixture(scope="module")
def reference(corpus):
    base, forward, _ = corpus
    return run(forward, base / "forward", "in_memory", 1)


def test_the_corpus_really_repeats_ids_and_dedups(reference):
    f = reference["funnel"]
    assert f["dropped"].get("exact_duplicate", 0) >= 10 and f["dropped"].get("near_duplicate", 0) >= 5
    assert len(reference["shards"]) >= 3


def test_same_shards_for_reversed_input_order(corpus, reference):
    base, _, backward = corpus
    assert run(backward, base / "backward", "in_memory", 1) == reference


def test_same_shards_on_two_worker_processes(corpus, reference):
    base, _, backward = corpus
    assert run(backward, base / "two-workers", "multi_processing", 2) == reference
