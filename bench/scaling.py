"""Build throughput with 1 vs 2 workers, and what that means for a cluster-sized replay corpus.

    python bench/scaling.py                 # the figures in the README (cluster section)
    python bench/scaling.py --mb 4 --runners portable   # quicker
    python bench/scaling.py --mb 4 --runners direct dask  # Dask against the DirectRunner

1. Input: the real documents of ../shared/data scaled up with perturbations to `--mb` MB of text
   (`bench/build_throughput.scale_corpus`: exact copies and near copies, so both dedups work),
   dealt into `--files` gzip files (one compressed file is read by one worker).
2. The full build (`pipeline.build.build`, recipe `--recipe`, default fineweb-en: langid, quality
   filters, exact and near dedup) is timed end to end with 1 and then 2 workers, on
   - `direct`: the DirectRunner (FnApiRunner) in multi_processing mode, 1 vs 2 SDK processes;
   - `portable`: PortableRunner against `deploy.local_cluster` with 1 vs 2 external worker pools
     (the cluster started once per worker count, outside the timed region);
   - `dask`: `--runner DaskRunner` (pipeline/dask_runner.py) on a dask.distributed cluster on
     loopback with 1 vs 2 single-threaded worker processes (started, and replaymill imported in
     each worker, outside the timed region: a long-running cluster; the scheduler runs in this
     process).
   Each figure is a ratio against the 1-worker run of the same runner in the same invocation.
3. Per-core rate: documents, MB and input tokens per CPU-second of the 1-worker DirectRunner run
   (this process and its SDK worker process, from getrusage, so other load on a shared machine
   does not count against it; the Dask runs count this process, with its scheduler, and every
   worker process, from psutil; each printed as a ratio to the 1-worker DirectRunner; tokens from the
   build's own estimator, `transforms.tokens.estimate_tokens`, over the input), then a projection of the
   core-hours, workers and hours to build a 100B-token replay corpus from a 1T-token open corpus.

The machine this runs on may be shared: the 1-minute load average before each run is printed,
and the wall-clock speed-up cannot exceed the number of idle cores. Beam's local runners drive
all workers from one Python controller process (data plane, splitting, shuffles); with 2 workers
that process itself needs about a core (sampled with psutil: ~18 CPU-s of a 17 s run at 24 MB,
against ~2 CPU-s with 1 worker), so on 2 cores two workers cannot beat one. Cluster runners have
no such single controller; the per-CPU-second rate is the figure that transfers to them.
"""
from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from measure import cpu_seconds  # noqa: E402  (bench/, the script's own folder, stays on sys.path)

SOURCE_TOKENS = 1e12   # the open corpus
TARGET_TOKENS = 100e9  # the replay corpus to build
CORES_PER_WORKER = 8   # e.g. n2-standard-8 on Dataflow, a 8-core TaskManager on Flink
CLUSTER_EFFICIENCY = 0.7  # share of the per-core rate a cluster keeps (shuffle over network, stragglers)


def load_scale_corpus():
    """`scale_corpus` from bench/build_throughput.py (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("build_throughput", REPO / "bench" / "build_throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.scale_corpus


def split_corpus(paths: list[str], dest: Path, parts: int) -> tuple[list[str], int]:
    """Deal the scaled corpus's lines round-robin into `parts` gzip files (a compressed file is read
    by one worker, so a single file could not show any parallelism) and count its input tokens
    with the build's own estimator."""
    from replaymill.transforms.tokens import estimate_tokens

    dest.mkdir(parents=True, exist_ok=True)
    outs = [gzip.open(dest / f"part-{i:03d}.jsonl.gz", "wt", encoding="utf-8", compresslevel=1) for i in range(parts)]
    tokens = 0
    i = 0
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                outs[i % parts].write(line)
                tokens += estimate_tokens(json.loads(line)["text"])
                i += 1
    for out in outs:
        out.close()
    return [str(dest / f"part-{i:03d}.jsonl.gz") for i in range(parts)], tokens


def timed_build(paths: list[str], out: Path, recipe, args) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds of this process and its reaped children, manifest); `args` are
    Beam flags or ready PipelineOptions."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from replaymill.pipeline.build import build

    options = args if isinstance(args, PipelineOptions) else PipelineOptions(args)
    start, cpu = time.perf_counter(), cpu_seconds()
    with beam.Pipeline(options=options) as p:
        build(p, paths, str(out), recipe)
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    return elapsed, cpu, json.loads((out / "_manifest.json").read_text())


