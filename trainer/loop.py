"""The training loop: mixed micro-batches -> AdamW with warmup + cosine, accumulation, clipping, DDP.

`train(cfg)` runs one `Trainer`; the CLI, the experiments, the benchmarks and the tests all call
it, so the code path that is benchmarked is the code path users run. A run has three phases:

1. setup (`Trainer.setup`): resolve the model and tokenizer, restore a checkpoint, open the data
   and the held-out sets. Nothing is written yet, and any configuration or data problem is a
   `TrainError` (one line in the CLI).
2. the loop: one `train_step` per optimizer step, evaluation and checkpoints at their intervals,
   progress on the console and records in `log.jsonl` (plus tensorboard/wandb on request).
3. the end: `final/` (a plain HF model directory with its tokenizer) and `curves.png`.

A run that fails before its first optimizer step removes what it wrote (`RunDir.abandon`).
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from replaymill.trainer.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from replaymill.trainer.config import TrainConfig
from replaymill.trainer.data import make_mixer_factory, replay_plan
from replaymill.trainer.distributed import DistContext, init_distributed, shutdown_distributed
from replaymill.trainer.errors import TrainError
from replaymill.trainer.evaluate import build_eval_sets, causal_logits, evaluate
from replaymill.trainer.mixer import MixedBatches, replay_tokens_per_batch
from replaymill.trainer.model import add_lora, build_model, count_parameters, resolve_model, save_final
from replaymill.trainer.optim import apply_schedule, make_optimizer, make_scheduler
from replaymill.trainer.progress import ProgressDisplay
from replaymill.trainer.reporting import RunLog, check_trackers
from replaymill.trainer.run_dir import LOG_NAME, ResumePoint, RunDir
from replaymill.trainer.tokenizer import load_tokenizer

def token_losses(model: torch.nn.Module, ids: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Per-position next-token cross-entropy `[B, L-1]` (fp32), under bf16 autocast on CUDA."""
    logits = causal_logits(model, ids, device)
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), ids[:, 1:].reshape(-1),
                           reduction="none").view(ids.size(0), -1)


@contextlib.contextmanager
def setup_errors():
    """During setup, a ValueError / OSError / ImportError is a problem with the inputs: one TrainError line."""
    try:
        yield
    except TrainError:
        raise
    except (ValueError, OSError, ImportError) as e:
        lines = [ln for ln in str(e).splitlines() if ln.strip()]
        raise TrainError(lines[0] if lines else repr(e)) from e


