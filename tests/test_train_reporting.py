"""Readable runs: per-step progress (live bar in a terminal, plain lines elsewhere), tensorboard and
wandb (offline) records, and a plot titled with the model and the replay share."""
from __future__ import annotations

import io
import sys
import types

import pytest
from rich.console import Console

from replaymill.schemas.document import new_document
from replaymill.trainer.config import TrainConfig
from replaymill.trainer.errors import TrainError
from replaymill.trainer.loop import train
from replaymill.trainer.progress import ProgressDisplay, format_duration

STEPS = 3


@pytest.fixture(scope="module")
def replay_set(tmp_path_factory, make_shard_set, shared_data) -> str:
    text = (shared_data / "prose" / "en-tinyshakespeare.txt").read_text(encoding="utf-8")
    docs = [new_document(f"en:{i}", p, "prose") for i, p in enumerate([p for p in text.split("\n\n") if p.strip()][:120])]
    return make_shard_set(tmp_path_factory.mktemp("replay"), {"books": docs}, rows_per_shard=40)


class FakeWandb(types.ModuleType):
    """Stands in for the wandb package: records init arguments and logged scalars."""

    def __init__(self):
        super().__init__("wandb")
        self.init_kwargs: dict = {}
        self.logged: list[tuple[dict, int]] = []
        self.finished = False

    def init(self, **kwargs):
        self.init_kwargs = kwargs
        return self

    def log(self, scalars, step):
        self.logged.append((scalars, step))

    def finish(self):
        self.finished = True


def test_a_run_reports_to_the_console_tensorboard_wandb_and_a_titled_plot(tmp_path, monkeypatch, capsys, shared_data,
                                                                         replay_set):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    out = tmp_path / "run"
    train(TrainConfig(model="tiny-llama", task=str(shared_data / "prose" / "de-verne-20000.txt"), replay=replay_set,
                      replay_ratio=0.25, seq_len=32, batch_size=2, steps=STEPS, warmup=1, eval_every=100,
                      eval_tokens=256, log_every=1, report_to=["tensorboard", "wandb"], output=str(out)))
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"[train] run directory {out.resolve()}")
    steps = [ln for ln in printed if ln.startswith("[train] step ") and "/3 " in ln]
    assert len(steps) == STEPS
    for ln in steps:  # loss, task and replay loss, lr, tokens/s, ETA
        assert " loss " in ln and "(task " in ln and "replay " in ln and " lr " in ln and "tok/s" in ln and "ETA" in ln

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]
    assert {"train/replay_loss", "train/lr", "train/tokens_per_s", "eval/eval_task_loss"} <= set(events.Tags()["scalars"])

    assert fake.init_kwargs["mode"] == "offline" and fake.init_kwargs["config"]["replay_ratio"] == 0.25
    assert [step for scalars, step in fake.logged if "train/loss" in scalars] == [1, 2, 3] and fake.finished

    from PIL import Image

    title = Image.open(out / "curves.png").text["Title"]
    assert title == "tiny-llama · replay 25% (16/64 tokens per micro-batch) from " + replay_set.rstrip("/").split("/")[-1]


def test_a_missing_tracker_is_refused_before_the_run_starts(tmp_path, monkeypatch, shared_data):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    with pytest.raises(TrainError, match="pip install wandb"):
        train(TrainConfig(model="tiny-llama", task=str(shared_data / "prose" / "de-verne-20000.txt"), steps=1,
                          report_to=["wandb"], output=str(tmp_path / "run")))
    assert not (tmp_path / "run").exists()


def test_terminal_gets_a_live_bar_with_the_step_figures():
    buf = io.StringIO()
    display = ProgressDisplay(10, log_every=5, console=Console(file=buf, force_terminal=True, width=200))
    display.start(step=0, tokens=0)
    for step in range(1, 11):
        display.update({"step": step, "loss": 2.5, "task_loss": 2.4, "replay_loss": 2.9, "lr": 1e-3,
                        "tokens": step * 4096})
    display.note("[train] step 10 eval task=2.4000")
    display.close()
    text = buf.getvalue()
    assert "10/10" in text and "loss 2.5000" in text and "replay 2.9000" in text and "tok/s" in text
    assert "[train] step 10 eval" in text
    assert format_duration(3725) == "1:02:05"
