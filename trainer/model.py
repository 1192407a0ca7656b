"""Building, wrapping (LoRA) and saving the causal LM, offline.

`--model` is a local directory (`save_pretrained` output, e.g. a previous run's `final/`) or the
name of a preset built from a config in code, so tests and the replay experiment never download.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, PreTrainedModel

from replaymill.trainer.tokenizer import Tokenizer

# Small enough to train on a CPU in seconds; sizes are overridable with `model_overrides`.
PRESETS: dict[str, tuple[type, dict[str, Any]]] = {
    "tiny-gpt2": (GPT2Config, dict(n_layer=2, n_head=2, n_embd=64, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)),
    "tiny-llama": (LlamaConfig, dict(hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                                     num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True)),
}


def build_model(name: str, tokenizer: Tokenizer, seq_len: int, overrides: dict[str, Any]) -> PreTrainedModel:
    """A local model directory loaded, or a preset initialised from the global torch seed."""
    path = Path(name)
    if path.is_dir():
        if overrides:
            raise ValueError("model_overrides applies to presets only, not to a saved model directory")
        model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype=torch.float32)
    elif name in PRESETS:
        config_cls, fields = PRESETS[name]
        fields = {**fields, **overrides}
        if config_cls is GPT2Config:
            fields.setdefault("n_positions", max(seq_len, 128))
        else:
            fields.setdefault("max_position_embeddings", max(seq_len, 128))
        config = config_cls(vocab_size=tokenizer.vocab_size, bos_token_id=tokenizer.eos_id,
                            eos_token_id=tokenizer.eos_id, **fields)
        model = AutoModelForCausalLM.from_config(config)
    else:
        raise FileNotFoundError(
            f"--model {name!r} is neither a local model directory nor a preset ({', '.join(PRESETS)}); "
            "replaymill never downloads models"
        )
    if model.config.vocab_size < tokenizer.vocab_size:
        raise ValueError(f"model vocab {model.config.vocab_size} < tokenizer vocab {tokenizer.vocab_size}")
    return model


def add_lora(model: PreTrainedModel, r: int, alpha: int, dropout: float) -> torch.nn.Module:
    """Freeze the base model and train low-rank adapters on every linear layer (needs the `lora` extra)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("--lora needs peft: pip install 'replaymill[lora]'") from e
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def save_final(model: torch.nn.Module, tokenizer: Tokenizer, directory: str | Path) -> None:
    """A plain HF model directory (LoRA merged in) plus its tokenizer, usable as the next run's --model."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(str(directory))
    tokenizer.save(directory)


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
