"""`replaymill train`: fine-tune a causal LM on task data with a compute-equivalent share of replay.

Every flag is a TrainConfig field; `--config train.yaml` supplies any of them and flags given on
the command line override the file. Under `torchrun --nproc_per_node N` each process is one DDP rank.
"""
from __future__ import annotations

import argparse

# flag -> (type, help); names match TrainConfig fields (dashes for underscores)
_FLAGS: dict[str, tuple[type, str]] = {
    "model": (str, "local model directory or preset (tiny-gpt2, tiny-llama); never downloads"),
    "task": (str, "task data: .txt, .jsonl[.gz] (comma-separated or a directory), HF dataset dir, or shard set"),
    "replay": (str, "replay shard set directory (verified against its manifest checksums)"),
    "replay_target": (str, "mixture preset name or weights.yaml: draw replay with the exact ReplaySampler"),
    "replay_ratio": (float, "fraction of every batch's tokens from replay, e.g. 0.05"),
    "task_eval": (str, "explicit held-out task data (default: eval-fraction of task documents)"),
    "replay_eval": (str, "explicit held-out replay data (default: eval-fraction of replay documents)"),
    "eval_fraction": (float, "share of documents held out by id hash when no explicit eval set is given"),
    "eval_tokens": (int, "cap on tokens per held-out set"),
    "eval_every": (int, "evaluate held-out task and replay loss every N steps"),
    "seq_len": (int, "tokens per packed sequence"),
    "batch_size": (int, "sequences per micro-batch per rank"),
    "grad_accum": (int, "micro-batches per optimizer step"),
    "lr": (float, "peak learning rate"),
    "min_lr_ratio": (float, "cosine decays to lr * this"),
    "warmup": (int, "linear warmup steps"),
    "steps": (int, "optimizer steps"),
    "weight_decay": (float, "AdamW weight decay (matrices only)"),
    "max_grad_norm": (float, "gradient clipping norm"),
    "seed": (int, "seed for model init and data order"),
    "num_workers": (int, "DataLoader workers per rank"),
    "save_every": (int, "checkpoint every N steps (0: only at the end)"),
    "keep_checkpoints": (int, "how many checkpoints to keep"),
    "lora_r": (int, "LoRA rank"),
    "lora_alpha": (int, "LoRA alpha"),
    "output": (str, "run directory"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="fine-tune a causal LM with replay (compute-equivalent, exact per batch)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="YAML file with any of the keys below (flags override it)")
    for name, (typ, help_) in _FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None, help=help_)
    p.add_argument("--resume", action="store_true", default=None, help="continue from the newest checkpoint in --output")
    p.add_argument("--lora", action="store_true", default=None, help="train LoRA adapters (needs the 'lora' extra: peft)")
    p.add_argument("--no-plot", dest="plot", action="store_false", default=None, help="skip curves.png")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from replaymill.trainer.config import load_config

    overrides = {name: getattr(args, name) for name in (*_FLAGS, "resume", "lora", "plot")}
    try:
        cfg = load_config(args.config, overrides)
    except ValidationError as e:
        raise SystemExit(f"replaymill train: invalid configuration:\n{e}") from None
    from replaymill.trainer.loop import train  # torch and transformers only once the config is known to be valid

    result = train(cfg)
    if result.get("eval"):
        print("[train] final eval " + " ".join(f"{k}={v:.4f}" for k, v in result["eval"].items()))
    return 0
