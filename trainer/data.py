"""Wiring the configured task and replay data into one mixer per (rank, DataLoader worker).

Task data: text/JSONL files or an HF dataset (in memory, this reader's part) or a shard set
(streamed). Replay: a verified shard set read directly, or, with `replay_target`, the exact
mixture drawn by `shards.sampler.ReplaySampler`, endless: a domain that runs out repeats in a new
seeded epoch; `replay_on_short` decides what happens to domains the set does not have at all.
Held-out documents (by id hash) are removed from the training streams so the evaluation
measures unseen text.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from replaymill.trainer.config import TrainConfig
from replaymill.trainer.errors import TrainError
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


@dataclass(frozen=True)
class DataSpec:
    """What the data path reads from a run's configuration; `TrainConfig` has every field, and
    `ReplayDataset` builds one of these for users of other training frameworks."""

    task: str
    replay: str | None = None
    replay_target: str | None = None
    replay_on_short: str = "upsample"
    replay_ratio: float = 0.0
    task_eval: str | None = None
    replay_eval: str | None = None
    eval_fraction: float = 0.0
    eval_tokens: int = 65536
    seq_len: int = 512
    batch_size: int = 8
    seed: int = 0


@dataclass
class ReplayPlan:
    """The replay mixture a run draws: target weights per key, what they count, keys dropped for lack of data."""

    target: dict[str, float]
    by: str
    on_short: str
    dropped: list[str] = field(default_factory=list)


def plan_replay_target(spec: str, replay: str, on_short: str) -> ReplayPlan:
    """Resolve `replay_target` against the replay shard set, applying `replay_on_short` to empty keys.

    The trainer's stream is endless, so a key that runs out always repeats under "upsample" and
    "renormalize"; they differ for keys with no documents at all: "upsample" cannot repeat nothing
    and refuses, "renormalize" drops them and shares their weight. "error" stops when any key runs out.
    """
    from replaymill.schemas.mixtures import resolve_target
    from replaymill.shards.reader import ShardSet
    from replaymill.shards.sampler import key_for

    target, preferred_by, _ = resolve_target(spec)
    wanted = set(target)
    present = {key_for(info.domain, info.lang, wanted) for info in ShardSet.open(replay).shards if info.rows > 0}
    empty = sorted(k for k in target if k not in present)
    if empty and on_short in ("upsample", "error"):
        raise TrainError(f"replay target {spec}: the replay set has no documents for {', '.join(empty)}; "
                         "pass --replay-on-short renormalize to share their weight among the others")
    if empty and on_short == "renormalize":
        target = {k: w for k, w in target.items() if k not in empty}
        if not target:
            raise TrainError(f"replay target {spec}: the replay set has documents for none of its keys")
    return ReplayPlan(target, preferred_by or "tokens", "error" if on_short == "error" else "upsample",
                      empty if on_short == "renormalize" else [])


def replay_plan(cfg: TrainConfig | DataSpec) -> ReplayPlan | None:
    """The run's replay mixture when it draws replay by `replay_target`, else None."""
    if cfg.replay_target and cfg.replay and cfg.replay_ratio > 0:
        return plan_replay_target(cfg.replay_target, cfg.replay, cfg.replay_on_short)
    return None


def make_mixer_factory(cfg: TrainConfig | DataSpec, tokenizer: Tokenizer, rank: int, world_size: int,
                       plan: ReplayPlan | None = None) -> Callable[[int, int], ReplayMixer]:
    """`factory(worker, num_workers)` -> this reader's mixer (called inside each DataLoader worker).

    `plan` is `replay_plan(cfg)` when the caller already resolved it (it is resolved here otherwise).
    """
    held_out_task = 0.0 if cfg.task_eval else cfg.eval_fraction
    held_out_replay = 0.0 if cfg.replay_eval else cfg.eval_fraction
    plan = plan or replay_plan(cfg)

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
            if plan is not None:
                from replaymill.shards.sampler import ReplaySampler

                # endless: a domain that runs out starts a new seeded epoch instead of ending replay
                sampler = ReplaySampler(shardset, plan.target, by=plan.by, seed=cfg.seed, on_short=plan.on_short,
                                        rank=index, world_size=count, columns=["id", "text"])
                replay_src = SamplerSource(sampler, held_out_replay)
            else:
                replay_src = ShardSetSource(shardset, seed=cfg.seed + 1, reader=reader, held_out=held_out_replay)
            replay = TokenStream(replay_src, tokenizer)
        return ReplayMixer(TokenStream(task_src, tokenizer), replay, cfg.replay_ratio, cfg.batch_size, cfg.seq_len)

    return factory
