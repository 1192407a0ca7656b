"""AdamW and its schedule: linear warmup, then cosine decay to a floor (re-warming, as Ibrahim et al. recommend)."""
from __future__ import annotations

import math
from typing import Callable

import torch

from replaymill.trainer.config import TrainConfig


def lr_lambda(warmup: int, steps: int, min_ratio: float) -> Callable[[int], float]:
    """Multiplier of the peak LR at optimizer step s: linear warmup to 1, then cosine to `min_ratio`."""
    def f(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup
        progress = min(1.0, (s - warmup) / max(1, steps - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return f


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not biases, norms), over trainable parameters.

    On CUDA the fused kernel (one launch for all parameters); on CPU the plain per-parameter loop,
    whose results do not depend on how tensors are grouped, so a resumed run stays bitwise equal.
    """
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    cuda = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=cuda, foreach=False if not cuda else None)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg.warmup, cfg.steps, cfg.min_lr_ratio))


def apply_schedule(optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LambdaLR,
                   cfg: TrainConfig) -> float:
    """After loading a checkpoint's scheduler: use this config's peak LR and schedule from the current step.

    A checkpoint stores the old peak LR (`base_lrs`) and step; the schedule function is always
    the current config's. Returns the LR the next step will use.
    """
    scheduler.base_lrs = [cfg.lr for _ in optimizer.param_groups]
    lrs = [base * lam(scheduler.last_epoch) for base, lam in zip(scheduler.base_lrs, scheduler.lr_lambdas)]
    for group, lr in zip(optimizer.param_groups, lrs):
        group["lr"] = lr
    scheduler._last_lr = lrs
    return lrs[0]
