"""Runner portability: pipelines on PortableRunner with two external SDK worker pools (Fn API over
gRPC on loopback, as Flink/Spark/Dataflow workers run them) give the DirectRunner's output.

Workers import code by module name, and this test module is not importable there: functions
passed to Beam here are lambdas, which are pickled by value (the project's own DoFns live in
importable modules, as on a real cluster)."""
from __future__ import annotations

import collections
import os
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from deploy.local_cluster import LocalPortableCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One loopback cluster for the module; its teardown also checks that no process it started survives."""
    with LocalPortableCluster(pools=2, workdir=str(tmp_path_factory.mktemp("cluster"))) as c:
        groups = [proc.pid for proc in c._procs]
        yield c
    for pgid in groups:
        with pytest.raises(ProcessLookupError):
            os.killpg(pgid, 0)  # signal 0: does anything of that child's process group still exist?


def test_trivial_pipeline_runs_on_both_external_pools(cluster, tmp_path: Path):
    before = dict(cluster.dispatcher.started)
    with beam.Pipeline(options=PipelineOptions(cluster.pipeline_args())) as p:
        (p | beam.Create(range(2000)) | beam.Reshuffle() | beam.Map(lambda x: f"{x} {os.getpid()}")
           | beam.io.WriteToText(str(tmp_path / "out")))
    rows = [line.split() for f in tmp_path.glob("out*") for line in f.read_text().splitlines()]
    assert sorted(int(x) for x, _ in rows) == list(range(2000))
    pids = collections.Counter(pid for _, pid in rows)
    assert len(pids) == 2, f"expected work on 2 SDK workers, got {pids}"
    assert str(os.getpid()) not in pids  # nothing ran in the submitting process
    assert {a: n - before[a] for a, n in cluster.dispatcher.started.items()} == dict.fromkeys(before, 1)


def test_shuffle_and_combine_across_workers_are_exact(cluster, tmp_path: Path):
    words = (Path(beam.__file__).parent / "pipeline.py").read_text().split()
    with beam.Pipeline(options=PipelineOptions(cluster.pipeline_args())) as p:
        (p | beam.Create(words) | beam.combiners.Count.PerElement()
           | beam.MapTuple(lambda w, n: f"{n}\t{w}") | beam.io.WriteToText(str(tmp_path / "counts")))
    got = {w: int(n) for f in tmp_path.glob("counts*") for n, w in
           (line.split("\t", 1) for line in f.read_text().splitlines())}
    assert got == dict(collections.Counter(words))
