"""Build throughput with the language-ID cascade against fastText alone, measured in one run.

    python bench/langid_throughput.py [--mb 20] [--recipe fineweb-en] [--workers 0] [--repeats 2]

The corpus is bench/build_throughput.py's: the real Dolma CC (many languages) and C4 documents of
../shared/data, repeated with word perturbations up to `--mb` MB of text. The same Beam build
(`pipeline.build.build`, DirectRunner, `--workers` processes) runs with the recipe's
`langid.cascade` off and on, alternately, `--repeats` times each; the fastest of each is reported,
with the ratio cascade / fastText-only in documents per second, the Beam counters of which model
decided, the kept documents per language, and the peak RSS of the worker processes.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_throughput import scale_corpus  # noqa: E402


def run_build(paths: list[str], out: Path, recipe, workers: int) -> tuple[float, dict[str, int]]:
    """(seconds, {"fasttext": n, "lingua": n} decisions) of one Beam build."""
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter

    from replaymill.pipeline.build import build
    from replaymill.pipeline.options import make_options

    start = time.perf_counter()
    p = beam.Pipeline(options=make_options(workers=workers))
    build(p, paths, str(out), recipe)
    result = p.run()
    result.wait_until_finish()
    seconds = time.perf_counter() - start
    decided = {m.key.metric.name: m.committed for m in
               result.metrics().query(MetricsFilter().with_namespace("langid"))["counters"]}
    return seconds, decided


def kept_by_lang(out: Path) -> Counter:
    from replaymill.shards.io import read_manifest

    return Counter({f"{s.lang}": s.rows for s in read_manifest(str(out)).shards})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=20.0, help="size of the scaled corpus in MB of text")
    ap.add_argument("--recipe", default="fineweb-en", help="built-in recipe or YAML (its cascade settings are used)")
    ap.add_argument("--workers", type=int, default=0, help="Beam worker processes (0 = all cores)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--work", default=None, help="scratch directory (default: a temp dir, removed)")
    args = ap.parse_args()

    import shutil

    from replaymill.schemas.recipe import resolve_recipe

    recipe = resolve_recipe(args.recipe)
    variants = {
        "fastText only": recipe.model_copy(update={"langid": recipe.langid.model_copy(
            update={"cascade": recipe.langid.cascade.model_copy(update={"enabled": False})})}),
        "cascade": recipe.model_copy(update={"langid": recipe.langid.model_copy(
            update={"cascade": recipe.langid.cascade.model_copy(update={"enabled": True})})}),
    }
    work = Path(args.work or tempfile.mkdtemp(prefix="replaymill-langid-bench-"))
    try:
        paths, n_docs, n_bytes = scale_corpus(work / "input", args.mb)
        print(f"corpus: {n_docs:,} documents, {n_bytes / 2**20:.1f} MB of text in {len(paths)} files; "
              f"recipe {args.recipe}; workers {args.workers or os.cpu_count()}; load average {os.getloadavg()[0]:.1f}")
        best: dict[str, float] = {}
        info: dict[str, tuple[dict[str, int], Counter, float]] = {}
        for rep in range(args.repeats):
            order = list(variants) if rep % 2 == 0 else list(reversed(variants))
            for name in order:
                out = work / f"out-{rep}-{name.split()[0]}"
                seconds, decided = run_build(paths, out, variants[name], args.workers)
                rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
                print(f"  run {rep + 1} {name}: {seconds:.1f} s ({n_docs / seconds:,.0f} docs/s); decided {decided}")
                if seconds < best.get(name, float("inf")):
                    best[name] = seconds
                info.setdefault(name, (decided, kept_by_lang(out), rss))
                shutil.rmtree(out, ignore_errors=True)
        print()
        print("| langid | best s | docs/s | ratio | decided by fastText / lingua | kept en | kept other | peak child RSS MB |")
        print("|---|---:|---:|---:|---|---:|---:|---:|")
        base = best["fastText only"]
        for name, seconds in best.items():
            decided, kept, rss = info[name]
            print(f"| {name} | {seconds:.1f} | {n_docs / seconds:,.0f} | {base / seconds:.2f} | "
                  f"{decided.get('fasttext', 0):,} / {decided.get('lingua', 0):,} | {kept.get('en', 0):,} | "
                  f"{sum(kept.values()) - kept.get('en', 0):,} | {rss:,.0f} |")
        print("\n(peak child RSS is cumulative over the runs so far, in the order printed above)")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
