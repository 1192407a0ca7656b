"""Held-out loss on task data (learning) and on replay data (forgetting), the two curves a user watches.

Held-out sets are either given explicitly (`task_eval`, `replay_eval`: any data path) or the
documents whose id hashes below `eval_fraction` (never trained on, see `sources.is_held_out`).
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from replaymill.trainer.config import TrainConfig
from replaymill.trainer.data import DataSpec
from replaymill.trainer.packing import pack_documents
from replaymill.trainer.sources import held_out_shard_documents, is_shard_set, load_documents
from replaymill.trainer.tokenizer import Tokenizer


def _documents(spec: str, held_out: float | None, max_chars: int) -> list[str]:
    """Texts of `spec`: all of it for an explicit eval set (`held_out` None), else its held-out part."""
    fraction = 1.0 if held_out is None else held_out
    if is_shard_set(spec):
        from replaymill.shards.reader import ShardSet

        docs = held_out_shard_documents(ShardSet.open(spec), fraction, max_chars)
    else:
        docs = load_documents(spec, held_out=fraction, keep="eval")
    texts, chars = [], 0
    for _, text in docs:
        texts.append(text)
        chars += len(text)
        if chars >= max_chars:
            break
    return texts


def build_eval_sets(cfg: TrainConfig | DataSpec, tokenizer: Tokenizer) -> dict[str, np.ndarray]:
    """{"task": rows, "replay": rows} of packed held-out tokens (`[n, seq_len]`, at most eval_tokens)."""
    max_rows = max(1, cfg.eval_tokens // cfg.seq_len)
    max_chars = cfg.eval_tokens * 8  # generous: a BPE token is ~4 chars, a byte token 1
    out: dict[str, np.ndarray] = {}
    for name, explicit, stream in (("task", cfg.task_eval, cfg.task), ("replay", cfg.replay_eval, cfg.replay)):
        if explicit:
            spec, texts = explicit, _documents(explicit, None, max_chars)
        elif stream and cfg.eval_fraction > 0:
            spec, texts = stream, _documents(stream, cfg.eval_fraction, max_chars)
        else:
            continue
        rows = pack_documents(texts, tokenizer, cfg.seq_len)[:max_rows]
        if len(rows) == 0:
            raise ValueError(f"held-out {name} set from {spec} has fewer than seq_len={cfg.seq_len} tokens; "
                             "raise eval_fraction or give an explicit eval set")
        out[name] = rows
    return out


def causal_logits(model: torch.nn.Module, ids: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The model's logits for packed rows `ids`, under bf16 autocast on CUDA (training and eval alike)."""
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    with autocast:
        # Packed rows have no padding; an explicit all-ones mask says so (EOS doubles as pad, so
        # transformers would otherwise warn that the input may be padded).
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits


@torch.no_grad()
def evaluate(model: torch.nn.Module, rows: np.ndarray, batch_size: int, device: torch.device) -> float:
    """Mean next-token cross-entropy (nats) over every predicted token of `rows`."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(rows), batch_size):
        ids = torch.from_numpy(rows[start:start + batch_size]).to(device)
        logits = causal_logits(model, ids, device)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), ids[:, 1:].reshape(-1),
                               reduction="sum")
        total += float(loss)
        count += ids[:, 1:].numel()
    model.train(was_training)
    return total / count
