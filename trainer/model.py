"""Resolving, building, wrapping (LoRA) and saving the causal LM, offline.

`--model` is a local HF model directory (`save_pretrained` output: GPT-2, Llama, Qwen, ... or a
previous run's `final/`), a hub id whose snapshot is already in the local HF cache (looked up
with `local_files_only`, never downloaded), or the name of a preset built from a config in code.
"""
from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, PreTrainedModel

from replaymill.trainer.errors import TrainError
from replaymill.trainer.tokenizer import Tokenizer

# Small enough to train on a CPU in seconds; sizes are overridable with `model_overrides`.
PRESETS: dict[str, tuple[type, dict[str, Any]]] = {
    "tiny-gpt2": (GPT2Config, dict(n_layer=2, n_head=2, n_embd=64, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)),
    "tiny-llama": (LlamaConfig, dict(hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                                     num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True)),
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@contextlib.contextmanager
def quiet_hf_progress():
    """No transformers progress bars ("Loading weights", "Writing model shards") inside the run's console lines."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def resolve_model(name: str) -> str:
    """A preset name as is, else a local model directory: `name` itself or its cached hub snapshot."""
    if name in PRESETS:
        return name
    path = Path(name)
    if path.is_dir():
        if not (path / "config.json").exists():
            raise TrainError(f"--model {name}: the directory has no config.json (not a save_pretrained model)")
        return str(path)
    if _HUB_ID.match(name) and not path.exists():
        from huggingface_hub import snapshot_download
        from huggingface_hub.constants import HF_HUB_CACHE

        try:
            snapshot = snapshot_download(name, local_files_only=True)
        except Exception:  # LocalEntryNotFoundError, or a malformed cache entry: either way not usable offline
            raise TrainError(f"--model {name}: not in the local HF cache ({HF_HUB_CACHE}); replaymill never downloads, "
                             f"fetch it first (huggingface-cli download {name})") from None
        if not (Path(snapshot) / "config.json").exists():
            raise TrainError(f"--model {name}: the cached snapshot {snapshot} has no config.json")
        return snapshot
    raise TrainError(f"--model {name!r} is neither a local model directory, a hub id in the local HF cache, "
                     f"nor a preset ({', '.join(PRESETS)}); replaymill never downloads models")


def build_model(model: str, tokenizer: Tokenizer, seq_len: int, overrides: dict[str, Any],
                attn_implementation: str | None = None) -> PreTrainedModel:
    """A resolved model directory loaded (fp32 master weights), or a preset initialised from the torch seed."""
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    if model in PRESETS:
        config_cls, fields = PRESETS[model]
        unknown = sorted(k for k in overrides if not hasattr(config_cls(), k))
        if unknown:
            raise TrainError(f"--model-overrides: {', '.join(unknown)} not a field of {config_cls.__name__}")
        fields = {**fields, **overrides}
        if config_cls is GPT2Config:
            fields.setdefault("n_positions", max(seq_len, 128))
        else:
            fields.setdefault("max_position_embeddings", max(seq_len, 128))
        try:
            config = config_cls(vocab_size=tokenizer.vocab_size, bos_token_id=tokenizer.eos_id,
                                eos_token_id=tokenizer.eos_id, pad_token_id=tokenizer.eos_id, **fields)
        except (TypeError, ValueError) as e:
            raise TrainError(f"--model-overrides for {model}: {e}") from None
        net = AutoModelForCausalLM.from_config(config, **extra)
    else:
        if overrides:
            raise TrainError("--model-overrides applies to presets only, not to a saved model directory")
        try:
            with quiet_hf_progress():
                net = AutoModelForCausalLM.from_pretrained(model, local_files_only=True, dtype=torch.float32, **extra)
        except (OSError, ValueError, KeyError) as e:
            raise TrainError(f"--model {model}: cannot load it as a causal LM ({str(e).splitlines()[0]})") from None
    if net.config.vocab_size < tokenizer.vocab_size:
        raise TrainError(f"--model {model}: model vocab {net.config.vocab_size} < tokenizer vocab {tokenizer.vocab_size}")
    return net


def add_lora(model: PreTrainedModel, r: int, alpha: int, dropout: float) -> torch.nn.Module:
    """Freeze the base model and train low-rank adapters on every linear layer (needs the `lora` extra)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:  # pragma: no cover - depends on the environment
        raise TrainError("--lora needs peft: pip install 'replaymill[lora]'") from None
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def save_final(model: torch.nn.Module, tokenizer: Tokenizer, directory: str | Path) -> None:
    """A plain HF model directory (LoRA merged in) plus its tokenizer: `AutoModelForCausalLM` and
    `AutoTokenizer` open it, and it is usable as the next run's --model."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    with quiet_hf_progress():
        model.save_pretrained(str(directory))
    tokenizer.save(directory)


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
