"""Tokenizers the trainer can use offline: a byte-level one needing no files, or a local HF tokenizer.

The byte tokenizer (256 byte ids + EOS) lets tests and the replay experiment build a model from a
config with no download; it is saved beside the model (`replaymill_tokenizer.json`) so resume and
evaluation reuse exactly the same ids.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np

BYTE_TOKENIZER_FILE = "replaymill_tokenizer.json"


class Tokenizer(Protocol):
    vocab_size: int
    eos_id: int

    def encode(self, text: str) -> np.ndarray: ...

    def save(self, directory: str | Path) -> None: ...


class ByteTokenizer:
    """UTF-8 bytes as ids 0..255, EOS = 256: lossless for any text, vectorized with numpy."""

    vocab_size = 257
    eos_id = 256

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8", errors="replace"), dtype=np.uint8).astype(np.int64)

    def save(self, directory: str | Path) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / BYTE_TOKENIZER_FILE).write_text(
            json.dumps({"type": "bytes", "vocab_size": self.vocab_size, "eos_id": self.eos_id}), encoding="utf-8"
        )


class HFTokenizer:
    """A tokenizer saved with a local model directory (AutoTokenizer, never downloading)."""

    def __init__(self, directory: str | Path):
        from transformers import AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        if self._tok.eos_token_id is None:
            raise ValueError(f"{directory}: tokenizer has no EOS token; packing needs one between documents")
        self.eos_id = int(self._tok.eos_token_id)
        self.vocab_size = len(self._tok)

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self._tok(text, add_special_tokens=False)["input_ids"], dtype=np.int64)

    def save(self, directory: str | Path) -> None:
        self._tok.save_pretrained(str(directory))


def load_tokenizer(model: str) -> Tokenizer:
    """The tokenizer belonging to `model`: its saved byte tokenizer, its HF tokenizer, or bytes for a preset."""
    path = Path(model)
    if path.is_dir():
        if (path / BYTE_TOKENIZER_FILE).exists():
            return ByteTokenizer()
        if any((path / name).exists() for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
            return HFTokenizer(path)
        raise FileNotFoundError(f"{model}: no tokenizer files ({BYTE_TOKENIZER_FILE} or tokenizer.json)")
    return ByteTokenizer()
