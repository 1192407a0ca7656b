"""The training configuration: one pydantic model shared by the YAML file, the CLI flags and the code.

A run is fully described by this object (it is written to `OUTPUT/config.yaml`), so a resumed or
repeated run can be checked against the one that made the checkpoint.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrainConfig(BaseModel):
    """Every knob of `replaymill train`; YAML keys and `--flag` names are these field names."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="local model directory, or a preset built from a config in code (tiny-gpt2, tiny-llama)")
    model_overrides: dict[str, Any] = Field(default_factory=dict, description="config fields set on a preset (e.g. hidden_size)")
    task: str = Field(description="task data: .txt (documents split on blank lines), .jsonl[.gz] (a 'text' field), an HF dataset dir, or a shard set")
    replay: str | None = Field(default=None, description="replay shard set (directory with _manifest.json)")
    replay_target: str | None = Field(default=None, description="mixture preset name or weights.yaml; replay is then drawn by shards.sampler.ReplaySampler")
    replay_ratio: float = Field(default=0.0, ge=0.0, le=1.0, description="fraction of every batch's tokens taken from replay")
    task_eval: str | None = Field(default=None, description="held-out task data; default: eval_fraction of task documents by id hash")
    replay_eval: str | None = Field(default=None, description="held-out replay data; default: eval_fraction of replay documents by id hash")
    eval_fraction: float = Field(default=0.02, ge=0.0, lt=1.0)
    eval_tokens: int = Field(default=65536, gt=0, description="cap on tokens in each held-out set")
    eval_every: int = Field(default=100, gt=0)
    seq_len: int = Field(default=512, gt=1)
    batch_size: int = Field(default=8, gt=0, description="sequences per micro-batch per rank")
    grad_accum: int = Field(default=1, gt=0)
    lr: float = Field(default=3e-4, gt=0.0)
    min_lr_ratio: float = Field(default=0.1, ge=0.0, le=1.0, description="cosine decays to lr * min_lr_ratio")
    warmup: int = Field(default=100, ge=0, description="linear warmup steps (re-warming, as Ibrahim et al. recommend)")
    steps: int = Field(default=1000, gt=0, description="optimizer steps")
    weight_decay: float = Field(default=0.1, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.95)
    max_grad_norm: float = Field(default=1.0, gt=0.0)
    seed: int = 0
    num_workers: int = Field(default=0, ge=0, description="DataLoader workers per rank (each reads its own documents)")
    save_every: int = Field(default=0, ge=0, description="checkpoint every N steps (0: only at the end)")
    keep_checkpoints: int = Field(default=2, gt=0)
    lora: bool = False
    lora_r: int = Field(default=8, gt=0)
    lora_alpha: int = Field(default=16, gt=0)
    lora_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    output: str = Field(description="run directory: config, log.jsonl, checkpoints/, final/, curves.png")
    resume: bool = False
    plot: bool = True

    @model_validator(mode="after")
    def _replay_consistent(self) -> "TrainConfig":
        if self.replay_ratio > 0 and not self.replay:
            raise ValueError("replay_ratio > 0 needs a replay shard set (--replay)")
        if self.replay_target and not self.replay:
            raise ValueError("replay_target needs a replay shard set (--replay)")
        return self

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False), encoding="utf-8")


# What must match between the run that wrote a checkpoint and the run that resumes from it for the
# resumed run to continue the identical data sequence.
RESUME_INVARIANT_KEYS = (
    "model", "model_overrides", "task", "replay", "replay_target", "replay_ratio", "seq_len",
    "batch_size", "grad_accum", "steps", "seed", "num_workers", "eval_fraction", "lora",
)


def load_config(path: str | Path | None, overrides: dict[str, Any]) -> TrainConfig:
    """A YAML file's keys, then `overrides` (the CLI flags that were given) on top, validated."""
    data: dict[str, Any] = {}
    if path:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a training config must be a YAML mapping")
        data.update(loaded)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.model_validate(data)
