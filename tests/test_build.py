"""A real build over ../shared/data (Dolma CC + C4), reused by every assertion: readable shards, a true
manifest, a funnel that adds up, and output independent of worker count and input order."""
from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import apache_beam as beam
import pyarrow.dataset as pads
import pytest
from apache_beam.metrics.metric import MetricsFilter

from replaymill.pipeline import rejects as reject_metrics
from replaymill.pipeline.build import build
from replaymill.pipeline.options import make_options
from replaymill.schemas.document import DOC_SCHEMA
from replaymill.schemas.recipe import resolve_recipe
from replaymill.schemas.reject import REJECT_FIELDS
from replaymill.shards.io import read_manifest


def inputs(shared_data: Path) -> list[str]:
    return [
        str(shared_data / "dolma-cc" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"),
        str(shared_data / "dolma-cc" / "cc_en_head-*.jsonl.gz"),
        str(shared_data / "olmo-c4" / "*.json*.gz"),
    ]


def recipe():
    r = resolve_recipe("multilingual").model_copy(deep=True)
    r.output.write_rejects = True
    r.output.max_shard_bytes = 400_000  # several shards per big partition
    return r


REJECT_COUNTERS: dict[Path, dict[str, int]] = {}  # per build output: Beam counters of the rejects namespace


def run_build(patterns: list[str], out: Path, running_mode: str, workers: int) -> Path:
    with beam.Pipeline(options=make_options(workers=workers, running_mode=running_mode)) as p:
        build(p, patterns, str(out), recipe())
    counters = p.result.metrics().query(MetricsFilter().with_namespace(reject_metrics.NAMESPACE))["counters"]
    REJECT_COUNTERS[out] = {}
    for c in counters:
        REJECT_COUNTERS[out][c.key.metric.name] = REJECT_COUNTERS[out].get(c.key.metric.name, 0) + c.committed
    return out


@pytest.fixture(scope="module")
def builds(shared_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("build")
    patterns = inputs(shared_data)
    return {
        "one": run_build(patterns, base / "one", "in_memory", 1),
        "two_reversed": run_build(list(reversed(patterns)), base / "two", "multi_threading", 2),
    }


@pytest.fixture(scope="module")
def out(builds) -> Path:
    return builds["one"]


@pytest.fixture(scope="module")
def manifest(out):
    return read_manifest(str(out))


def count_input_records(shared_data: Path) -> int:
    files = [p for pat in inputs(shared_data) for p in sorted(Path(pat).parent.glob(Path(pat).name))]
    return sum(1 for f in files for line in gzip.open(f, "rt") if line.strip())


def test_funnel_adds_up(manifest, shared_data):
    f = manifest.funnel
    assert f.read == count_input_records(shared_data)
    assert f.read == f.kept + sum(f.dropped.values())
    assert f.kept == manifest.total.docs > 0
    assert f.dropped.get("exact_duplicate", 0) > 0  # the CC sample has real duplicates


def test_funnel_records_tokens_stages_and_order(manifest):
    from replaymill.audit.funnel import funnel_rows

    f = manifest.funnel
    assert f.kept_tokens == manifest.total.tokens > 0
    assert f.read_tokens == f.kept_tokens + sum(f.dropped_tokens.values())
    assert set(f.dropped_tokens) == set(f.dropped) - {r for r, s in f.stage_of.items() if s == "format"}
    assert f.enabled == ["format", "length", "langid", "quality:gopher_repetition", "exact", "near"]
    stages = [r.label for r in funnel_rows(f) if r.level == 0]
    assert stages == ["read", "format rejects", "length", "language ID", "quality: gopher_repetition",
                      "exact dedup", "near dedup", "kept"]


def test_shards_match_manifest(out, manifest):
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.arrow"))
    assert on_disk == [s.path for s in manifest.shards]
    for s in manifest.shards:
        data = (out / s.path).read_bytes()
        assert len(data) == s.bytes and hashlib.sha256(data).hexdigest() == s.sha256
        assert s.bytes <= recipe().output.max_shard_bytes
    assert sum(t.docs for t in manifest.by_domain.values()) == manifest.total.docs
    assert manifest.package_versions["apache-beam"] and manifest.recipe["name"] == "multilingual"


def test_pyarrow_dataset_reads_every_document(out, manifest):
    table = pads.dataset(str(out), format="arrow", partitioning="hive").to_table()
    assert table.num_rows == manifest.total.docs
    assert set(DOC_SCHEMA.names) <= set(table.column_names)
    ids = table.column("id").to_pylist()
    assert len(set(ids)) == len(ids)
    # hive partitioning reads lang from the directory (pooled small languages: "other") ...
    assert set(table.column("lang").to_pylist()) == {s.lang for s in manifest.shards}
    # ... while every row's own column keeps its real language
    own = pads.dataset(str(out), format="arrow").to_table(columns=["lang"]).column("lang").to_pylist()
    assert set(own) == set(manifest.by_lang)
    assert min(table.column("dup_exact_count").to_pylist()) >= 1


def test_small_languages_pooled_in_lang_other(out, manifest):
    """A multilingual build does not scatter one-row shards: each domain's small languages share one
    `lang=other` partition, whose rows keep their language; the manifest says which they are."""
    pooled = [s for s in manifest.shards if s.lang == "other"]
    assert pooled and manifest.pooled_langs
    for s in pooled:
        assert sum(t.docs for t in s.langs.values()) == s.rows and len(s.langs) >= 1
        assert s.langs.keys() <= set(manifest.pooled_langs[s.domain])
        rows = pads.dataset(str(out / s.path), format="arrow").to_table(columns=["lang"]).column("lang").to_pylist()
        assert sorted(set(rows)) == sorted(s.langs) and "other" not in rows
    for domain, langs in manifest.pooled_langs.items():
        assert len(langs) >= 2 and not any(s.domain == domain and s.lang in langs for s in manifest.shards)
    cells = {(s.domain, lang) for s in manifest.shards for lang in (s.langs or [s.lang])}
    assert len({(s.domain, s.lang) for s in manifest.shards}) < len(cells)  # fewer partitions than cells


def test_hf_datasets_reads_every_document(out, manifest, tmp_path):
    from datasets import load_dataset

    files = [str(out / s.path) for s in manifest.shards]
    ds = load_dataset("arrow", data_files=files, split="train", cache_dir=str(tmp_path))
    assert ds.num_rows == manifest.total.docs
    assert {"text", "lang", "domain", "signals", "quality"} <= set(ds.column_names)


def test_rejects_written_with_reasons(out, manifest):
    rejects = [json.loads(l) for f in sorted((out / "_rejects").glob("*.jsonl.gz")) for l in gzip.open(f, "rt")]
    assert len(rejects) == sum(manifest.funnel.dropped.values())
    for reason, n in manifest.funnel.dropped.items():
        assert sum(r["reason"] == reason for r in rejects) == n
    assert manifest.extra["rejects_files"]
    # one Reject shape from every stage, and one Beam counter per reason that agrees with the funnel
    assert all(set(r) == set(REJECT_FIELDS) for r in rejects)
    assert {r["stage"] for r in rejects} >= {"read", "annotate", "exact_dedup"}
    assert REJECT_COUNTERS[out] == manifest.funnel.dropped


def test_same_output_for_two_workers_and_reversed_input(builds):
    one, two = read_manifest(str(builds["one"])), read_manifest(str(builds["two_reversed"]))
    assert [s.model_dump() for s in one.shards] == [s.model_dump() for s in two.shards]
    assert one.funnel == two.funnel
