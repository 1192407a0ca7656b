"""The training loop: mixed micro-batches -> AdamW with warmup + cosine, accumulation, clipping, DDP.

One function, `train(cfg)`, used by the CLI, the replay experiment and the tests, so the code path
that is benchmarked is the code path users run.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from replaymill.trainer.checkpoint import latest_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from replaymill.trainer.config import RESUME_INVARIANT_KEYS, TrainConfig
from replaymill.trainer.data import make_mixer_factory
from replaymill.trainer.distributed import DistContext, init_distributed, shutdown_distributed
from replaymill.trainer.evaluate import build_eval_sets, evaluate
from replaymill.trainer.mixer import MixedBatches, replay_tokens_per_batch
from replaymill.trainer.model import add_lora, build_model, count_parameters, save_final
from replaymill.trainer.tokenizer import load_tokenizer

LOG_NAME = "log.jsonl"


def lr_lambda(warmup: int, steps: int, min_ratio: float):
    """Multiplier of the peak LR at optimizer step s: linear warmup to 1, then cosine to `min_ratio`."""
    def f(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup
        progress = min(1.0, (s - warmup) / max(1, steps - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return f


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not biases, norms), over trainable parameters."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=False, foreach=False)


def token_losses(model: torch.nn.Module, ids: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Per-position next-token cross-entropy `[B, L-1]` (fp32), under bf16 autocast on CUDA."""
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    with autocast:
        logits = model(input_ids=ids).logits
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), ids[:, 1:].reshape(-1),
                           reduction="none").view(ids.size(0), -1)


def _prepare_output(cfg: TrainConfig, ctx: DistContext) -> Path | None:
    """The checkpoint to resume from (or None); refuses to overwrite a previous run without --resume."""
    out = Path(cfg.output)
    ckpt = latest_checkpoint(out) if cfg.resume else None
    if ckpt is None and cfg.resume and ctx.is_main:
        print(f"[train] --resume: no checkpoint under {out}, starting fresh", flush=True)
    if ckpt is None and (out / LOG_NAME).exists() and not cfg.resume:
        raise FileExistsError(f"{out} holds a previous run; pass --resume to continue it or choose a new --output")
    if ckpt is not None:
        saved = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))["config"]
        changed = [k for k in RESUME_INVARIANT_KEYS if saved.get(k) != cfg.model_dump(mode="json").get(k)]
        if changed:
            raise ValueError(f"cannot resume {ckpt}: config changed in {changed}; the data sequence would differ")
    return ckpt


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from (the interrupted tail is redone)."""
    if path.exists():
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        path.write_text("".join(ln + "\n" for ln in lines if json.loads(ln)["step"] <= step), encoding="utf-8")


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run (or resume) one training run; returns the final eval losses and throughput (rank 0)."""
    ctx = init_distributed()
    try:
        return _train(cfg, ctx)
    finally:
        shutdown_distributed(ctx)


