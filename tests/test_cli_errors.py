"""Every bad input or unlucky machine state the commands meet is one line on stderr and exit 2,
never a traceback (issue 10.9), checked before anything is read or deleted; a failed audit gate
is its own status (3). Before, each case below was a traceback (38-134 lines, exit 1), a run that
"succeeded" doing the wrong thing (exit 0), or a 5-minute hang."""
from __future__ import annotations

import errno
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from replaymill.pipeline.cli import main
from replaymill.pipeline.cli.errors import GATE_FAILED, failure_line


@pytest.fixture(scope="module")
def files(tmp_path_factory, shared_data, make_shard_set, real_docs_by_domain) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli-errors")
    src = shared_data / "olmo-c4" / "c4-sample.01.json.gz"
    texts = {
        "bad_syntax.yaml": "name: x\nquality: {min_chars: [1,\n",
        "pytag.yaml": "name: !!python/object/apply:os.system ['echo pwned']\n",
        "neg_min.yaml": "quality: {min_chars: -5}\n",
        "neg_max.yaml": "quality: {max_chars: -5}\n",
        "min_over_max.yaml": "quality: {min_chars: 500, max_chars: 100}\n",
        "model.yaml": f"langid: {{model_path: {root / 'no-such-lid.bin'}}}\n",
        "w_syntax.yaml": "weights: {web: 0.5, news: [\n",
        "w_pytag.yaml": "weights: !!python/object/apply:os.system ['echo pwned']\n",
        "w_nan.yaml": "weights: {web: .nan, news: 0.5}\n",
        "w_inf.yaml": "weights: {web: .inf, news: 0.5}\n",
        "w_ok.yaml": "weights: {web: 0.5, news: 0.5}\n",
    }
    for name, text in texts.items():
        (root / name).write_text(text, encoding="utf-8")
    (root / "nonutf8.yaml").write_bytes(b"name: \xff\xfe caf\xe9\n")
    paths = {name: root / name for name in [*texts, "nonutf8.yaml"]}
    docs = {k: v[:40] for k, v in real_docs_by_domain.items() if k in ("web", "news")}
    paths["set"] = Path(make_shard_set(root / "set", docs, rows_per_shard=16))
    paths["input"] = src
    paths["root"] = root
    return paths


def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "\n" not in err, err
    assert err.startswith(f"replaymill {command}: error: "), err
    return err


BUILD_CASES = [
    (["--recipe", "bad_syntax.yaml"], "not valid YAML at line 3"),
    (["--recipe", "nonutf8.yaml"], "not UTF-8 text"),
    (["--recipe", "pytag.yaml"], "unsupported YAML tag"),
    (["--recipe", "neg_min.yaml"], "quality.min_chars"),
    (["--recipe", "neg_max.yaml"], "quality.max_chars"),
    (["--recipe", "min_over_max.yaml"], "below min_chars"),
    (["--recipe", "model.yaml"], "langid.model_path"),
    (["--workers", "-1"], "(--workers) must be 0"),
    (["--max-shard-mb", "0"], "(--max-shard-mb) must be positive"),
    (["--max-shard-mb", "-3"], "(--max-shard-mb) must be positive"),
    (["--langs", ","], "names no language"),
]


@pytest.mark.parametrize("flags, message", BUILD_CASES, ids=[" ".join(c[0]) for c in BUILD_CASES])
def test_build_refuses_in_one_line_before_touching_the_output(files, tmp_path, capsys, flags, message):
    flags = [str(files[f]) if f in files else f for f in flags]
    out = tmp_path / "out"
    out.mkdir()
    leftover = out / "domain=web" / "lang=en" / "part-00000.arrow"  # an earlier crashed run's shard
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"partial")
    assert main(["build", "-i", str(files["input"]), "-o", str(out), "--in-memory", *flags]) == 2
    assert message in one_line_error(capsys, "build")
    assert leftover.exists()  # pre-flight: nothing read, nothing deleted


SAMPLE_CASES = [
    (["--target", "w_syntax.yaml"], "not valid YAML"),
    (["--target", "w_pytag.yaml"], "unsupported YAML tag"),
    (["--target", "w_nan.yaml"], "weight of 'web' is nan"),
    (["--target", "w_inf.yaml"], "weight of 'web' is inf"),
    (["--target", "w_ok.yaml", "--workers", "-1"], "(--workers) must be 0"),
]


@pytest.mark.parametrize("flags, message", SAMPLE_CASES, ids=[" ".join(c[0]) for c in SAMPLE_CASES])
def test_sample_refuses_in_one_line(files, tmp_path, capsys, flags, message):
    flags = [str(files[f]) if f in files else f for f in flags]
    rc = main(["sample", "--shards", str(files["set"]), "--docs", "5", "-o", str(tmp_path / "o"), "--in-memory", *flags])
    assert rc == 2
    assert message in one_line_error(capsys, "sample")


