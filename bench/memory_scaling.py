"""Peak memory against output size (sample) and against input size (build), as a user runs them.

    python bench/memory_scaling.py sample --sizes 10e6,100e6,1e9 [--pool-input FILE ...] [--workers 2]
    python bench/memory_scaling.py build --sizes-mb 3.5,35 [--input FILE ...] [--recipe minimal]

Each point runs the real command (`python -m replaymill.pipeline.cli ...`) in a subprocess and polls
the resident memory of its whole process tree (driver plus local Beam workers) every 0.1 s: the
figures are the peak of the tree's sum and of the driver alone, with wall time. Ratios are against
the smallest size, measured in the same run; `--compare-pythonpath DIR` runs the same points with
another checkout too (e.g. the code before a change), killed at `--max-gb`.

sample: the pool is built once from `--pool-input` (default: the shared Dolma CC and C4 files) with
the minimal recipe, or given with `--pool`; the target weighs the pool's domains equally, and
`--on-short upsample` repeats them up to each token budget (1B tokens from a ~1M-token pool is a
thousand epochs). build: `--input` documents (default: the shared Dolma CC file) are repeated,
each copy with its own id and one word changed, to each input size, then built.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

DATA = Path(os.environ.get("REPLAYMILL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
REPO_PARENT = str(Path(__file__).resolve().parents[2])


class TreeMemory:
    """Peak RSS of a process and all its descendants (summed), and of the process alone, polled."""

    def __init__(self, pid: int, interval: float = 0.1, limit_bytes: float | None = None):
        self.pid, self.interval, self.limit = pid, interval, limit_bytes
        self.peak_tree = self.peak_driver = 0
        self.killed_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        start = time.perf_counter()
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                rss = []
                for p in procs:
                    try:
                        rss.append(p.memory_info().rss)
                    except psutil.NoSuchProcess:
                        rss.append(0)
                self.peak_driver = max(self.peak_driver, rss[0])
                total = sum(rss)
                self.peak_tree = max(self.peak_tree, total)
                if self.limit and total > self.limit and self.killed_at is None:
                    self.killed_at = time.perf_counter() - start
                    for p in reversed(procs):
                        try:
                            p.kill()
                        except psutil.NoSuchProcess:
                            pass
            except psutil.NoSuchProcess:
                return
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_measured(cmd: list[str], pythonpath: str, max_gb: float | None, timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": pythonpath, "COLUMNS": "120"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    mem = TreeMemory(proc.pid, limit_bytes=max_gb * 2**30 if max_gb else None)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for p in psutil.Process(proc.pid).children(recursive=True):
            p.kill()
        proc.kill()
        out, err = proc.communicate()
    mem.stop()
    return {"rc": proc.returncode, "wall_s": round(time.perf_counter() - start, 1),
            "peak_tree_gb": round(mem.peak_tree / 2**30, 3), "peak_driver_gb": round(mem.peak_driver / 2**30, 3),
            "killed_at_s": None if mem.killed_at is None else round(mem.killed_at, 1),
            "stderr_tail": err.strip().splitlines()[-1:] if proc.returncode else []}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "replaymill.pipeline.cli", *args]


def build_pool(inputs: list[str], out: Path, pythonpath: str) -> Path:
    subprocess.run(cli("build", "--input", *inputs, "--output", str(out), "--recipe", "minimal", "--workers", "2"),
                   env={**os.environ, "PYTHONPATH": pythonpath}, check=True, capture_output=True)
    return out


def bench_sample(args, tmp: Path) -> dict:
    pool = Path(args.pool) if args.pool else build_pool(args.pool_input, tmp / "pool", args.pythonpath)
    manifest = json.loads((pool / "_manifest.json").read_text())
    domains = sorted(manifest["by_domain"])
    weights = tmp / "weights.yaml"
    weights.write_text("weights: {" + ", ".join(f"{d}: 1" for d in domains) + "}\n")
    print(f"pool {pool}: {manifest['total']['docs']:,} docs, {manifest['total']['tokens']:,} tokens, "
          f"domains {domains}", flush=True)
    rows = []
    for label, pythonpath in [("this", args.pythonpath)] + ([("compare", args.compare_pythonpath)]
                                                            if args.compare_pythonpath else []):
        for size in args.sizes:
            out = tmp / f"out-{label}-{size}"
            cmd = cli("sample", "--shards", str(pool), "--target", str(weights), "--tokens", str(int(size)),
                      "--on-short", "upsample", "--output", str(out), "--workers", str(args.workers),
                      *(["--in-memory"] if args.in_memory else []))
            r = run_measured(cmd, pythonpath, args.max_gb, args.timeout)
            if r["rc"] == 0:
                m = json.loads((out / "_manifest.json").read_text())
                r.update(out_docs=m["total"]["docs"], out_tokens=m["total"]["tokens"], parts=len(m["shards"]))
            shutil.rmtree(out, ignore_errors=True)
            rows.append({"code": label, "tokens": int(size), **r})
            print(json.dumps(rows[-1]), flush=True)
    return {"pool_docs": manifest["total"]["docs"], "pool_tokens": manifest["total"]["tokens"], "rows": rows}


def make_build_input(sources: list[str], mb: float, path: Path, seed: int = 0) -> int:
    """Real documents repeated to `mb` MB of text, each copy its own id and one word changed."""
    records = []
    for src in sources:
        opener = gzip.open if src.endswith(".gz") else open
        with opener(src, "rt", encoding="utf-8") as f:
            records += [json.loads(line) for line in f if line.strip()]
    rng = random.Random(seed)
    target, written, n = mb * 1e6, 0, 0
    with open(path, "w", encoding="utf-8") as f:
        while written < target:
            rec = dict(records[n % len(records)])
            words = rec["text"].split(" ")
            words[rng.randrange(len(words))] = f"w{n}"
            rec["text"], rec["id"] = " ".join(words), f"{rec.get('id', 'doc')}-{n}"
            line = json.dumps(rec) + "\n"
            f.write(line)
            written += len(rec["text"].encode("utf-8"))
            n += 1
    return n


def bench_build(args, tmp: Path) -> dict:
    rows = []
    for mb in args.sizes_mb:
        src = tmp / f"input-{mb}.jsonl"
        docs = make_build_input(args.input, mb, src)
        for label, pythonpath in [("this", args.pythonpath)] + ([("compare", args.compare_pythonpath)]
                                                                if args.compare_pythonpath else []):
            out = tmp / f"build-{label}-{mb}"
            cmd = cli("build", "--input", str(src), "--output", str(out), "--recipe", args.recipe,
                      "--workers", str(args.workers), *(["--in-memory"] if args.in_memory else []))
            r = run_measured(cmd, pythonpath, args.max_gb, args.timeout)
            shutil.rmtree(out, ignore_errors=True)
            rows.append({"code": label, "input_mb": mb, "input_docs": docs, **r})
            print(json.dumps(rows[-1]), flush=True)
        src.unlink()
    return {"rows": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--sizes", type=lambda v: [float(x) for x in v.split(",")], default=[10e6, 100e6, 1e9])
    s.add_argument("--pool", help="an existing shard set (default: build one from --pool-input)")
    s.add_argument("--pool-input", nargs="+", default=[str(DATA / "dolma-cc" / "*.jsonl.gz"),
                                                        str(DATA / "olmo-c4" / "*.gz")])
    b = sub.add_parser("build")
    b.add_argument("--sizes-mb", type=lambda v: [float(x) for x in v.split(",")], default=[3.5, 35])
    b.add_argument("--input", nargs="+", default=[str(DATA / "dolma-cc" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz")])
    b.add_argument("--recipe", default="minimal")
    for q in (s, b):
        q.add_argument("--in-memory", action="store_true", help="one process (Beam's in-memory runner mode)")
        q.add_argument("--workers", type=int, default=2)
        q.add_argument("--pythonpath", default=os.environ.get("PYTHONPATH", REPO_PARENT),
                       help="where `replaymill` is imported from (default: this checkout's parent)")
        q.add_argument("--compare-pythonpath", help="also run every point with the replaymill found here")
        q.add_argument("--max-gb", type=float, default=12.0, help="kill a run whose process tree exceeds this")
        q.add_argument("--timeout", type=float, default=1800.0)
        q.add_argument("--json", help="write the results here too")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="replaymill-mem-") as tmp:
        result = (bench_sample if args.what == "sample" else bench_build)(args, Path(tmp))
    result.update(command=" ".join(sys.argv), date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  machine=f"{platform.node()} {os.cpu_count()} cores {psutil.virtual_memory().total / 2**30:.0f} GiB",
                  load_avg=os.getloadavg())
    rows = [r for r in result["rows"] if r["code"] == "this" and r["rc"] == 0]
    if rows:
        base = rows[0]["peak_tree_gb"]
        for r in rows:
            r["ratio_vs_smallest"] = round(r["peak_tree_gb"] / base, 2) if base else None
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
