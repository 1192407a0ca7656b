"""The output root (issue 10 items 1, 3, 10): never remove what is not ours, replace a finished set
atomically, complete a crashed swap, one run at a time, no leftovers of a crashed run survive."""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from replaymill.pipeline.cli import main
from replaymill.pipeline.staging import (
    LOCK_NAME, OWNER_NAME, STAGING_NAME, OutputExistsError, OutputRefused, StagedOutput,
)
from replaymill.schemas.document import new_document
from replaymill.schemas.manifest import MANIFEST_NAME
from replaymill.shards.reader import ShardSet


def docs(prefix: str, n: int) -> list[dict]:
    return [new_document(f"{prefix}-{i:03d}", f"{prefix} document {i} has a few words", "test") for i in range(n)]


def publish(root: Path, make_shard_set, sets: dict, overwrite: bool = False) -> None:
    """Stage a real shard set (shards + manifest) and swap it in, as a command does."""
    with StagedOutput(str(root), MANIFEST_NAME, overwrite) as staged:
        make_shard_set(staged.staging, sets, rows_per_shard=8)
        staged.commit()


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def c4_file(shared_data: Path, dest: Path, lines: int = 5) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(shared_data / "olmo-c4" / "c4-sample.01.json.gz", "rt") as f:
        head = [next(f) for _ in range(lines)]
    with gzip.open(dest, "wt") as f:
        f.writelines(head)
    return dest


# ----- item 1: never delete what a run did not write -------------------------------------------

