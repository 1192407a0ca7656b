"""Peak RSS of the NearDedup stage with the worker separated from the shuffle, at two input sizes.

The DirectRunner holds every shuffle in the process that also runs the DoFns, so its RSS grows with
the corpus whatever the stage does. Here the stage runs on Beam's PortableRunner against ONE external
SDK worker pool (the loopback cluster in deploy/local_cluster.py): the job service process (an
FnApiRunner) holds the shuffles, and the SDK worker process does the per-element work (parsing,
signatures, band hashes, the star steps, the joins' per-key work). A fresh cluster is started for
each input size, so every process's VmHWM (peak RSS, from /proc/<pid>/status) belongs to one run.

VmHWM is sampled every 0.1 s while the pipeline runs (it only grows, and the worker is stopped when
the job ends); the worker figure is the largest VmHWM among the pool's descendants (the SDK
workers), the pool process itself excluded. A control run (the same documents read, parsed,
Reshuffled and written, no NearDedup) on its own fresh cluster separates what the runner and SDK
harness cost from what the stage adds.

    python -m bench.near_dedup_memory --sizes 2000 8000
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.near_dedup_common import scaled_corpus, write_jsonl


def vm_hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def descendants(pid: int) -> list[int]:
    """All live descendants of `pid` (via /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except FileNotFoundError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children", encoding="ascii") as f:
                    kids = [int(x) for x in f.read().split()]
            except FileNotFoundError:
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


class HwmSampler(threading.Thread):
    """Records the last seen VmHWM of the job service and of every descendant of the worker pool."""

    def __init__(self, pool_pid: int, job_pid: int, period: float = 0.1):
        super().__init__(daemon=True)
        self.pool_pid, self.job_pid, self.period = pool_pid, job_pid, period
        self.workers: dict[int, int] = {}
        self.job = 0
        self._halt = threading.Event()

    def sample(self) -> None:
        for pid in descendants(self.pool_pid):
            kib = vm_hwm_kib(pid)
            if kib is not None:
                self.workers[pid] = max(self.workers.get(pid, 0), kib)
        kib = vm_hwm_kib(self.job_pid)
        if kib is not None:
            self.job = max(self.job, kib)

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.period)

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.sample()


def run_once(n: int, tmp: Path, control: bool = False) -> dict:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from replaymill.deploy.local_cluster import LocalPortableCluster
    from replaymill.pipeline.near_dedup import NearDedup
    from replaymill.schemas.dedup import NearDedupConfig
    from replaymill.schemas.document import new_document

    inp = write_jsonl(scaled_corpus(n), tmp / f"in{n}" / "docs.jsonl")
    out = tmp / f"out{n}{'c' if control else ''}"

    def to_doc(line: str) -> dict:
        r = json.loads(line)
        return new_document(r["id"], r["text"], "bench")

    with LocalPortableCluster(pools=1, workdir=str(tmp / f"cluster{n}{'c' if control else ''}")) as cluster:
        pool_pid, job_pid = cluster.process_groups  # started in this order: pool-0, then job service
        sampler = HwmSampler(pool_pid, job_pid)
        sampler.start()
        t = time.perf_counter()
        try:
            with beam.Pipeline(options=PipelineOptions(cluster.pipeline_args(workers=1))) as p:
                docs = p | "Read" >> beam.io.ReadFromText(str(inp)) | "Parse" >> beam.Map(to_doc)
                if control:  # the same documents through one shuffle, no NearDedup: the harness's own share
                    kept, rejects = docs | "Shuffle" >> beam.Reshuffle(), p | "None" >> beam.Create([])
                else:
                    kept, rejects = docs | NearDedup(NearDedupConfig(enabled=True))
                kept | "KeptIds" >> beam.Map(lambda d: d["id"]) | "WriteKept" >> beam.io.WriteToText(
                    str(out / "kept"), shard_name_template="")
                rejects | "RejIds" >> beam.Map(lambda r: r["id"]) | "WriteRej" >> beam.io.WriteToText(
                    str(out / "rejects"), shard_name_template="")
        finally:
            seconds = time.perf_counter() - t
            sampler.stop()
        started = sum(cluster.dispatcher.started.values())
    kept_n = len((out / "kept").read_text().splitlines())
    rej_n = len((out / "rejects").read_text().splitlines())
    if kept_n + rej_n != n:
        raise RuntimeError(f"{n} docs in, {kept_n} kept + {rej_n} rejected out")
    return {"docs": n, "run": "control" if control else "near_dedup", "seconds": seconds, "removed": rej_n, "sdk_workers_started": started,
            "worker_processes_seen": len(sampler.workers),
            "worker_mib": max(sampler.workers.values(), default=0) / 1024, "job_mib": sampler.job / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs=2, default=[2000, 8000], help="two input sizes (documents)")
    args = ap.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="replaymill-ndmem-") as tmp:
        for control in (False, True):
            for n in args.sizes:
                r = run_once(n, Path(tmp), control)
                print(json.dumps(r), file=sys.stderr, flush=True)
                rows[control, n] = r
    a, b = args.sizes
    print("## PortableRunner, one external SDK worker pool, fresh cluster per run; peak RSS (VmHWM) MiB")
    print("| run | input docs | seconds | removed | SDK worker | job service (holds the shuffles) |")
    print("|---|---|---|---|---|---|")
    for control, name in ((False, "NearDedup(enabled=True)"), (True, "control: read, parse, Reshuffle, write")):
        for n in args.sizes:
            r = rows[control, n]
            print(f"| {name} | {n} | {r['seconds']:.1f} | {r['removed']} | {r['worker_mib']:.0f} | {r['job_mib']:.0f} |")
        ra, rb = rows[control, a], rows[control, b]
        print(f"| {name} | ratio {b}/{a} | | | {rb['worker_mib'] / ra['worker_mib']:.2f} | "
              f"{rb['job_mib'] / ra['job_mib']:.2f} |")
    for n in args.sizes:
        print(f"NearDedup minus control at {n} docs: SDK worker "
              f"{rows[False, n]['worker_mib'] - rows[True, n]['worker_mib']:+.0f} MiB, job service "
              f"{rows[False, n]['job_mib'] - rows[True, n]['job_mib']:+.0f} MiB")


if __name__ == "__main__":
    main()
