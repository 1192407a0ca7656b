"""Checkpoints that resume to the identical run: weights, optimizer, schedule, RNG and data position.

A checkpoint is a directory `OUTPUT/checkpoints/step-NNNNNNN/` written under a temporary name and
renamed when complete, so an interrupted save never looks like a checkpoint:

- `model.pt`       model state dict (with LoRA: base weights and adapters)
- `optimizer.pt`   AdamW state;  `scheduler.pt` LR schedule state
- `rng.pt`         per rank: torch (CPU and CUDA), numpy and python RNG states
- `state.json`     step, tokens seen, the config, and per rank and DataLoader worker the mixer
                   state (task and replay stream positions: source position + token offset)
"""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_DIR = "checkpoints"


def rng_state() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save_checkpoint(output: str | Path, step: int, model: torch.nn.Module, optimizer, scheduler,
                    rng_states: list[dict], data_states: list[list[dict]], meta: dict[str, Any], keep: int) -> Path:
    """Write checkpoint `step` atomically (rank 0 only) and prune all but the newest `keep`."""
    root = Path(output) / CHECKPOINT_DIR
    final = root / f"step-{step:07d}"
    tmp = root / f".tmp-step-{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(model.state_dict(), tmp / "model.pt")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(rng_states, tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, "data": data_states, **meta}, indent=1), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in sorted(root.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(output: str | Path) -> Path | None:
    found = sorted((Path(output) / CHECKPOINT_DIR).glob("step-*"))
    return found[-1] if found else None


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer, scheduler) -> tuple[dict[str, Any], list[dict]]:
    """Restore model/optimizer/scheduler in place; returns (state.json, per-rank RNG states)."""
    model.load_state_dict(torch.load(path / "model.pt", map_location="cpu", weights_only=True))
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    rng = torch.load(path / "rng.pt", weights_only=False)
    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    return state, rng
