"""The run directory: what may be started or resumed in it, and leaving no trace of a failed start.

A directory is free (absent or empty), a previous run (config.yaml, log.jsonl or checkpoints/),
or something else, which the trainer never writes into. A run that fails before its first
optimizer step removes what it wrote, so the retry is not refused as "a previous run".
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from replaymill.trainer.checkpoint import CHECKPOINT_DIR, latest_checkpoint
from replaymill.trainer.config import RESUME_INVARIANT_KEYS, SCHEDULE_KEYS, TrainConfig
from replaymill.trainer.errors import OutputExistsError, TrainError

LOG_NAME = "log.jsonl"
CONFIG_NAME = "config.yaml"
RUN_MARKERS = (CONFIG_NAME, LOG_NAME, CHECKPOINT_DIR)


@dataclass
class ResumePoint:
    """The checkpoint a run continues from, its state.json, and which schedule keys changed ({key: (old, new)})."""

    checkpoint: Path
    step: int
    state: dict
    schedule_changes: dict[str, tuple] = field(default_factory=dict)


class RunDir:
    def __init__(self, path: str | Path, is_main: bool = True):
        self.path = Path(path)
        self.is_main = is_main
        self._was_free = self._existed = False
        self._started = False

    @property
    def log_path(self) -> Path:
        return self.path / LOG_NAME

    def check(self, cfg: TrainConfig) -> ResumePoint | None:
        """Before any work: where to resume from, or a one-line OutputExistsError / TrainError."""
        path = self.path
        if path.exists() and not path.is_dir():
            raise OutputExistsError(f"--output {path} is a file, not a directory")
        entries = list(path.iterdir()) if path.is_dir() else []
        is_run = any((path / name).exists() for name in RUN_MARKERS)
        if entries and not is_run:
            raise OutputExistsError(f"--output {path} holds other files and is not a replaymill run; choose a new --output")
        if is_run and not cfg.resume:
            raise OutputExistsError(f"{path} holds a previous run; pass --resume to continue it or choose a new --output")
        ckpt = latest_checkpoint(path) if cfg.resume else None
        if ckpt is None:
            return None
        state = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
        saved, now = state["config"], cfg.model_dump(mode="json")
        changed = [f"{k} {saved.get(k)!r} -> {now.get(k)!r}" for k in RESUME_INVARIANT_KEYS if saved.get(k) != now.get(k)]
        if changed:
            raise TrainError(f"cannot resume {ckpt}: config changed in {', '.join(changed)}; the data sequence "
                             "would differ (start a new --output instead)")
        step = int(state["step"])
        if cfg.steps <= step:
            raise TrainError(f"{path} is at step {step} already; pass --steps N with N > {step} to extend it")
        schedule = {k: (saved.get(k), now[k]) for k in SCHEDULE_KEYS if saved.get(k) != now[k]}
        return ResumePoint(ckpt, step, state, schedule)

    def start(self, cfg: TrainConfig, resume: ResumePoint | None) -> None:
        """Create the directory and write the config (rank 0); a resumed log loses the redone tail."""
        if not self.is_main:
            return
        self._existed = self.path.exists()
        self._was_free = not self._existed or not any(self.path.iterdir())
        self.path.mkdir(parents=True, exist_ok=True)
        cfg.to_yaml(self.path / CONFIG_NAME)
        truncate_log(self.log_path, resume.step if resume else -1)

    def mark_started(self) -> None:
        """The first optimizer step is done: from now on a failure leaves the run for --resume."""
        self._started = True

    def abandon(self) -> None:
        """After a failed start: remove what this run wrote if the directory was free before it."""
        if not self.is_main or self._started or not self._was_free or not self.path.exists():
            return
        if not self._existed:
            shutil.rmtree(self.path)
            return
        for entry in self.path.iterdir():  # the directory was empty before: all of this is ours
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def truncate_log(path: Path, step: int) -> None:
    """Keep log lines up to `step` (-1: none): the steps after a checkpoint are redone on resume."""
    if not path.exists():
        return
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    path.write_text("".join(ln + "\n" for ln in lines if json.loads(ln)["step"] <= step), encoding="utf-8")