def _train(cfg: TrainConfig, ctx: DistContext) -> dict[str, Any]:
    out = Path(cfg.output)
    ckpt = _prepare_output(cfg, ctx)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        cfg.to_yaml(out / "config.yaml")
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer(cfg.model)
    model = build_model(cfg.model, tokenizer, cfg.seq_len, cfg.model_overrides)
    if cfg.lora:
        model = add_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout)
    model.to(ctx.device)
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg.warmup, cfg.steps, cfg.min_lr_ratio))

    step, tokens_seen, data_states = 0, 0, None
    if ckpt is not None:
        state, rngs = load_checkpoint(ckpt, model, optimizer, scheduler)
        if state["world_size"] != ctx.world_size:
            raise ValueError(f"checkpoint was written by {state['world_size']} ranks, this run has {ctx.world_size}")
        step, tokens_seen = state["step"], state["tokens_seen"]
        data_states = state["data"][ctx.rank]
        set_rng_state(rngs[ctx.rank])
        if ctx.is_main:
            _truncate_log(out / LOG_NAME, step)
            print(f"[train] resumed from {ckpt} at step {step}", flush=True)

    trainable, total = count_parameters(model)
    replay_per_batch = replay_tokens_per_batch(cfg.replay_ratio, cfg.batch_size, cfg.seq_len)
    if ctx.is_main and ckpt is None:
        print(f"[train] {total:,} parameters ({trainable:,} trainable), world {ctx.world_size}, device {ctx.device}; "
              f"{replay_per_batch} of {cfg.batch_size * cfg.seq_len} tokens per micro-batch from replay "
              f"(effective ratio {replay_per_batch / (cfg.batch_size * cfg.seq_len):.5f})", flush=True)

    train_model = DDP(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None) if ctx.enabled else model
    eval_sets = build_eval_sets(cfg, tokenizer) if ctx.is_main else {}

    workers = max(1, cfg.num_workers)
    dataset = MixedBatches(make_mixer_factory(cfg, tokenizer, ctx.rank, ctx.world_size), workers, data_states)
    batches = iter(DataLoader(dataset, batch_size=None, num_workers=cfg.num_workers)) if cfg.num_workers else iter(dataset)
    worker_states: list[dict | None] = list(data_states) if data_states else [None] * workers

    log_file = open(out / LOG_NAME, "a", encoding="utf-8") if ctx.is_main else None

    def log(record: dict[str, Any]) -> None:
        if log_file:
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()

    def run_eval(at: int) -> dict[str, float]:
        losses = {name: evaluate(model, rows, cfg.batch_size, ctx.device) for name, rows in eval_sets.items()}
        if ctx.is_main and losses:
            log({"kind": "eval", "step": at, **{f"eval_{k}_loss": v for k, v in losses.items()}})
            print(f"[train] step {at} eval " + " ".join(f"{k}={v:.4f}" for k, v in losses.items()), flush=True)
        ctx.barrier()
        return losses

    final_eval: dict[str, float] = {}
    if step == 0:
        final_eval = run_eval(0)
    train_model.train()
    t0, tokens_at_t0 = time.perf_counter(), tokens_seen
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        while step < cfg.steps:
            loss_sum = task_sum = replay_sum = 0.0
            task_n = replay_n = 0
            for micro in range(cfg.grad_accum):
                batch = next(batches)
                worker_states[batch["worker"]] = batch["state"]
                ids = batch["input_ids"].to(ctx.device, non_blocking=True)
                mask = batch["replay_mask"][:, 1:].to(ctx.device)
                sync = micro == cfg.grad_accum - 1 or not ctx.enabled
                with contextlib.nullcontext() if sync else train_model.no_sync():
                    per_token = token_losses(train_model, ids, ctx.device)
                    loss = per_token.mean()
                    (loss / cfg.grad_accum).backward()
                with torch.no_grad():
                    loss_sum += float(loss)
                    replay_sum += float(per_token[mask].sum())
                    task_sum += float(per_token[~mask].sum())
                    replay_n += int(mask.sum())
                    task_n += int((~mask).sum())
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens_seen += cfg.batch_size * cfg.seq_len * cfg.grad_accum * ctx.world_size
            loss_mean, task_loss, replay_loss = ctx.mean([
                loss_sum / cfg.grad_accum, task_sum / max(1, task_n), replay_sum / max(1, replay_n)])
            elapsed = time.perf_counter() - t0
            log({"kind": "train", "step": step, "lr": lr, "loss": loss_mean, "task_loss": task_loss,
                 "replay_loss": replay_loss if replay_n else None, "grad_norm": grad_norm, "tokens": tokens_seen,
                 "replay_tokens": step * replay_per_batch * cfg.grad_accum * ctx.world_size,
                 "tokens_per_s": (tokens_seen - tokens_at_t0) / max(elapsed, 1e-9)})
            if step % cfg.eval_every == 0 or step == cfg.steps:
                final_eval = run_eval(step)
            if (cfg.save_every and step % cfg.save_every == 0) or step == cfg.steps:
                _checkpoint(cfg, ctx, step, tokens_seen, model, optimizer, scheduler, worker_states)
    finally:
        if log_file:
            log_file.close()
    elapsed = time.perf_counter() - t0
    result = {"eval": final_eval, "steps": step, "tokens": tokens_seen, "parameters": total,
              "tokens_per_s": (tokens_seen - tokens_at_t0) / max(elapsed, 1e-9)}
    if ctx.is_main:
        save_final(model, tokenizer, out / "final")
        if cfg.plot:
            from replaymill.trainer.plot import plot_log

            plot_log(out / LOG_NAME, out / "curves.png")
    ctx.barrier()
    return result


def _checkpoint(cfg: TrainConfig, ctx: DistContext, step: int, tokens_seen: int, model, optimizer, scheduler,
                worker_states: list[dict | None]) -> None:
    """Gather every rank's RNG and data position, then rank 0 writes the checkpoint."""
    rngs = ctx.all_gather(rng_state())
    data = ctx.all_gather(worker_states)
    if ctx.is_main:
        meta = {"tokens_seen": tokens_seen, "world_size": ctx.world_size, "config": cfg.model_dump(mode="json")}
        save_checkpoint(cfg.output, step, model, optimizer, scheduler, rngs, data, meta, cfg.keep_checkpoints)
    ctx.barrier()
