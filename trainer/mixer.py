"""Compute-equivalent replay: exactly round(r * B * L) tokens of every micro-batch come from replay.

Ibrahim et al. (2024) compare replay at equal compute: a fraction r of each batch's tokens is
replay, the rest task data, so a run with replay sees fewer task tokens but the same total. Here a
micro-batch of B sequences of L tokens takes R = floor(r*B*L + 0.5) replay tokens (round half
up): R // L whole replay sequences, then one sequence whose first R % L tokens are replay and the
rest task tokens, then task sequences. So every micro-batch (and every optimizer step, which is
`grad_accum` micro-batches per rank) holds exactly R replay tokens, whatever r, B and L are; the
effective ratio is R / (B*L) (e.g. r=0.01, B=16, L=128 gives 20/2048 = 0.977%).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from replaymill.trainer.packing import TokenStream


def replay_tokens_per_batch(ratio: float, batch_size: int, seq_len: int) -> int:
    """R = round half up of ratio * batch_size * seq_len: the exact replay share of every micro-batch."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"replay ratio {ratio} outside [0, 1]")
    return int(math.floor(ratio * batch_size * seq_len + 0.5))


class ReplayMixer:
    """Builds micro-batches `[B, L]` from a task stream and an optional replay stream, R replay tokens each."""

    def __init__(self, task: TokenStream, replay: TokenStream | None, ratio: float, batch_size: int, seq_len: int):
        self.task, self.replay = task, replay
        self.batch_size, self.seq_len = batch_size, seq_len
        self.replay_tokens = replay_tokens_per_batch(ratio, batch_size, seq_len)
        if self.replay_tokens and replay is None:
            raise ValueError("a replay ratio > 0 needs a replay stream")

    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids `[B, L]` int64, replay_mask `[B, L]` bool) with exactly `replay_tokens` True."""
        n = self.batch_size * self.seq_len
        r = self.replay_tokens
        flat = np.empty(n, dtype=np.int64)
        if r:
            flat[:r] = self.replay.take(r)
        flat[r:] = self.task.take(n - r)
        mask = np.zeros(n, dtype=bool)
        mask[:r] = True
        return flat.reshape(self.batch_size, self.seq_len), mask.reshape(self.batch_size, self.seq_len)

    def state_dict(self) -> dict[str, Any]:
        return {"task": self.task.state_dict(), "replay": self.replay.state_dict() if self.replay else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.task.load_state_dict(state["task"])
        if self.replay is not None:
            self.replay.load_state_dict(state["replay"])


class MixedBatches(IterableDataset):
    """Endless mixed micro-batches for a DataLoader (batch_size=None), worker-aware and resumable.

    Worker w of W builds its own mixer over its own documents (`make_mixer(worker, W)`) and yields
    micro-batches w, w+W, ...; the DataLoader returns them round-robin, so the sequence is
    deterministic. Each batch carries its worker's mixer state *after* it, so the training loop can
    checkpoint the exact position of every worker without talking to them.
    """

    def __init__(self, make_mixer: Callable[[int, int], ReplayMixer], num_workers: int,
                 states: list[dict[str, Any] | None] | None = None):
        self.make_mixer = make_mixer
        self.num_workers = max(1, num_workers)
        self.states = states or [None] * self.num_workers
        if len(self.states) != self.num_workers:
            raise ValueError(f"checkpoint has data states for {len(self.states)} workers, run has {self.num_workers}")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker = info.id if info else 0
        if info and info.num_workers != self.num_workers:
            raise ValueError(f"DataLoader has {info.num_workers} workers, dataset expects {self.num_workers}")
        mixer = self.make_mixer(worker, self.num_workers)
        if self.states[worker] is not None:
            mixer.load_state_dict(self.states[worker])
        while True:
            ids, mask = mixer.next_batch()
            yield {"input_ids": torch.from_numpy(ids), "replay_mask": torch.from_numpy(mask),
                   "worker": worker, "state": mixer.state_dict()}
