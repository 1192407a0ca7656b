"""Wiring the configured task and replay data into one mixer per (rank, DataLoader worker).

Task data: text/JSONL files or an HF dataset (in memory, this reader's part) or a shard set
(streamed). Replay: a verified shard set read directly, or, with `replay_target`, the exact
mixture drawn by `shards.sampler.ReplaySampler`. Held-out documents (by id hash) are removed
from the training streams so the evaluation measures unseen text.
"""
from __future__ import annotations

from typing import Any, Callable

from replaymill.trainer.config import TrainConfig
from replaymill.trainer.mixer import ReplayMixer
from replaymill.trainer.packing import TokenStream
from replaymill.trainer.sources import ListSource, ShardSetSource, is_shard_set, is_held_out, load_documents
from replaymill.trainer.tokenizer import Tokenizer


class SamplerSource:
    """ReplaySampler documents as a DocSource; its own state dict is the position."""

    def __init__(self, sampler, held_out: float):
        self.sampler = sampler
        self.held_out = held_out
        self._it = iter(sampler)

    def __next__(self) -> tuple[str, str]:
        while True:
            doc = next(self._it)
            if doc.get("text") and not is_held_out(doc["id"], self.held_out):
                return doc["id"], doc["text"]

    def state_dict(self) -> dict[str, Any]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)
        self._it = iter(self.sampler)


def make_mixer_factory(cfg: TrainConfig, tokenizer: Tokenizer, rank: int, world_size: int) -> Callable[[int, int], ReplayMixer]:
    """`factory(worker, num_workers)` -> this reader's mixer (called inside each DataLoader worker)."""
    held_out_task = 0.0 if cfg.task_eval else cfg.eval_fraction
    held_out_replay = 0.0 if cfg.replay_eval else cfg.eval_fraction
    target, by = None, "tokens"
    if cfg.replay_target:
        from replaymill.schemas.mixtures import resolve_target

        target, preferred_by, _ = resolve_target(cfg.replay_target)
        by = preferred_by or by

    def factory(worker: int, num_workers: int) -> ReplayMixer:
        from replaymill.shards.reader import ShardSet

        reader = (rank, world_size, worker, num_workers)
        index, count = rank * num_workers + worker, world_size * num_workers
        if is_shard_set(cfg.task):
            task_src = ShardSetSource(ShardSet.open(cfg.task), seed=cfg.seed, reader=reader, held_out=held_out_task)
        else:
            docs = load_documents(cfg.task, reader=index, readers=count, held_out=held_out_task, keep="train")
            task_src = ListSource(docs, seed=cfg.seed, label=cfg.task)
        replay = None
        if cfg.replay and cfg.replay_ratio > 0:
            shardset = ShardSet.open(cfg.replay)
            if target is not None:
                from replaymill.shards.sampler import ReplaySampler

                # endless: a domain that runs out starts a new seeded epoch instead of ending replay
                sampler = ReplaySampler(shardset, target, by=by, seed=cfg.seed, on_short="upsample", rank=index,
                                        world_size=count, columns=["id", "text"])
                replay_src = SamplerSource(sampler, held_out_replay)
            else:
                replay_src = ShardSetSource(shardset, seed=cfg.seed + 1, reader=reader, held_out=held_out_replay)
            replay = TokenStream(replay_src, tokenizer)
        return ReplayMixer(TokenStream(task_src, tokenizer), replay, cfg.replay_ratio, cfg.batch_size, cfg.seq_len)

    return factory
