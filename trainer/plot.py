"""The end-of-run plot: training loss and held-out task/replay loss against step (learning vs forgetting).

The title names the model and the replay share, so a folder of curves from a sweep can be told
apart; it is also stored as the PNG's Title metadata.
"""
from __future__ import annotations

import json
from pathlib import Path

from replaymill.trainer.config import TrainConfig


def run_title(cfg: TrainConfig, replay_per_batch: int) -> str:
    """`tiny-llama · replay 5% (6/128 tokens per micro-batch) from out/replay` (or `· no replay`)."""
    model = cfg.model
    path = Path(model)
    if path.is_dir():  # a run's final/ says little; name its run instead
        model = f"{path.parent.name}/{path.name}" if path.name == "final" else path.name
    if cfg.replay_ratio <= 0 or not cfg.replay:
        return f"{model} · no replay"
    source = cfg.replay_target or Path(cfg.replay).name
    return (f"{model} · replay {cfg.replay_ratio * 100:g}% ({replay_per_batch}/{cfg.batch_size * cfg.seq_len} "
            f"tokens per micro-batch) from {source}")


def plot_log(log_path: str | Path, png_path: str | Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(ln) for ln in Path(log_path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], lw=0.8, alpha=0.5, label="train loss")
    for key, label in (("eval_task_loss", "held-out task"), ("eval_replay_loss", "held-out replay (forgetting)")):
        pts = [(r["step"], r[key]) for r in evals if key in r]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=label)
    for r in records:
        if r["kind"] == "schedule":
            ax.axvline(r["step"], color="grey", ls=":", lw=1, label="resumed, schedule changed")
    if title:
        ax.set_title(title, fontsize=9)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats/token)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110, metadata={"Title": title} if title else None)
    plt.close(fig)
