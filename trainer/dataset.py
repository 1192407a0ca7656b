"""`ReplayDataset`: replaymill's exact replay mixing as a plain PyTorch `IterableDataset`.

For training loops other than `replaymill train` (HF `Trainer`, Accelerate, Lightning, your own):
it yields packed rows of `seq_len` tokens, `batch_size` rows per micro-batch, and every run of
`batch_size` consecutive rows holds exactly R = round(replay_ratio * batch_size * seq_len) replay
tokens, as the trainer's own batches do. Load it with `batch_size=dataset.batch_size` and
`ReplayCollator` (which checks that each batch is one whole micro-batch).

    ds = replaymill.ReplayDataset("task.jsonl", "out/replay", tokenizer=tok, replay_ratio=0.05,
                                  seq_len=1024, batch_size=8)
    loader = DataLoader(ds, batch_size=ds.batch_size, collate_fn=replaymill.ReplayCollator())

Readers: DataLoader workers and DDP ranks each read their own documents (the rank comes from
`torch.distributed` when it is initialised, or from `rank`/`world_size`). Resume: `state_dict()`
is the position after the last whole micro-batch this copy of the dataset yielded (JSON-able);
`load_state_dict()` before iterating continues there. A position belongs to one reader layout.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
from torch.utils.data import IterableDataset, get_worker_info

from replaymill.trainer.data import DataSpec, make_mixer_factory, replay_plan
from replaymill.trainer.errors import TrainError
from replaymill.trainer.evaluate import build_eval_sets
from replaymill.trainer.mixer import replay_tokens_per_batch
from replaymill.trainer.tokenizer import as_tokenizer

STATE_FORMAT = "replaymill.ReplayDataset/1"


class ReplayRow(NamedTuple):
    """One packed sequence and where it sits: row `row` of micro-batch `batch`, which has `size` rows.

    A tuple, not a dict, so HF Trainer's column filter passes it through to `ReplayCollator` intact.
    """

    input_ids: torch.Tensor    # [seq_len] int64
    replay_mask: torch.Tensor  # [seq_len] bool: True where the token came from replay
    batch: int
    row: int
    size: int


class ReplayDataset(IterableDataset):
    """Endless packed, replay-mixed rows (see the module docstring)."""

    def __init__(self, task: str, replay: str | None = None, *, tokenizer: Any = "bytes", replay_ratio: float = 0.0,
                 seq_len: int = 512, batch_size: int = 8, replay_target: str | None = None,
                 replay_on_short: str = "upsample", seed: int = 0, eval_fraction: float = 0.0,
                 eval_tokens: int = 65536, rank: int | None = None, world_size: int | None = None):
        if not 0.0 <= replay_ratio <= 1.0:
            raise TrainError(f"replay_ratio must be within [0, 1], got {replay_ratio}")
        if replay_ratio > 0 and not replay:
            raise TrainError("replay_ratio > 0 needs a replay shard set")
        if seq_len < 2 or batch_size < 1:
            raise TrainError(f"seq_len must be >= 2 and batch_size >= 1, got {seq_len} and {batch_size}")
        if replay_on_short not in ("upsample", "renormalize", "error"):
            raise TrainError(f"replay_on_short must be upsample, renormalize or error, got {replay_on_short!r}")
        self.spec = DataSpec(task=str(task), replay=str(replay) if replay else None, replay_target=replay_target,
                             replay_on_short=replay_on_short, replay_ratio=replay_ratio, eval_fraction=eval_fraction,
                             eval_tokens=eval_tokens, seq_len=seq_len, batch_size=batch_size, seed=seed)
        self.tokenizer = as_tokenizer(tokenizer)
        self.plan = replay_plan(self.spec)
        self.replay_tokens = replay_tokens_per_batch(replay_ratio, batch_size, seq_len)
        self.rank, self.world_size = rank, world_size
        self._start: dict[str, Any] | None = None
        self._position: dict[str, Any] | None = None

    @property
    def batch_size(self) -> int:
        return self.spec.batch_size

    @property
    def seq_len(self) -> int:
        return self.spec.seq_len

    def _reader(self) -> tuple[int, int, int, int]:
        """(rank, world_size, worker, num_workers) of the process iterating now."""
        rank, world = self.rank, self.world_size
        if rank is None or world is None:
            dist = torch.distributed
            ready = dist.is_available() and dist.is_initialized()
            rank = dist.get_rank() if ready else 0
            world = dist.get_world_size() if ready else 1
        info = get_worker_info()
        return rank, world, info.id if info else 0, info.num_workers if info else 1

    def __iter__(self) -> Iterator[ReplayRow]:
        rank, world, worker, workers = reader = self._reader()
        mixer = make_mixer_factory(self.spec, self.tokenizer, rank, world, self.plan)(worker, workers)
        batch = 0
        if self._start is not None:
            if tuple(self._start["reader"]) != reader:
                raise TrainError(f"dataset state was saved by reader {self._start['reader']} (rank, world, worker, "
                                 f"workers), this one is {list(reader)}")
            mixer.load_state_dict(self._start["mixer"])
            batch = int(self._start["batches"])
        size = self.batch_size
        while True:
            ids, mask = mixer.next_batch()
            ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
            for row in range(size):
                if row == size - 1:  # set before the last row goes out: once it is consumed, this is the position
                    self._position = {"format": STATE_FORMAT, "reader": list(reader), "batches": batch + 1,
                                      "mixer": mixer.state_dict()}
                yield ReplayRow(ids_t[row], mask_t[row], batch, row, size)
            batch += 1

    def state_dict(self) -> dict[str, Any]:
        """The position after the last whole micro-batch yielded (or the loaded one, before iterating)."""
        state = self._position or self._start
        if state is None:
            return {"format": STATE_FORMAT, "reader": list(self._reader()), "batches": 0, "mixer": None}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != STATE_FORMAT:
            raise TrainError(f"not a ReplayDataset state (format {state.get('format')!r})")
        self._start = state if state.get("mixer") is not None else None
        self._position = None

    def held_out(self) -> dict[str, torch.Tensor]:
        """Packed held-out rows `{"task": [n, seq_len], "replay": [m, seq_len]}` (documents whose id hash
        falls below `eval_fraction`, never yielded for training), for measuring learning and forgetting."""
        if self.spec.eval_fraction <= 0:
            raise TrainError("held_out() needs eval_fraction > 0 when the dataset is made")
        return {name: torch.from_numpy(rows) for name, rows in build_eval_sets(self.spec, self.tokenizer).items()}
