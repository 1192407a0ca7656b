"""`ReplayCollator`: `ReplayDataset` rows -> the batch dict HF Trainer, Accelerate and Lightning expect.

It refuses a batch that is not exactly one of the dataset's micro-batches (a loader batch size
other than the dataset's would mix rows of two micro-batches and the replay share per batch
would no longer be exact), and it counts what it collated so any framework can log the share.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from replaymill.trainer.dataset import ReplayRow
from replaymill.trainer.errors import TrainError


@dataclass
class ReplayStats:
    """Tokens and replay tokens over every batch collated in this process."""

    batches: int = 0
    tokens: int = 0
    replay_tokens: int = 0
    min_replay: int | None = None
    max_replay: int | None = None

    def add(self, replay: int, tokens: int) -> None:
        self.batches += 1
        self.tokens += tokens
        self.replay_tokens += replay
        self.min_replay = replay if self.min_replay is None else min(self.min_replay, replay)
        self.max_replay = replay if self.max_replay is None else max(self.max_replay, replay)

    @property
    def share(self) -> float:
        return self.replay_tokens / self.tokens if self.tokens else 0.0


class ReplayCollator:
    """Stack one micro-batch of rows: `input_ids` and `labels` (the same ids; HF models shift them),
    plus `replay_mask` `[B, L]` when asked for (custom losses; HF Trainer would pass it to the model)."""

    def __init__(self, *, replay_mask: bool = False, labels: bool = True):
        self.replay_mask, self.labels = replay_mask, labels
        self.stats = ReplayStats()

    def __call__(self, rows: list[ReplayRow]) -> dict[str, torch.Tensor]:
        if not rows or not all(isinstance(r, ReplayRow) for r in rows):
            raise TrainError("ReplayCollator collates ReplayDataset rows only")
        size, batch = rows[0].size, rows[0].batch
        if len(rows) != size or any(r.row != i or r.batch != batch for i, r in enumerate(rows)):
            raise TrainError(f"a loader batch of {len(rows)} rows is not one whole micro-batch of the dataset "
                             f"({size} rows): set the loader's batch size to the dataset's batch_size ({size})")
        ids = torch.stack([r.input_ids for r in rows])
        mask = torch.stack([r.replay_mask for r in rows])
        self.stats.add(int(mask.sum()), mask.numel())
        out = {"input_ids": ids}
        if self.labels:
            out["labels"] = ids
        if self.replay_mask:
            out["replay_mask"] = mask
        return out
