"""`replaymill build` as a user runs it: a subprocess, its exit code, what it prints, what it writes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from replaymill.shards.io import read_manifest

REPO = Path(__file__).resolve().parents[1]


def replaymill(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    # the caller's PYTHONPATH first: a worktree that maps `replaymill` to itself must run its own code
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH", ""), str(REPO)) if p)
    env = {**os.environ, "PYTHONPATH": path, "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "replaymill.pipeline.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_help_explains_usage():
    r = replaymill("build", "--help")
    assert r.returncode == 0
    for needle in ("--input", "--output", "--recipe", "fineweb-en", "--runner", "examples:", "_manifest.json"):
        assert needle in r.stdout


def test_missing_input_fails_before_running_with_one_line(tmp_path):
    r = replaymill("build", "--input", str(tmp_path / "nothing-*.jsonl.gz"), "--output", str(tmp_path / "out"))
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if "error" in l.lower()]
    assert len(lines) == 1 and "nothing-" in lines[0]
    assert not (tmp_path / "out" / "_manifest.json").exists()


def test_unwritable_output_fails_with_one_line(tmp_path, shared_data):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    src = str(shared_data / "olmo-c4" / "c4-sample.01.json.gz")
    r = replaymill("build", "--input", src, "--output", str(blocker / "out"))
    assert r.returncode == 2 and "cannot write to output" in r.stderr
    assert len([l for l in r.stderr.splitlines() if "error" in l.lower()]) == 1


def test_unknown_recipe_fails_with_one_line(tmp_path):
    r = replaymill("build", "--output", str(tmp_path / "o"), "--recipe", "no-such-recipe")
    assert r.returncode == 2 and "no recipe 'no-such-recipe'" in r.stderr


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    r = replaymill("build", "--output", str(out), "--demo-mb", "1.5", "--workers", "2")
    return out, r


def test_demo_build_prints_funnel_and_writes_shards(demo):
    out, r = demo
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Build funnel" in r.stdout and "exact dedup" in r.stdout and "kept" in r.stdout
    assert f"to {out}" in r.stdout.splitlines()[-1] and "_manifest.json" in r.stdout.splitlines()[-1]  # where it went
    assert "direct_num_workers" not in r.stderr and "━" not in r.stdout  # no Beam warning; no bars when piped
    manifest = read_manifest(str(out))
    assert manifest.total.docs == manifest.funnel.kept > 100
    assert manifest.funnel.dropped["exact_duplicate"] > 0  # identical licence files across packages
    for s in manifest.shards:
        assert (out / s.path).stat().st_size == s.bytes
    sources = set(pads.dataset(str(out), format="arrow", partitioning="hive").to_table(columns=["source_label"])
                  .column("source_label").to_pylist())
    assert {"python-stdlib-code", "site-packages-license"} <= sources


def test_rerun_refuses_finished_set_unless_overwrite(demo):
    out, _ = demo
    r = replaymill("build", "--output", str(out), "--demo-mb", "0.2")
    assert r.returncode == 2 and "--overwrite" in r.stderr
