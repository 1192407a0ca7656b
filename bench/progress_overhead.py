"""What the progress bars cost the readers: reading a corpus with byte metering and document counts
reported to a progress channel, against the same read without, in one process, same run.

    python bench/progress_overhead.py --input 'data/*.jsonl.gz' [--repeat 3]

Prints the seconds of each (best of --repeat) and the ratio metered / plain.
"""
from __future__ import annotations

import argparse
import time

from replaymill.pipeline import progress
from replaymill.pipeline.progress import ProgressReporter, ProgressView, Task
from replaymill.pipeline.readers import read_item
from replaymill.pipeline.sources import match_inputs, plan_reads


def read_all(items, reporter: ProgressReporter | None) -> int:
    docs = 0
    for item in items:
        if reporter is None:
            for parsed in read_item(item, 32 << 20):
                docs += parsed.doc is not None
            continue
        with progress.metering(reporter, "read.bytes", compressed=bool(item.codec)):
            for parsed in read_item(item, 32 << 20):
                if parsed.doc is not None:
                    docs += 1
                    reporter.add("read.docs")
    if reporter is not None:
        reporter.flush()
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", nargs="+", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    items = [item for spec in match_inputs(args.input) for item in plan_reads(spec, 64 << 20)]
    view = ProgressView([Task("read.bytes", "read")], enabled=True)  # a channel to write to; no display
    best = {"plain": float("inf"), "metered": float("inf")}
    for _ in range(args.repeat):
        for name, reporter in (("plain", None), ("metered", ProgressReporter(view.channel, metrics=False))):
            start = time.perf_counter()
            docs = read_all(items, reporter)
            best[name] = min(best[name], time.perf_counter() - start)
    print(f"{docs:,} documents; plain {best['plain']:.3f} s, metered {best['metered']:.3f} s, "
          f"ratio {best['metered'] / best['plain']:.3f} (best of {args.repeat})")
    print(f"channel counts: {view.poll()}")


if __name__ == "__main__":
    main()
