"""What the integrity gate and the staged swap cost, against plain reads of the same shards.

    python bench/integrity_cost.py --shards out/demo [--repeat 3]

Baseline: read every shard's bytes once (what any reader of the set pays). Gate: the read-back the
build does before its manifest (`pipeline.integrity.shard_problem`: bytes, sha256, Arrow row count)
plus the listing of the set. Swap: a copy of the set staged under a fresh output root and swapped
in (`pipeline.staging`), which on local disk is renames. Prints seconds, MB/s, the gate/baseline
ratio and peak RSS. `--shards` is any finished set; nothing here is tuned to one.
"""
from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from measure import best_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", required=True, help="a finished shard set (with _manifest.json)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is kept")
    args = parser.parse_args()

    from replaymill.pipeline.integrity import set_files, shard_problem
    from replaymill.pipeline.staging import StagedOutput
    from replaymill.schemas.manifest import MANIFEST_NAME
    from replaymill.shards.io import read_manifest

    root = str(Path(args.shards).resolve())
    manifest = read_manifest(root)
    infos = [s.model_dump() for s in manifest.shards]
    mb = sum(s.bytes for s in manifest.shards) / 1e6

    def read_all() -> None:
        for info in infos:
            Path(root, info["path"]).read_bytes()

    def gate_checks() -> None:
        set_files(root)
        problems = [shard_problem(root, info) for info in infos]
        assert not any(p["problem"] for p in problems)

    baseline = best_of(read_all, args.repeat)
    gate = best_of(gate_checks, args.repeat)

    swaps = []
    for _ in range(args.repeat):
        out = Path(tempfile.mkdtemp(prefix="replaymill-swap-")) / "out"
        try:
            with StagedOutput(str(out), MANIFEST_NAME) as staged:
                for info in [*infos, {"path": MANIFEST_NAME}]:
                    dst = Path(staged.staging, info["path"])
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(Path(root, info["path"]), dst)
                start = time.perf_counter()
                staged.commit()
                swaps.append(time.perf_counter() - start)
        finally:
            shutil.rmtree(out.parent, ignore_errors=True)

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"set: {len(infos)} shards, {mb:.1f} MB, {manifest.total.docs:,} documents ({root})")
    print(f"baseline read     {baseline:7.3f} s  {mb / baseline:8.1f} MB/s")
    print(f"gate read-back    {gate:7.3f} s  {mb / gate:8.1f} MB/s   ratio gate/baseline {gate / baseline:.2f}x")
    print(f"staged swap       {min(swaps):7.3f} s  ({min(swaps) / len(infos) * 1e3:.2f} ms per shard)")
    print(f"peak RSS          {peak:7.1f} MB")


if __name__ == "__main__":
    main()
