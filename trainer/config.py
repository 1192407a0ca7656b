"""The training configuration: one pydantic model shared by the YAML file, the CLI flags and the code.

A run is fully described by this object (it is written to `OUTPUT/config.yaml`), so a resumed or
repeated run can be checked against the one that made the checkpoint.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from replaymill.trainer.errors import TrainError


class TrainConfig(BaseModel):
    """Every knob of `replaymill train`; YAML keys and `--flag` names are these field names."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="local HF model directory, a hub id already in the local HF cache, or a preset "
                             "built in code (tiny-gpt2, tiny-llama); never downloads")
    model_overrides: dict[str, Any] = Field(default_factory=dict, description="config fields set on a preset, as YAML "
                                            "or JSON (e.g. '{hidden_size: 128, num_hidden_layers: 4}')")
    attn_implementation: str | None = Field(default=None, description="attention kernel passed to transformers "
                                            "(sdpa, eager, flash_attention_2); default: transformers' choice")
    task: str = Field(description="task data: .txt (documents split on blank lines), .jsonl[.gz] (a 'text' field), an HF dataset dir, or a shard set")
    replay: str | None = Field(default=None, description="replay shard set (directory with _manifest.json)")
    replay_target: str | None = Field(default=None, description="mixture preset name or weights.yaml; replay is then drawn by shards.sampler.ReplaySampler")
    replay_on_short: Literal["upsample", "renormalize", "error"] = Field(
        default="upsample", description="with replay_target, a domain that runs out: repeat it in a new seeded epoch "
        "(upsample), drop domains the set lacks and share their weight (renormalize), or stop (error)")
    replay_ratio: float = Field(default=0.0, ge=0.0, le=1.0, description="fraction of every batch's tokens taken from replay")
    task_eval: str | None = Field(default=None, description="held-out task data; default: eval_fraction of task documents by id hash")
    replay_eval: str | None = Field(default=None, description="held-out replay data; default: eval_fraction of replay documents by id hash")
    eval_fraction: float = Field(default=0.02, ge=0.0, lt=1.0, description="share of documents held out by id hash "
                                 "when no explicit eval set is given")
    eval_tokens: int = Field(default=65536, gt=0, description="cap on tokens in each held-out set")
    eval_every: int = Field(default=100, gt=0, description="evaluate held-out task and replay loss every N steps")
    seq_len: int = Field(default=512, gt=1, description="tokens per packed sequence")
    batch_size: int = Field(default=8, gt=0, description="sequences per micro-batch per rank")
    grad_accum: int = Field(default=1, gt=0, description="micro-batches per optimizer step")
    lr: float = Field(default=3e-4, gt=0.0, description="peak learning rate")
    min_lr_ratio: float = Field(default=0.1, ge=0.0, le=1.0, description="cosine decays to lr * min_lr_ratio")
    warmup: int = Field(default=100, ge=0, description="linear warmup steps (re-warming, as Ibrahim et al. recommend)")
    steps: int = Field(default=1000, gt=0, description="optimizer steps")
    weight_decay: float = Field(default=0.1, ge=0.0, description="AdamW weight decay (matrices only)")
    betas: tuple[float, float] = Field(default=(0.9, 0.95), description="AdamW betas, e.g. 0.9,0.95")
    max_grad_norm: float = Field(default=1.0, gt=0.0, description="gradient clipping norm")
    seed: int = Field(default=0, description="seed for model init and data order")
    num_workers: int = Field(default=0, ge=0, description="DataLoader workers per rank (each reads its own documents)")
    save_every: int = Field(default=0, ge=0, description="checkpoint every N steps (0: only at the end)")
    keep_checkpoints: int = Field(default=2, gt=0, description="how many checkpoints to keep")
    lora: bool = Field(default=False, description="train LoRA adapters on every linear layer (needs peft)")
    lora_r: int = Field(default=8, gt=0, description="LoRA rank")
    lora_alpha: int = Field(default=16, gt=0, description="LoRA alpha")
    lora_dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="dropout on the LoRA branch")
    compile: bool = Field(default=False, description="torch.compile the model (worth it on GPU for long runs)")
    output: str = Field(description="run directory: config.yaml, log.jsonl, checkpoints/, final/, curves.png")
    resume: bool = Field(default=False, description="continue from the newest checkpoint in output; a larger "
                         "steps (or a changed lr, warmup, min_lr_ratio) extends the schedule, logged")
    log_every: int = Field(default=10, gt=0, description="a progress line every N steps when the console is not "
                           "a terminal (a terminal gets a live bar)")
    report_to: list[Literal["tensorboard", "wandb"]] = Field(default_factory=list, description="also log to "
                                                             "tensorboard (OUTPUT/tensorboard) and/or wandb (offline "
                                                             "unless WANDB_MODE is set)")
    plot: bool = Field(default=True, description="write curves.png at the end")

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
    "model", "model_overrides", "task", "replay", "replay_target", "replay_on_short", "replay_ratio", "seq_len",
    "batch_size", "grad_accum", "seed", "num_workers", "eval_fraction", "lora",
)
# What may change on resume, explicitly: the LR schedule is rebuilt from the new values (logged).
SCHEDULE_KEYS = ("steps", "lr", "warmup", "min_lr_ratio")


def describe_errors(error: ValidationError) -> str:
    """A pydantic error as one line naming each field as its flag (`--task: field required`)."""
    known = list(TrainConfig.model_fields)
    parts = []
    for err in error.errors():
        field = str(err["loc"][0]) if err["loc"] else None
        msg = err["msg"].removeprefix("Value error, ")
        if field is None:
            parts.append(msg)
        elif err["type"] == "missing":
            parts.append(f"--{field.replace('_', '-')} is required")
        elif err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(field, known, n=1)
            parts.append(f"unknown key {field!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        else:
            parts.append(f"--{field.replace('_', '-')}: {msg} (got {err.get('input')!r})")
    return "; ".join(parts)


def read_yaml_config(path: str | Path) -> dict[str, Any]:
    """The keys of a YAML training config, or a TrainError naming the file and the problem."""
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise TrainError(f"config file {path} does not exist") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise TrainError(f"{path}: not valid YAML{where}: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(loaded, dict):
        raise TrainError(f"{path}: a training config must be a YAML mapping of keys to values")
    return loaded


def load_config(path: str | Path | None, overrides: dict[str, Any]) -> TrainConfig:
    """A YAML file's keys, then `overrides` (the CLI flags that were given) on top, validated.

    Every problem is a TrainError with one line naming the field, never a raw pydantic dump.
    """
    data: dict[str, Any] = read_yaml_config(path) if path else {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as e:
        raise TrainError(describe_errors(e)) from None