def run_direct(paths, work: Path, recipe, workers: int) -> tuple[float, float, dict]:
    args = ["--runner=DirectRunner", f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    return timed_build(paths, work / f"direct-{workers}", recipe, args)


def run_portable(paths, work: Path, recipe, workers: int) -> tuple[float, float, dict]:
    from replaymill.deploy.local_cluster import LocalPortableCluster

    with LocalPortableCluster(pools=workers, workdir=str(work / f"cluster-{workers}")) as cluster:
        return timed_build(paths, work / f"portable-{workers}", recipe, cluster.pipeline_args())


def run_dask(paths, work: Path, recipe, workers: int) -> tuple[float, float, dict]:
    """The build on a loopback dask.distributed cluster; CPU = this process (driver and scheduler)
    plus every worker process over the timed region."""
    import psutil
    from distributed import Client, LocalCluster

    from replaymill.pipeline.options import make_options

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        client.run(importlib.import_module, "replaymill.pipeline.dask_runner")  # a warm cluster
        procs = [psutil.Process(pid) for pid in client.run(os.getpid).values()]
        options = make_options("DaskRunner", beam_args=[f"--dask_client_address={cluster.scheduler_address}"])
        before = [sum(p.cpu_times()[:2]) for p in procs]
        elapsed, cpu, manifest = timed_build(paths, work / f"dask-{workers}", recipe, options)
        cpu += sum(sum(p.cpu_times()[:2]) - b for p, b in zip(procs, before))
    return elapsed, cpu, manifest


def shard_digest(manifest: dict) -> list[tuple[str, str]]:
    return [(s["path"], s["sha256"]) for s in manifest["shards"]]


def projection(tokens_per_core_s: float, keep_token_share: float) -> list[str]:
    """Core-hours and cluster sizes for 100B replay tokens out of a 1T-token corpus."""
    lines = []
    scenarios = (
        ("whole corpus (global dedup over all 1T tokens)", SOURCE_TOKENS),
        (f"one slice ({TARGET_TOKENS / keep_token_share / 1e9:.0f}B input tokens at the measured keep rate)",
         min(SOURCE_TOKENS, TARGET_TOKENS / keep_token_share)),
    )
    for label, input_tokens in scenarios:
        core_hours = input_tokens / tokens_per_core_s / 3600 / CLUSTER_EFFICIENCY
        lines.append(f"  {label}: {core_hours:,.0f} core-hours")
        for workers in (16, 64, 256):
            hours = core_hours / (workers * CORES_PER_WORKER)
            lines.append(f"    {workers:>4} workers x {CORES_PER_WORKER} cores: {hours:,.1f} h")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=8.0, help="MB of text in the scaled corpus")
    ap.add_argument("--recipe", default="fineweb-en")
    ap.add_argument("--files", type=int, default=8, help="input files the corpus is dealt into")
    ap.add_argument("--runners", nargs="+", default=["direct", "portable"], choices=["direct", "portable", "dask"],
                    help="runners to time with 1 and 2 workers (dask needs the dask extra)")
    ap.add_argument("--work", default=None, help="scratch directory (default: a temp dir, removed)")
    args = ap.parse_args()

    from replaymill.schemas.recipe import resolve_recipe

    recipe = resolve_recipe(args.recipe)
    work = Path(args.work or tempfile.mkdtemp(prefix="replaymill-scaling-"))
    try:
        scaled, n_docs, n_bytes = load_scale_corpus()(work / "scaled", args.mb)
        paths, tokens_in = split_corpus(scaled, work / "corpus", args.files)
        print(f"corpus: {n_docs:,} documents, {n_bytes / 2**20:.1f} MB of text, {tokens_in:,} tokens "
              f"in {len(paths)} files; recipe {recipe.name}; {os.cpu_count()} cores")
        runs = {"direct": run_direct, "portable": run_portable, "dask": run_dask}
        rates, shards = {}, {}
        for runner in args.runners:
            times, digests = {}, []
            for workers in (1, 2):
                load = os.getloadavg()[0]
                elapsed, cpu, manifest = runs[runner](paths, work, recipe, workers)
                times[workers] = elapsed
                digests.append(shard_digest(manifest))
                funnel = manifest["funnel"]
                kept_tokens = manifest["total"]["tokens"]
                print(f"{runner:>8} x{workers}: {elapsed:7.1f} s  {funnel['read'] / elapsed:8.1f} docs/s  "
                      f"{n_bytes / 2**20 / elapsed:6.2f} MB/s  {tokens_in / elapsed:10,.0f} tokens/s  "
                      f"(load before run {load:.1f}; kept {funnel['kept']:,} of {funnel['read']:,} docs)")
                if (runner == "direct" and workers == 1) or runner == "dask":
                    # CPU of this process and its one reaped SDK worker (direct), or of this process
                    # and the Dask worker processes. Not measured for the DirectRunner with 2 workers
                    # (getrusage misses workers the runner does not reap) nor on the portable runs
                    # (external workers are not this process's children).
                    base = rates["cpu"][0][0] if "cpu" in rates else None
                    ratio = f"; {funnel['read'] / cpu / base:.2f}x the DirectRunner x1 per CPU-second" if base else ""
                    print(f"{'':>12}CPU {cpu:6.1f} s: {funnel['read'] / cpu:8.1f} docs per CPU-second, "
                          f"{n_bytes / 2**20 / cpu:5.2f} MB per CPU-second, {tokens_in / cpu:10,.0f} tokens per CPU-second{ratio}")
                    if runner == "direct":
                        rates["cpu"] = [(funnel["read"] / cpu, tokens_in / cpu, kept_tokens / tokens_in)]
            same = "identical" if digests[0] == digests[1] else "DIFFERENT"
            shards[runner] = digests[0]
            versus = "" if runner == args.runners[0] else (
                f", {'identical to' if digests[0] == shards[args.runners[0]] else 'DIFFERENT from'} {args.runners[0]}'s")
            print(f"{runner:>8}: speed-up 2 vs 1 worker = {times[1] / times[2]:.2f}x; shards of both runs {same}{versus}")
        if "cpu" not in rates:
            return 0
        docs_s, tokens_s, keep = rates["cpu"][0]
        print(f"\nper-core rate (DirectRunner, 1 worker, per CPU-second of the runner and its worker): "
              f"{docs_s:.1f} docs/s, {tokens_s:,.0f} tokens/s; recipe keeps {keep:.0%} of input tokens")
        print(f"projection: 100B replay tokens from a 1T-token corpus at {CLUSTER_EFFICIENCY:.0%} of that rate per core")
        print("\n".join(projection(tokens_s, keep)))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