@pytest.mark.parametrize("flags, message", [
    (["--part-mb", "0"], "(--part-mb) must be positive"),
    (["--part-mb", "-1"], "(--part-mb) must be positive"),
    (["--parts", "1000000000"], "more parts than"),
    (["--part-mb", "0.00001"], "more parts than"),
])
def test_reshard_refuses_senseless_part_counts(files, tmp_path, capsys, flags, message):
    """Before: `--part-mb 0` a 15-line traceback; `--parts 1000000000` ran until killed, filling the
    output with empty temp parts."""
    out = tmp_path / "o"
    assert main(["reshard", "-i", str(files["input"]), "-o", str(out), "--in-memory", *flags]) == 2
    assert message in one_line_error(capsys, "reshard")
    assert not out.exists() or not any(out.iterdir())


def test_deleted_shard_is_one_line_naming_it(files, tmp_path, capsys):
    damaged = tmp_path / "set"
    shutil.copytree(files["set"], damaged)
    manifest = json.loads((damaged / "_manifest.json").read_text())
    gone = manifest["shards"][0]["path"]
    (damaged / gone).unlink()
    assert main(["audit", str(damaged), "-q"]) == 2
    assert f"{gone}: missing from {damaged}" in one_line_error(capsys, "audit")
    rc = main(["sample", "--shards", str(damaged), "--target", str(files["w_ok.yaml"]), "--docs", "5",
               "--on-short", "upsample", "-o", str(tmp_path / "o"), "--in-memory"])
    assert rc == 2 and gone in one_line_error(capsys, "sample")


def test_audit_of_shards_without_manifest_says_so(files, tmp_path, capsys):
    """Before: audited silently as a raw corpus (exit 0)."""
    unfinished = tmp_path / "set"
    shutil.copytree(files["set"], unfinished)
    (unfinished / "_manifest.json").unlink()
    assert main(["audit", str(unfinished), "-q"]) == 2
    assert "no _manifest.json" in one_line_error(capsys, "audit")


@pytest.mark.parametrize("weights", ["w_nan.yaml", "w_syntax.yaml"])
def test_audit_target_errors(files, capsys, weights):
    assert main(["audit", str(files["set"]), "-q", "--target", str(files[weights])]) == 2
    one_line_error(capsys, "audit")


def test_audit_gate_failure_differs_from_every_error(files, capsys):
    assert main(["audit", str(files["set"]), "-q", "--fail-if", "min_docs=1000000"]) == GATE_FAILED == 3
    assert "gate failed: min_docs" in capsys.readouterr().err
    assert main(["audit", str(files["set"]), "-q", "--fail-if", "min_docs=1"]) == 0


class _FullDisk:
    """A file object whose writes fail as on a full disk (no path of its own, as the OS reports it)."""

    def __init__(self, *_):
        pass

    def write(self, _data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_full_disk_names_the_path(files, tmp_path, capsys, monkeypatch):
    """Before: a 134-line traceback ending in `OSError: [Errno 28] No space left on device`, no path."""
    from replaymill.shards.fs import BeamFileSystem

    monkeypatch.setattr(BeamFileSystem, "create", lambda self, path: _FullDisk())
    out = tmp_path / "out"
    assert main(["build", "-i", str(files["input"]), "-o", str(out), "--in-memory"]) == 2
    err = one_line_error(capsys, "build")
    assert f"no space left on device writing {out}/" in err and f"--output {out}:" in err


def test_full_disk_on_a_real_full_filesystem(files, tmp_path, capsys):
    """A real 64 kB tmpfs, when this machine lets us mount one (root, not in every CI)."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        (mnt / "filler").write_bytes(b"\0" * 60_000)  # leave about 4 kB: the probe fits, the shards do not
        (mnt / "o").mkdir()
        assert main(["build", "-i", str(files["input"]), "-o", str(mnt / "o"), "--in-memory"]) == 2
        err = one_line_error(capsys, "build")
        assert "no space left on device" in err and str(mnt / "o") in err
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_failure_line_reads_errors_beam_wrapped_as_text():
    """Multi-process workers' exceptions reach the driver as RuntimeError text."""
    wrapped = RuntimeError("Traceback ...\nOSError: [Errno 28] No space left on device: '/data/out/x.arrow.tmp-"
                           + "0" * 32 + "' [while running 'WriteShards/WriteShard']")
    assert failure_line(wrapped, {}) == "no space left on device writing /data/out/x.arrow"
    corrupt = RuntimeError("Traceback ...\nreplaymill.shards.io.CorruptShardError: a.arrow: sha256 12..., manifest "
                           "says 34... [while running 'ReadPicked']\n")
    assert failure_line(corrupt, {}) == "a.arrow: sha256 12..., manifest says 34..."
    assert failure_line(ValueError("a bug"), {}) is None
