"""`replaymill train`: fine-tune a causal LM on task data with a compute-equivalent share of replay.

Every TrainConfig field is a flag (the flags are generated from the config model, so a new key
cannot lack one); `--config train.yaml` supplies any of them and flags given on the command line
override the file. Under `torchrun --nproc_per_node N` each process is one DDP rank.
"""
from __future__ import annotations

import argparse
import sys
import types
import typing
from typing import Any

import yaml

from replaymill.pipeline.cli.errors import UsageError

EPILOG = """\
examples:
  # fine-tune a local HF model on German text with 5% replay from a shard set
  replaymill train --model models/llama-1b --task data/de.jsonl --replay out/replay --replay-ratio 0.05 \\
      --seq-len 1024 --batch-size 8 --grad-accum 4 --steps 2000 --output runs/de-r05

  # a preset built in code (byte tokenizer), sized with --model-overrides; replay drawn in LLaMA-1's mix
  replaymill train --model tiny-llama --model-overrides '{hidden_size: 128, num_hidden_layers: 4}' \\
      --task data/task.txt --replay out/pool --replay-target llama1 --replay-on-short renormalize \\
      --replay-ratio 0.25 --steps 200 --output runs/tiny

  replaymill train --config train.yaml --steps 500                # YAML keys = flag names; flags win
  replaymill train --config train.yaml --resume --steps 4000      # continue, or extend a finished run
  replaymill train ... --report-to tensorboard                    # also OUTPUT/tensorboard (wandb: offline)
  torchrun --standalone --nproc_per_node 4 -m replaymill.pipeline.cli train --config train.yaml   # DDP

outputs: OUTPUT/config.yaml, log.jsonl (one record per step and evaluation), checkpoints/step-N/,
final/ (a plain HF model directory with its tokenizer: AutoModelForCausalLM / AutoTokenizer open it),
curves.png (training loss and held-out task / replay loss, titled with the model and replay share).
"""

_FLAG_META = {"model": "DIR|HUB_ID|PRESET", "model_overrides": "YAML", "attn_implementation": "KERNEL",
              "task": "PATH", "replay": "DIR", "replay_target": "PRESET|YAML", "task_eval": "PATH",
              "replay_eval": "PATH", "output": "DIR", "betas": "B1,B2", "report_to": "TRACKER"}


def _mapping(text: str) -> dict[str, Any]:
    """`--model-overrides '{hidden_size: 128}'` (YAML or JSON) -> dict."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a mapping such as '{{hidden_size: 128}}', got {text!r}")
    return value


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0.9,0.95, got {text!r}") from None


def _add_field(p: argparse.ArgumentParser, name: str, field) -> None:
    """One `--flag` for one TrainConfig field, typed from its annotation, with its default in the help."""
    flag = "--" + name.replace("_", "-")
    ann = field.annotation
    args = [a for a in typing.get_args(ann) if a is not type(None)]
    if typing.get_origin(ann) in (typing.Union, types.UnionType) and len(args) == 1:
        ann = args[0]
    origin = typing.get_origin(ann)
    help_ = field.description or ""
    if field.is_required():
        help_ += " (required, here or in --config)"
    elif ann is not bool and field.default not in (None, [], {}) and not callable(field.default_factory):
        help_ += f" (default: {field.default if not isinstance(field.default, tuple) else ','.join(map(str, field.default))})"
    kw: dict[str, Any] = {"dest": name, "default": None, "help": help_}
    if ann is bool:
        p.add_argument(flag, action=argparse.BooleanOptionalAction, **{**kw, "help": help_ + f" (default: {field.default})"})
        return
    if origin is typing.Literal:
        kw["choices"] = typing.get_args(ann)
    elif origin is list:
        kw.update(nargs="+", choices=typing.get_args(typing.get_args(ann)[0]) or None)
    elif origin is tuple:
        kw["type"] = _floats
    elif origin is dict or ann is dict:
        kw["type"] = _mapping
    elif ann in (int, float):
        kw["type"] = ann
    if name in _FLAG_META:
        kw["metavar"] = _FLAG_META[name]
    elif ann in (int, float):
        kw["metavar"] = "N" if ann is int else "X"
    p.add_argument(flag, **kw)


def register(subparsers: argparse._SubParsersAction) -> None:
    from replaymill.trainer.config import TrainConfig

    p = subparsers.add_parser(
        "train", help="fine-tune a causal LM with replay (compute-equivalent, exact per batch)",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="YAML", help="YAML file with any of the keys below (flags override it)")
    for name, field in TrainConfig.model_fields.items():
        _add_field(p, name, field)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from replaymill.trainer.config import TrainConfig, load_config
    from replaymill.trainer.errors import TrainError, data_errors, one_line

    overrides = {name: getattr(args, name) for name in TrainConfig.model_fields}
    try:
        cfg = load_config(args.config, overrides)
        from replaymill.trainer.loop import train  # torch and transformers only once the config is known to be valid

        result = train(cfg)
    except TrainError as e:
        raise UsageError(one_line(e)) from None
    except KeyboardInterrupt:
        print("replaymill train: interrupted; rerun with --resume to continue from the newest checkpoint",
              file=sys.stderr)
        return 130
    except Exception as e:
        if isinstance(e, data_errors()):  # found while reading data mid-run: a corrupt shard, a short domain
            raise UsageError(one_line(e)) from None
        raise
    if result.get("eval"):
        print("[train] final eval " + " ".join(f"{k}={v:.4f}" for k, v in result["eval"].items()))
    return 0
