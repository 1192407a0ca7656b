"""Probing a base model: unconditional samples of its own text, as a DSIR reference.

Why: a model that ships no data card still carries its pre-training distribution. Prompted with
nothing but the document separator (BOS, or EOS where training packed documents after an EOS),
an autoregressive LM samples a fresh document the way it learned documents start, so a few
hundred such samples are a reference whose hashed n-grams DSIR (`replaymill sample --reference`)
can match in an open pool, and whose share of documents per domain estimates the mixture.

`probe_model` streams one JSON line per sample, each carrying the generation settings, so the
file is self-describing and a reader can stop at any point.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

PROMPTS = ("bos", "eos")


class ProbeError(ValueError):
    """The model directory or the settings cannot be used (one line: the reason)."""


@dataclass(frozen=True)
class ProbeSettings:
    """What defines a probe's samples (recorded on every output line)."""

    samples: int = 256
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    batch_size: int = 32
    prompt: str = "eos"
    device: str = "auto"

    def validate(self) -> None:
        if self.samples <= 0:
            raise ProbeError(f"--samples must be positive, got {self.samples}")
        if self.max_new_tokens <= 0:
            raise ProbeError(f"--max-new-tokens must be positive, got {self.max_new_tokens}")
        if self.temperature <= 0:
            raise ProbeError(f"--temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ProbeError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.batch_size <= 0:
            raise ProbeError(f"--batch-size must be positive, got {self.batch_size}")
        if self.prompt not in PROMPTS:
            raise ProbeError(f"--prompt must be one of {', '.join(PROMPTS)}, got {self.prompt!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ProbeError(f"--device must be auto, cpu, cuda or cuda:N, got {self.device!r}")


def resolve_device(name: str):
    """`auto` -> the first CUDA device when one is visible, else the CPU."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ProbeError(f"--device {name}: no CUDA device is visible")
    return device


def load_model(model_dir: str, device) -> tuple[Any, Any]:
    """(model, tokenizer) of a local HF causal-LM directory, offline; ProbeError names what is wrong."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the weight-loading bar would interleave with streamed output
    path = Path(model_dir)
    if not path.is_dir():
        raise ProbeError(f"model directory {model_dir} does not exist")
    if not (path / "config.json").is_file():
        raise ProbeError(f"{model_dir} is not a Hugging Face model directory (no config.json)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as e:  # noqa: BLE001 - transformers raises many kinds (OSError, ValueError, KeyError) for one cause
        raise ProbeError(f"{model_dir}: cannot load its tokenizer ({_first_line(e)})") from None
    if len(tokenizer) == 0:
        raise ProbeError(f"{model_dir}: its tokenizer has an empty vocabulary")
    dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype=dtype)
    except Exception as e:  # noqa: BLE001 - as above: any failure here means "not a loadable causal LM"
        raise ProbeError(f"{model_dir}: cannot load a causal LM ({_first_line(e)})") from None
    return model.to(device).eval(), tokenizer


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def prompt_id(model, tokenizer, prompt: str) -> int:
    """The separator token that starts a document: BOS or EOS, from the tokenizer or the model config."""
    candidates = ((tokenizer.bos_token_id, model.config.bos_token_id) if prompt == "bos"
                  else (tokenizer.eos_token_id, model.config.eos_token_id))
    for token in candidates:
        if isinstance(token, list):
            token = token[0] if token else None
        if token is not None:
            return int(token)
    raise ProbeError(f"the model defines no {prompt.upper()} token; try --prompt {'eos' if prompt == 'bos' else 'bos'}")


class Probe:
    """A loaded model ready to sample; construction does every check, so a bad directory fails
    before any output is opened."""

    def __init__(self, model_dir: str, settings: ProbeSettings):
        settings.validate()
        self.settings = settings
        self.device = resolve_device(settings.device)
        self.model, self.tokenizer = load_model(model_dir, self.device)
        self.start = prompt_id(self.model, self.tokenizer, settings.prompt)
        tok, cfg = self.tokenizer, self.model.config
        self.eos = tok.eos_token_id if tok.eos_token_id is not None else cfg.eos_token_id
        self.pad = tok.pad_token_id if tok.pad_token_id is not None else (self.eos if self.eos is not None else self.start)
        # Beyond the positions it was trained on a model's text degrades (RoPE, learned positions):
        # generation stops at the model's context, and the record says so.
        context = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
        self.max_new_tokens = settings.max_new_tokens
        if context and settings.max_new_tokens > context - 1:
            self.max_new_tokens = int(context) - 1
        self.recorded = {**asdict(settings), "max_new_tokens": self.max_new_tokens,
                         "model": str(Path(model_dir).resolve()), "device": str(self.device),
                         "prompt_token_id": self.start}
        if self.max_new_tokens != settings.max_new_tokens:
            self.recorded["requested_max_new_tokens"] = settings.max_new_tokens

    def samples(self) -> Iterator[dict[str, Any]]:
        """One record per sample, batch by batch: id, text, n_tokens, stop ("eos" | "length"), settings."""
        import torch

        s = self.settings
        done = batch_no = 0
        while done < s.samples:
            n = min(s.batch_size, s.samples - done)
            # One seed per batch: any prefix of the output is reproducible without regenerating the rest.
            torch.manual_seed(s.seed * 1_000_003 + batch_no)
            ids = torch.full((n, 1), self.start, dtype=torch.long, device=self.device)
            with torch.no_grad():
                out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                          temperature=s.temperature, top_p=s.top_p, top_k=0,
                                          max_new_tokens=self.max_new_tokens, eos_token_id=self.eos,
                                          pad_token_id=self.pad)
            for row in out[:, 1:].tolist():
                stop = "length"
                if self.eos is not None and self.eos in row:
                    row, stop = row[:row.index(self.eos)], "eos"
                yield {"id": f"probe-s{s.seed}-{done:06d}",
                       "text": self.tokenizer.decode(row, skip_special_tokens=True),
                       "n_tokens": len(row), "stop": stop, "settings": self.recorded}
                done += 1
            batch_no += 1


def write_jsonl(records: Iterator[dict[str, Any]], out: IO[str]) -> dict[str, Any]:
    """Write records as JSON lines, flushing after each, and return a summary (counts, tokens, seconds)."""
    t0 = time.perf_counter()
    n = tokens = eos_stops = empty = 0
    for rec in records:
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        out.flush()
        n += 1
        tokens += rec["n_tokens"]
        eos_stops += rec["stop"] == "eos"
        empty += not rec["text"].strip()
    seconds = time.perf_counter() - t0
    return {"samples": n, "tokens": tokens, "stopped_at_eos": eos_stops, "empty": empty, "seconds": seconds,
            "tokens_per_s": tokens / max(seconds, 1e-9)}
