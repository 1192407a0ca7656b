"""What a user watches while a run trains: loss, task and replay loss, LR, tokens/s and ETA per step.

In a terminal a live rich bar is updated every step; anywhere else (a log file, CI, a pipe) a
plain line is printed every `log_every` steps and at the last one, so logs stay readable.
Rates are measured over the last few steps, so the ETA follows the current speed.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def format_duration(seconds: float) -> str:
    seconds = int(round(max(0.0, seconds)))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


def step_summary(record: dict[str, Any], tokens_per_s: float, eta_s: float | None) -> str:
    """`loss 2.3456 (task 2.3012, replay 2.5531) lr 3.00e-04 12,345 tok/s ETA 0:01:23` for one step."""
    parts = [f"loss {record['loss']:.4f}"]
    if record.get("replay_loss") is not None:
        parts.append(f"(task {record['task_loss']:.4f}, replay {record['replay_loss']:.4f})")
    parts.append(f"lr {record['lr']:.2e}")
    parts.append(f"{tokens_per_s:,.0f} tok/s")
    if eta_s is not None:
        parts.append(f"ETA {format_duration(eta_s)}")
    return " ".join(parts)


class ProgressDisplay:
    """Rank 0's console during training; other ranks get a display that prints nothing."""

    def __init__(self, total_steps: int, log_every: int, *, enabled: bool = True,
                 console: Console | None = None, window: int = 20):
        self.total, self.log_every, self.enabled = total_steps, log_every, enabled
        self.console = console or Console()
        self.live = enabled and self.console.is_terminal
        self._samples: deque[tuple[float, int, int]] = deque(maxlen=window + 1)  # (time, step, tokens)
        self._bar: Progress | None = None
        self._task = None

    def start(self, step: int, tokens: int) -> None:
        """Begin timing at `step` (non-zero on resume) with `tokens` seen so far."""
        self._samples.append((time.perf_counter(), step, tokens))
        if self.live:
            self._bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.fields[stats]}"), console=self.console)
            self._task = self._bar.add_task("train", total=self.total, completed=step, stats="")
            self._bar.start()

    def rates(self) -> tuple[float, float | None]:
        """(tokens/s, seconds left) over the recent window of steps."""
        (t0, s0, n0), (t1, s1, n1) = self._samples[0], self._samples[-1]
        dt = max(t1 - t0, 1e-9)
        per_step = dt / (s1 - s0) if s1 > s0 else None
        return (n1 - n0) / dt, (self.total - s1) * per_step if per_step is not None else None

    def update(self, record: dict[str, Any]) -> None:
        self._samples.append((time.perf_counter(), record["step"], record["tokens"]))
        if not self.enabled:
            return
        tokens_per_s, eta = self.rates()
        stats = step_summary(record, tokens_per_s, eta)
        step = record["step"]
        if self._bar is not None:
            self._bar.update(self._task, completed=step, stats=stats)
        elif step % self.log_every == 0 or step == self.total:
            print(f"[train] step {step}/{self.total} {stats}", flush=True)

    def note(self, line: str) -> None:
        """A message line (evaluation, checkpoint), above the live bar or as a plain line."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
