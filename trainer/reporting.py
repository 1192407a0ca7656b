"""Where a run's records go: `log.jsonl` always (plot and resume read it), tensorboard and wandb on request.

Each record is a dict with `kind` ("train", "eval" or "schedule") and `step`; the trackers get
every numeric field as a scalar named `kind/field` at that step. wandb runs offline unless the
user sets WANDB_MODE, so nothing leaves the machine by default.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from replaymill.trainer.config import TrainConfig
from replaymill.trainer.errors import TrainError
from replaymill.trainer.run_dir import LOG_NAME

TENSORBOARD_DIR = "tensorboard"


def check_trackers(report_to: list[str]) -> None:
    """Refuse before the run starts when a requested tracker is not installed."""
    if "tensorboard" in report_to:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise TrainError("--report-to tensorboard needs the tensorboard package: pip install tensorboard") from None
    if "wandb" in report_to:
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise TrainError("--report-to wandb needs the wandb package: pip install wandb") from None


class RunLog:
    """Rank 0 writes; on other ranks every method does nothing."""

    def __init__(self, out: str | Path, cfg: TrainConfig, enabled: bool):
        self.out, self.cfg, self.enabled = Path(out), cfg, enabled
        self._file = None
        self._tb = None
        self._wandb = None

    def open(self) -> None:
        if not self.enabled:
            return
        self._file = open(self.out / LOG_NAME, "a", encoding="utf-8")
        if "tensorboard" in self.cfg.report_to:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(self.out / TENSORBOARD_DIR))
        if "wandb" in self.cfg.report_to:
            import wandb

            run_id = hashlib.sha1(str(self.out.resolve()).encode()).hexdigest()[:12]  # the same run on resume
            self._wandb = wandb.init(project=os.environ.get("WANDB_PROJECT", "replaymill"), name=self.out.name,
                                     id=run_id, resume="allow", dir=str(self.out),
                                     mode=os.environ.get("WANDB_MODE", "offline"),
                                     config=self.cfg.model_dump(mode="json"))

    def write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        scalars = {f"{record['kind']}/{k}": float(v) for k, v in record.items()
                   if k not in ("kind", "step") and isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self._tb is not None:
            for name, value in scalars.items():
                self._tb.add_scalar(name, value, record["step"])
        if self._wandb is not None:
            self._wandb.log(scalars, step=record["step"])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None
