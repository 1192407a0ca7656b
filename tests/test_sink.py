"""The Arrow sink: size-bounded deterministic shards, readable by pyarrow.dataset and HF datasets, manifest last."""
from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import apache_beam as beam
import pyarrow.dataset as pads
import pytest

from replaymill.pipeline.options import make_options
from replaymill.pipeline.sink import WriteManifest, WriteShards, num_buckets, row_bytes, split_by_size
from replaymill.schemas.document import DOC_SCHEMA, new_document
from replaymill.shards.io import read_manifest, read_shard_bytes

MAX_SHARD = 200_000  # small, so ~1 MB of real text spreads over several shards per partition


def annotated_docs(shared_data: Path) -> list[dict]:
    """Real CC documents with domain and lang set as Annotate would (Dolma's own language metadata)."""
    docs = []
    with gzip.open(shared_data / "dolma-cc" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz", "rt") as f:
        for i, line in zip(range(300), f):
            rec = json.loads(line)
            d = new_document(f"doc-{i:04d}", rec["text"], "cc", metadata=json.dumps(rec.get("metadata", {})))
            d["lang"] = "en" if i % 3 else "de"
            d["domain"] = "web" if i % 5 else "news"
            d["n_tokens"] = len(rec["text"].split())
            d["_scratch"] = "dropped by the sink"
            docs.append(d)
    return docs


def write(docs: list[dict], out: Path) -> None:
    with beam.Pipeline(options=make_options(running_mode="in_memory", workers=1)) as p:
        infos = p | beam.Create(docs, reshuffle=False) | WriteShards(str(out), MAX_SHARD)
        funnel = p | "Funnel" >> beam.Create([{"read": len(docs), "dropped": {}, "kept": len(docs)}])
        infos | WriteManifest(str(out), funnel, None, inputs=["test"], recipe={}, package_versions={}, tool_version="t")


@pytest.fixture(scope="module")
def built(shared_data, tmp_path_factory):
    docs = annotated_docs(shared_data)
    out = tmp_path_factory.mktemp("sink") / "out"
    write(docs, out)
    return docs, out


def test_layout_and_manifest_checksums(built):
    docs, out = built
    manifest = read_manifest(str(out))
    assert manifest.total.docs == len(docs)
    assert {(s.domain, s.lang) for s in manifest.shards} == {("web", "en"), ("web", "de"), ("news", "en"), ("news", "de")}
    for s in manifest.shards:
        assert s.path.startswith(f"domain={s.domain}/lang={s.lang}/part-")
        data = (out / s.path).read_bytes()
        assert len(data) == s.bytes <= MAX_SHARD and hashlib.sha256(data).hexdigest() == s.sha256
        read_shard_bytes(str(out), s)
    assert len(manifest.shards) > 4  # the size bound really split partitions
    assert not list(out.rglob("*.tmp-*"))


def test_opens_with_pyarrow_dataset(built):
    docs, out = built
    ds = pads.dataset(str(out), format="arrow", partitioning="hive")
    table = ds.to_table()
    assert table.num_rows == len(docs)
    assert set(DOC_SCHEMA.names) <= set(table.column_names) and "_scratch" not in table.column_names
    de = ds.to_table(filter=(pads.field("lang") == "de")).column("id").to_pylist()
    assert sorted(de) == sorted(d["id"] for d in docs if d["lang"] == "de")


def test_opens_with_hf_datasets(built, tmp_path):
    from datasets import load_dataset

    docs, out = built
    files = sorted(str(p) for p in out.rglob("*.arrow"))
    ds = load_dataset("arrow", data_files=files, split="train", cache_dir=str(tmp_path))
    assert ds.num_rows == len(docs)
    assert sorted(ds["id"]) == sorted(d["id"] for d in docs)
    assert set(ds["domain"]) == {"web", "news"}


def test_rows_sorted_by_id_within_each_shard(built):
    _, out = built
    for s in read_manifest(str(out)).shards:
        ids = pads.dataset(str(out / s.path), format="arrow").to_table(columns=["id"]).column("id").to_pylist()
        assert ids == sorted(ids)


def test_rewrite_is_byte_identical_in_any_order(built, tmp_path):
    docs, out = built
    write(list(reversed(docs)), tmp_path / "again")
    first, again = read_manifest(str(out)), read_manifest(str(tmp_path / "again"))
    assert [s.model_dump() for s in first.shards] == [s.model_dump() for s in again.shards]


def test_size_helpers():
    rows = [{"text": "x" * 1000, "metadata": "{}"} for _ in range(10)]
    chunks = split_by_size(rows, 3 * row_bytes(rows[0]))
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    assert split_by_size([], 10) == []
    assert num_buckets(0, 100) == 1 and num_buckets(100, 100) == 2
