"""Standing test (issue 10 item 10): SIGKILL the command at random points, then rerun it.

A build on two worker processes is killed at a random moment after it took its output; then:
no process of that run survives (before the fix workers lived on for 1-3 minutes, writing shards),
the old finished set (for an `--overwrite` run) is intact until a new one is sealed, and the
same command run again gives exactly the set an uninterrupted build gives, with no leftovers.
The kill moments are drawn fresh each run; the seed is in every failure message
(`REPLAYMILL_CRASH_SEED=<seed>` replays them).
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from replaymill.pipeline.cli import main
from replaymill.pipeline.staging import LOCK_NAME, OWNER_NAME, STAGING_NAME
from replaymill.pipeline.worker_setup import process_token, processes_of
from replaymill.schemas.manifest import MANIFEST_NAME
from replaymill.shards.io import read_manifest
from replaymill.shards.reader import ShardSet

pytestmark = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="process checks read /proc")


def inputs(shared_data: Path) -> list[str]:
    return [str(shared_data / "olmo-c4" / "*.json.gz"), str(shared_data / "dolma-cc" / "cc_en_head-*.jsonl.gz")]


def shards_of(root: Path) -> list[tuple[str, str]]:
    return [(s.path, s.sha256) for s in read_manifest(str(root)).shards]


def kill_at_random(cmd: list[str], out: Path, rng: random.Random, where: str) -> float:
    """Start `cmd`, wait until it holds `out` (its staging marker exists), SIGKILL it a random
    0-8 s later; returns the delay. Asserts that none of its processes outlive it by more than 5 s."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    token = None
    deadline = time.monotonic() + 120
    while not (out / STAGING_NAME / OWNER_NAME).exists() and proc.poll() is None and time.monotonic() < deadline:
        token = token or process_token(proc.pid)
        time.sleep(0.05)
    token = token or process_token(proc.pid)
    delay = rng.uniform(0, 8)
    time.sleep(delay)
    workers = processes_of(token) if token else []
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while token and processes_of(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = processes_of(token) if token else []
    assert not left, f"{where}: {len(left)} of {len(workers)} worker processes outlived the killed driver"
    return delay


def test_kill_and_rerun_at_random_points(shared_data, tmp_path):
    seed = int(os.environ.get("REPLAYMILL_CRASH_SEED", time.time_ns() % 2**31))
    rng = random.Random(seed)
    src = inputs(shared_data)
    reference = tmp_path / "reference"
    assert main(["build", "--input", *src, "--output", str(reference), "--in-memory"]) == 0
    out = tmp_path / "out"
    command = [sys.executable, "-m", "replaymill.pipeline.cli", "build", "--input", *src, "--output", str(out),
               "--workers", "2"]

    # 1. a first build, killed: nothing at the root claims to be a set unless the swap finished
    delay = kill_at_random(command, out, rng, f"seed {seed}, first build")
    if (out / MANIFEST_NAME).exists():
        assert shards_of(out) == shards_of(reference), f"seed {seed}: killed after {delay:.2f} s"
    assert main(["build", "--input", *src, "--output", str(out), "--in-memory", "--overwrite"]) == 0
    assert shards_of(out) == shards_of(reference), f"seed {seed}: rerun after a kill at {delay:.2f} s"

    # 2. an --overwrite build, killed: the old set stays whole and readable, unless the new one was sealed
    delay = kill_at_random([*command, "--overwrite"], out, rng, f"seed {seed}, overwrite build")
    staged_seal = out / STAGING_NAME / MANIFEST_NAME
    if not staged_seal.exists() and (out / MANIFEST_NAME).exists():
        old = ShardSet.open(str(out))
        assert sum(old.read_table(s).num_rows for s in old.shards) == old.manifest.total.docs
    assert main(["build", "--input", *src, "--output", str(out), "--in-memory", "--overwrite"]) == 0
    assert shards_of(out) == shards_of(reference), f"seed {seed}: rerun after a kill at {delay:.2f} s"
    listed = {s.path for s in read_manifest(str(out)).shards}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == listed | {MANIFEST_NAME, LOCK_NAME}, f"seed {seed}: leftovers {on_disk - listed}"
