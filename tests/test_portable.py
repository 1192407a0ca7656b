"""Runner portability: pipelines on PortableRunner with two external SDK worker pools (Fn API over
gRPC on loopback, as Flink/Spark/Dataflow workers run them) give the DirectRunner's output.

Workers import code by module name, and this test module is not importable there: functions
passed to Beam here are lambdas, which are pickled by value (the project's own DoFns live in
importable modules, as on a real cluster).
"""
from __future__ import annotations

import collections
import json
import os
import shutil
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from replaymill.pipeline.cli import main
from replaymill.shards.io import read_manifest, read_shard_bytes

# What must be identical between two builds of the same input (not created_at, versions, inputs).
SAME = ("shards", "funnel", "total", "by_domain", "by_lang", "schema_version", "recipe")


def manifest_core(out: Path) -> dict:
    m = json.loads((out / "_manifest.json").read_text())
    return {k: m[k] for k in SAME}


def run_build(inputs: list[str], out: Path, *extra: str) -> None:
    assert main(["build", "--input", *inputs, "--output", str(out), *extra]) == 0


@pytest.fixture(scope="module")
def direct_build(build_inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("direct") / "out"
    run_build(build_inputs, out, "--in-memory")
    return out


@pytest.fixture(scope="module")
def portable_build(portable_cluster, build_inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("portable") / "out"
    before = dict(portable_cluster.dispatcher.started)
    # The user's command for any portable runner: `--runner PortableRunner -- <runner's flags>`.
    run_build(build_inputs, out, "--runner", "PortableRunner", "--", *portable_cluster.pipeline_args()[1:])
    started = {a: n - before[a] for a, n in portable_cluster.dispatcher.started.items()}
    assert started == dict.fromkeys(before, 1), f"each pool should run one worker: {started}"
    return out


def test_trivial_pipeline_runs_on_both_external_pools(portable_cluster, tmp_path: Path):
    before = dict(portable_cluster.dispatcher.started)
    with beam.Pipeline(options=PipelineOptions(portable_cluster.pipeline_args())) as p:
        (p | beam.Create(range(2000)) | beam.Reshuffle() | beam.Map(lambda x: f"{x} {os.getpid()}")
           | beam.io.WriteToText(str(tmp_path / "out")))
    rows = [line.split() for f in tmp_path.glob("out*") for line in f.read_text().splitlines()]
    assert sorted(int(x) for x, _ in rows) == list(range(2000))
    pids = collections.Counter(pid for _, pid in rows)
    assert len(pids) == 2, f"expected work on 2 SDK workers, got {pids}"
    assert str(os.getpid()) not in pids  # nothing ran in the submitting process
    assert {a: n - before[a] for a, n in portable_cluster.dispatcher.started.items()} == dict.fromkeys(before, 1)


def test_build_on_two_external_workers_equals_direct_runner(direct_build: Path, portable_build: Path):
    direct, portable = manifest_core(direct_build), manifest_core(portable_build)
    assert direct["total"]["docs"] > 500 and len(direct["shards"]) > 10
    assert direct == portable  # every shard's path, rows, bytes, tokens and sha256; funnel; totals
    for info in read_manifest(str(portable_build)).shards:
        read_shard_bytes(str(portable_build), info)  # the files on disk are the ones the manifest describes


def test_rerun_over_a_crashed_build_gives_the_same_manifest(direct_build: Path, tmp_path: Path, build_inputs):
    """A build that died part-way leaves its files in its staging directory (pipeline.staging): no
    manifest, a half-written temp file, a shard cut short, and a shard of a different earlier run.
    The re-run must clear them and produce the same set."""
    from replaymill.pipeline.staging import OWNER_NAME, STAGING_NAME

    out = tmp_path / "out"
    staging = out / STAGING_NAME
    shutil.copytree(direct_build, staging)
    (staging / "_manifest.json").unlink()
    (staging / OWNER_NAME).write_text(json.dumps({"seal": "_manifest.json"}))
    shards = sorted(staging.glob("domain=*/lang=*/part-*.arrow"))
    cut = shards[0]
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    (shards[1].parent / (shards[1].name + ".tmp-0123456789abcdef")).write_bytes(b"half a shard")
    stale = staging / "domain=web" / "lang=xx" / "part-00007.arrow"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"a shard of an earlier, different run")
    shards[2].unlink()

    run_build(build_inputs, out, "--in-memory")
    assert manifest_core(out) == manifest_core(direct_build)
    assert not list(out.rglob("*.tmp-*")) and not staging.exists()
    for info in read_manifest(str(out)).shards:
        read_shard_bytes(str(out), info)