class Trainer:
    """One training run of `cfg` on this process's rank (see the module docstring for the phases)."""

    def __init__(self, cfg: TrainConfig, ctx: DistContext):
        self.cfg, self.ctx = cfg, ctx
        self.run_dir = RunDir(cfg.output, ctx.is_main)
        self.step, self.tokens_seen = 0, 0
        self.final_eval: dict[str, float] = {}
        self.resume: ResumePoint | None = None
        self.log = RunLog(cfg.output, cfg, ctx.is_main)
        self.progress = ProgressDisplay(cfg.steps, cfg.log_every, enabled=ctx.is_main)

    # ----- setup ---------------------------------------------------------------------------------
    def setup(self) -> None:
        """Everything that can fail on bad input, before anything is written; cheap checks first."""
        cfg = self.cfg
        with setup_errors():
            self.resume = self.run_dir.check(cfg)
            check_trackers(cfg.report_to)
            if self.ctx.device.type == "cuda":
                torch.set_float32_matmul_precision("high")  # TF32 for what runs outside bf16 autocast
            torch.manual_seed(cfg.seed)
            self.model_dir = resolve_model(cfg.model)
            self.tokenizer = load_tokenizer(self.model_dir)
            self._open_data()
            self.eval_sets = build_eval_sets(cfg, self.tokenizer) if self.ctx.is_main else {}
            self._build_model()
            self._restore()

    def _build_model(self) -> None:
        cfg, ctx = self.cfg, self.ctx
        model = build_model(self.model_dir, self.tokenizer, cfg.seq_len, cfg.model_overrides, cfg.attn_implementation)
        if cfg.lora:
            model = add_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout)
        self.model = model.to(ctx.device)
        self.optimizer = make_optimizer(self.model, cfg, ctx.device)
        self.scheduler = make_scheduler(self.optimizer, cfg)
        ddp = DDP(self.model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None) if ctx.enabled else None
        self._ddp = ddp
        net = ddp or self.model
        self.train_model = torch.compile(net) if cfg.compile else net
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.n_trainable, self.n_parameters = count_parameters(self.model)

    def _restore(self) -> None:
        """Weights, optimizer, schedule and RNG from the checkpoint being resumed (data: `_open_data`)."""
        if self.resume is None:
            return
        state, rngs = load_checkpoint(self.resume.checkpoint, self.model, self.optimizer, self.scheduler)
        self.step, self.tokens_seen = state["step"], state["tokens_seen"]
        set_rng_state(rngs[self.ctx.rank])
        self.next_lr = apply_schedule(self.optimizer, self.scheduler, self.cfg)

    def _open_data(self) -> None:
        """The mixed micro-batch stream (at the checkpoint's position); worker 0's mixer is built here so
        bad data fails in setup."""
        cfg, ctx = self.cfg, self.ctx
        self.data_states = None
        if self.resume is not None:
            saved_world = self.resume.state["world_size"]
            if saved_world != ctx.world_size:
                raise TrainError(f"checkpoint was written by {saved_world} ranks, this run has {ctx.world_size}")
            self.data_states = self.resume.state["data"][ctx.rank]
        self.plan = replay_plan(cfg)
        factory = make_mixer_factory(cfg, self.tokenizer, ctx.rank, ctx.world_size, self.plan)
        workers = max(1, cfg.num_workers)
        first = factory(0, workers)
        if cfg.num_workers == 0:
            dataset = MixedBatches(lambda worker, n: first, 1, self.data_states)
            self.batches = iter(dataset)
        else:
            dataset = MixedBatches(factory, workers, self.data_states)
            self.batches = iter(DataLoader(dataset, batch_size=None, num_workers=cfg.num_workers,
                                           pin_memory=ctx.device.type == "cuda", prefetch_factor=4))
        self.worker_states: list[dict | None] = list(self.data_states) if self.data_states else [None] * workers
        self.replay_per_batch = replay_tokens_per_batch(cfg.replay_ratio, cfg.batch_size, cfg.seq_len)

    # ----- console -------------------------------------------------------------------------------
    def say(self, line: str) -> None:
        self.progress.note(f"[train] {line}")

    def announce(self) -> None:
        """Where the outputs go, what is trained, and how the replay share works out."""
        cfg = self.cfg
        self.say(f"run directory {Path(cfg.output).resolve()} (config.yaml, {LOG_NAME}, checkpoints/, final/"
                 + (", curves.png" if cfg.plot else "") + (", tensorboard/" if "tensorboard" in cfg.report_to else "") + ")")
        n = cfg.batch_size * cfg.seq_len
        ddp = f" (DDP, {self.ctx.backend})" if self.ctx.enabled else ""
        self.say(f"model {cfg.model}: {self.n_parameters:,} parameters ({self.n_trainable:,} trainable), world {self.ctx.world_size}{ddp}, "
                 f"device {self.ctx.device}; {self.replay_per_batch} of {n} tokens per micro-batch from replay "
                 f"(effective ratio {self.replay_per_batch / n:.5f})")
        if self.plan is not None and self.plan.dropped:
            self.say(f"replay target {cfg.replay_target}: no documents for {', '.join(self.plan.dropped)}; "
                     "their weight is shared by the others (--replay-on-short renormalize)")
        if self.resume is not None:
            self.announce_resume()
        elif cfg.resume:
            self.say(f"--resume: no checkpoint under {cfg.output}, starting fresh")

    def announce_resume(self) -> None:
        """Where the run continues, and any schedule change: printed and logged as a `schedule` record."""
        self.say(f"resumed from {self.resume.checkpoint} at step {self.step}")
        changes = self.resume.schedule_changes
        if changes:
            self.say(f"schedule changed on resume: {', '.join(f'{k} {a} -> {b}' for k, (a, b) in changes.items())}; "
                     f"the LR schedule is rebuilt from step {self.step} (next LR {self.next_lr:.3e})")
            self.log.write({"kind": "schedule", "step": self.step, "next_lr": self.next_lr,
                            **{f"{k}_from": a for k, (a, _) in changes.items()},
                            **{f"{k}_to": b for k, (_, b) in changes.items()}})

    # ----- the loop ------------------------------------------------------------------------------
    def next_batch(self) -> dict[str, Any]:
        batch = next(self.batches)
        self.worker_states[batch["worker"]] = batch["state"]
        return batch

    def micro_step(self, batch: dict[str, Any], sync: bool) -> torch.Tensor:
        """Forward and backward of one micro-batch; returns [loss sum, task sum, task n, replay sum, replay n]."""
        ids = batch["input_ids"].to(self.ctx.device, non_blocking=True)
        mask = batch["replay_mask"][:, 1:].to(self.ctx.device, non_blocking=True)
        no_sync = self._ddp.no_sync() if (self._ddp is not None and not sync) else contextlib.nullcontext()
        with no_sync:
            per_token = token_losses(self.train_model, ids, self.ctx.device)
            loss = per_token.mean()
            (loss / self.cfg.grad_accum).backward()
        with torch.no_grad():
            per_token = per_token.detach()
            replay = mask.to(per_token.dtype)
            replay_sum, replay_n = (per_token * replay).sum(), replay.sum()
            return torch.stack([loss.detach(), per_token.sum() - replay_sum, per_token.numel() - replay_n,
                                replay_sum, replay_n])

    def optimizer_step(self) -> tuple[float, float]:
        """Clip, step AdamW and the schedule; returns (grad norm, the LR this step used)."""
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.max_grad_norm)
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(grad_norm), lr

    def train_step(self) -> dict[str, Any]:
        """One optimizer step over `grad_accum` micro-batches; returns its log record."""
        cfg, ctx = self.cfg, self.ctx
        sums = torch.zeros(5, dtype=torch.float64, device=ctx.device)
        for micro in range(cfg.grad_accum):
            sums += self.micro_step(self.next_batch(), sync=micro == cfg.grad_accum - 1)
        grad_norm, lr = self.optimizer_step()
        self.step += 1
        self.tokens_seen += cfg.batch_size * cfg.seq_len * cfg.grad_accum * ctx.world_size
        loss_sum, task_sum, task_n, replay_sum, replay_n = sums.tolist()
        loss, task_loss, replay_loss = ctx.mean([loss_sum / cfg.grad_accum, task_sum / max(1.0, task_n),
                                                 replay_sum / max(1.0, replay_n)])
        elapsed = time.perf_counter() - self._t0
        return {"kind": "train", "step": self.step, "lr": lr, "loss": loss, "task_loss": task_loss,
                "replay_loss": replay_loss if replay_n else None, "grad_norm": grad_norm, "tokens": self.tokens_seen,
                "replay_tokens": self.step * self.replay_per_batch * cfg.grad_accum * ctx.world_size,
                "elapsed_s": elapsed, "tokens_per_s": (self.tokens_seen - self._tokens_at_start) / max(elapsed, 1e-9)}

    def evaluate(self) -> dict[str, float]:
        """Held-out task and replay loss (rank 0), logged and printed; every rank waits for it."""
        losses = {name: evaluate(self.model, rows, self.cfg.batch_size, self.ctx.device)
                  for name, rows in self.eval_sets.items()}
        if self.ctx.is_main and losses:
            self.log.write({"kind": "eval", "step": self.step, **{f"eval_{k}_loss": v for k, v in losses.items()}})
            self.say(f"step {self.step} eval " + " ".join(f"{k}={v:.4f}" for k, v in losses.items()))
        self.ctx.barrier()
        self.final_eval = losses
        return losses

    def checkpoint(self) -> None:
        """Gather every rank's RNG and data position, then rank 0 writes the checkpoint."""
        rngs = self.ctx.all_gather(rng_state())
        data = self.ctx.all_gather(self.worker_states)
        if self.ctx.is_main:
            meta = {"tokens_seen": self.tokens_seen, "world_size": self.ctx.world_size,
                    "config": self.cfg.model_dump(mode="json")}
            save_checkpoint(self.cfg.output, self.step, self.model, self.optimizer, self.scheduler, rngs, data, meta,
                            self.cfg.keep_checkpoints)
        self.ctx.barrier()

    def loop(self) -> None:
        cfg = self.cfg
        if self.step == 0:
            self.evaluate()
        self.train_model.train()
        self._t0, self._tokens_at_start = time.perf_counter(), self.tokens_seen
        self.progress.start(self.step, self.tokens_seen)
        while self.step < cfg.steps:
            record = self.train_step()
            self.run_dir.mark_started()
            self.log.write(record)
            self.progress.update(record)
            if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                self.evaluate()
            if (cfg.save_every and self.step % cfg.save_every == 0) or self.step == cfg.steps:
                self.checkpoint()

    # ----- the end -------------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        cfg, out = self.cfg, Path(self.cfg.output)
        tokens_per_s = (self.tokens_seen - self._tokens_at_start) / max(time.perf_counter() - self._t0, 1e-9)
        if self.ctx.is_main:
            save_final(self.model, self.tokenizer, out / "final")
            if cfg.plot:
                from replaymill.trainer.plot import plot_log, run_title

                plot_log(out / LOG_NAME, out / "curves.png", title=run_title(cfg, self.replay_per_batch))
            self.say(f"done: {self.step} steps, {self.tokens_seen:,} tokens, {tokens_per_s:,.0f} tokens/s; "
                     f"model in {out / 'final'}")
        self.ctx.barrier()
        return {"eval": self.final_eval, "steps": self.step, "tokens": self.tokens_seen, "parameters": self.n_parameters,
                "tokens_per_s": tokens_per_s, "output": str(out)}

    def run(self) -> dict[str, Any]:
        """Setup, loop, finish; a failure before the first optimizer step leaves no run directory behind."""
        self.setup()
        try:
            self.run_dir.start(self.cfg, self.resume)
            self.log.open()
            self.announce()
            self.loop()
        except BaseException:
            self.progress.close()
            self.log.close()
            self.run_dir.abandon()
            raise
        self.progress.close()
        self.log.close()
        return self.finish()


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run (or resume) one training run; returns the final eval losses and throughput (rank 0).

    Raises TrainError (a ValueError) for configuration and data problems, found before any output
    is written wherever possible.
    """
    ctx = init_distributed()
    try:
        return Trainer(cfg, ctx).run()
    finally:
        shutdown_distributed(ctx)
