"""`make demo` stays runnable: every command it runs parses with today's flags, and its task text
is real prose that `train` splits into many documents."""
from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from replaymill.pipeline.cli import make_parser
from replaymill.pipeline.demo_corpus import write_demo_task
from replaymill.trainer.sources import _text_documents

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_every_demo_command_parses(tmp_path):
    out = subprocess.run(["make", "-n", "demo", f"BIN={tmp_path}/bin", f"DEMO={tmp_path}/demo"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.replace("\\\n", " ")
    commands = [shlex.split(line) for line in out.splitlines() if f"{tmp_path}/bin/replaymill " in line]
    assert [c[1] for c in commands] == ["build", "sample", "train", "audit"]  # the whole loop, in order
    for argv in commands:
        make_parser().parse_args(argv[1:])  # argparse exits (fails the test) on a flag that no longer exists
    assert "demo outputs:" in out and f"{tmp_path}/demo/audit.html" in out


def test_demo_task_is_real_prose_in_many_documents(tmp_path):
    path = write_demo_task(tmp_path / "task.txt")
    docs = list(_text_documents(Path(path)))
    assert len(docs) > 50 and sum(map(len, docs)) > 200_000
    assert any(d.startswith('The "for" statement') for d in docs)  # Python's reference text itself