def test_build_refuses_an_output_that_holds_its_input(shared_data, tmp_path, capsys):
    """The issue's repro: before, the input `domain=web/lang=en/part-00000.jsonl.gz` was deleted."""
    src = c4_file(shared_data, tmp_path / "domain=web" / "lang=en" / "part-00000.jsonl.gz")
    before = src.read_bytes()
    rc = main(["build", "--input", str(src), "--output", str(tmp_path), "--in-memory"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "holds the input" in err[0]
    assert src.read_bytes() == before and files_under(tmp_path) == {"domain=web/lang=en/part-00000.jsonl.gz"}


def test_build_refuses_foreign_files_and_leaves_them(shared_data, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "domain=web" / "lang=en").mkdir(parents=True)
    (out / "domain=web" / "lang=en" / "part-00003.arrow").write_bytes(b"the user's own file")
    (out / "notes.txt").write_text("mine")
    rc = main(["build", "--input", str(c4_file(shared_data, tmp_path / "in.jsonl.gz")), "--output", str(out),
               "--in-memory"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "holds 2 file(s) replaymill did not write" in err[0]
    assert files_under(out) == {"domain=web/lang=en/part-00003.arrow", "notes.txt"}  # not even a lock file


def test_sample_refuses_an_output_inside_its_shards(tmp_path, make_shard_set, capsys):
    shards = tmp_path / "set"
    publish(shards, make_shard_set, {"web": docs("w", 10)})
    rc = main(["sample", "--shards", str(shards), "--target", "pile", "--docs", "5", "--on-short", "renormalize",
               "--output", str(shards / "replay"), "--in-memory"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "lies inside the input" in err[0]
    assert not (shards / "replay").exists()


def test_an_unsealed_staging_dir_without_owner_marker_is_foreign(tmp_path):
    (tmp_path / STAGING_NAME).mkdir()
    (tmp_path / STAGING_NAME / "x.arrow").write_bytes(b"x")
    with pytest.raises(OutputRefused, match="without replaymill's _owner.json"):
        StagedOutput(str(tmp_path), MANIFEST_NAME).__enter__()
    assert (tmp_path / STAGING_NAME / "x.arrow").exists()


def test_a_finished_set_is_refused_without_overwrite(tmp_path, make_shard_set):
    publish(tmp_path / "out", make_shard_set, {"web": docs("w", 10)})
    with pytest.raises(OutputExistsError, match="--overwrite"):
        publish(tmp_path / "out", make_shard_set, {"web": docs("v", 10)})


# ----- item 3: --overwrite replaces atomically -------------------------------------------------

def test_overwrite_keeps_the_old_set_whole_until_the_new_one_is_sealed(tmp_path, make_shard_set):
    out = tmp_path / "out"
    publish(out, make_shard_set, {"web": docs("old", 20), "code": docs("oldc", 5)})
    old = files_under(out)
    with pytest.raises(RuntimeError, match="crash"):
        with StagedOutput(str(out), MANIFEST_NAME, overwrite=True) as staged:
            make_shard_set(staged.staging, {"web": docs("new", 30)}, rows_per_shard=8)
            Path(staged.staging, MANIFEST_NAME).unlink()  # shards written, not yet sealed
            # mid-run, the old set is still the finished set: readable and verified
            assert ShardSet.open(str(out)).manifest.total.docs == 25
            raise RuntimeError("crash")
    assert files_under(out) == old  # the failed run's staging is gone, the old set untouched
    assert sum(len(ShardSet.open(str(out)).read_table(s)) for s in ShardSet.open(str(out)).shards) == 25

    publish(out, make_shard_set, {"web": docs("new", 30)}, overwrite=True)
    new = ShardSet.open(str(out))
    assert new.manifest.total.docs == 30 and set(new.domains()) == {"web"}
    assert files_under(out) == {MANIFEST_NAME, LOCK_NAME, *(s.path for s in new.shards)}  # old code shards gone


class Crash(Exception):
    pass


@pytest.mark.parametrize("crash_after", range(13))  # a whole swap here is 12 file renames and removals
def test_a_swap_cut_at_any_file_operation_is_completed_by_the_next_run(tmp_path, make_shard_set, monkeypatch,
                                                                       crash_after):
    """Kill the swap after N renames/removals of single files (inside Beam's batch calls too); the
    next run into the directory finishes it."""
    out = tmp_path / "out"
    publish(out, make_shard_set, {"web": docs("old", 20), "code": docs("oldc", 9)})
    calls = {"n": 0}

    def counted(real):
        def op(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] > crash_after:
                raise Crash()
            return real(*args, **kwargs)
        return op

    staged = StagedOutput(str(out), MANIFEST_NAME, overwrite=True).__enter__()
    make_shard_set(staged.staging, {"web": docs("new", 30), "books": docs("newb", 3)}, rows_per_shard=8)
    monkeypatch.setattr(os, "rename", counted(os.rename))
    monkeypatch.setattr(os, "remove", counted(os.remove))
    try:
        staged.commit()
        finished = True
    except Exception as e:  # Beam wraps a failed rename or delete in BeamIOError
        assert "Crash" in repr(e) or isinstance(e, Crash)
        finished = False
    finally:
        staged._lock.release()  # what the kernel does when the process dies
    monkeypatch.undo()
    assert finished == (crash_after >= 12)
    if not finished:
        with StagedOutput(str(out), MANIFEST_NAME, overwrite=True):  # the next run into OUT
            pass
    assert not (out / STAGING_NAME).exists()
    new = ShardSet.open(str(out))
    assert new.manifest.total.docs == 33
    for s in new.shards:
        new.read_table(s)  # verified against the manifest's sha256
    assert files_under(out) == {MANIFEST_NAME, LOCK_NAME, *(s.path for s in new.shards)}
    assert not (out / "domain=code").exists()  # the old set's partition folder went with its files


# ----- item 10: one run at a time; a crashed run's leftovers go -----------------------------------

def test_a_second_run_into_a_locked_output_is_refused(shared_data, tmp_path, capsys):
    out = tmp_path / "out"
    src = str(c4_file(shared_data, tmp_path / "in.jsonl.gz"))
    with StagedOutput(str(out), MANIFEST_NAME):  # a first run holds the output
        rc = main(["build", "--input", src, "--output", str(out), "--in-memory"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "another replaymill run is writing to" in err[0]
    assert main(["build", "--input", src, "--output", str(out), "--in-memory"]) == 0  # released: it runs


def test_a_crashed_runs_staging_and_beam_temp_are_removed_by_the_rerun(shared_data, tmp_path):
    """Before, `_rejects/beam-temp-*` of a killed run survived the rerun."""
    out = tmp_path / "out"
    temp = out / STAGING_NAME / "_rejects" / "beam-temp-rejects-0123abcd"
    temp.mkdir(parents=True)
    (temp / "shard-of-a-killed-run").write_bytes(b"x")
    (out / STAGING_NAME / OWNER_NAME).write_text(json.dumps({"seal": MANIFEST_NAME}))
    c4_file(shared_data, tmp_path / "in.jsonl.gz")
    assert main(["build", "--input", str(tmp_path / "in.jsonl.gz"), "--output", str(out), "--in-memory",
                 "--write-rejects"]) == 0
    assert not (out / STAGING_NAME).exists() and not list(out.rglob("beam-temp-*"))
    manifest = ShardSet.open(str(out)).manifest
    assert files_under(out) == {MANIFEST_NAME, LOCK_NAME, *(s.path for s in manifest.shards),
                                *manifest.extra.get("rejects_files", [])}
