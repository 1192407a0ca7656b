"""Tokenizers the trainer can use offline: byte-level (no files needed) or the model's own HF tokenizer.

The byte tokenizer (256 byte ids + EOS) lets tests and the replay experiment build a model from a
config with no download. It encodes with numpy (fast) but is saved as a real
`PreTrainedTokenizerFast` (a byte-level BPE with no merges, ids identical to the numpy path,
tested), so a run's `final/` opens with `AutoTokenizer` and generates text like any HF model.
A marker file beside it tells the trainer to keep using the numpy path on resume or fine-tuning.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from replaymill.trainer.errors import TrainError

BYTE_TOKENIZER_FILE = "replaymill_tokenizer.json"
EOS_TOKEN = "<|endoftext|>"
HF_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")


class Tokenizer(Protocol):
    vocab_size: int
    eos_id: int

    def encode(self, text: str) -> np.ndarray: ...

    def save(self, directory: str | Path) -> None: ...


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map, the one the `ByteLevel` pre-tokenizer uses."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


@lru_cache(maxsize=1)
def byte_level_hf_tokenizer():
    """A `PreTrainedTokenizerFast` whose ids are the UTF-8 bytes (0..255) and EOS = 256."""
    from tokenizers import Tokenizer as RawTokenizer
    from tokenizers import decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {char: byte for byte, char in bytes_to_unicode().items()}
    vocab[EOS_TOKEN] = 256
    raw = RawTokenizer(models.BPE(vocab=vocab, merges=[]))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    raw.decoder = decoders.ByteLevel()
    raw.add_special_tokens([EOS_TOKEN])
    return PreTrainedTokenizerFast(tokenizer_object=raw, eos_token=EOS_TOKEN, bos_token=EOS_TOKEN,
                                   pad_token=EOS_TOKEN, clean_up_tokenization_spaces=False)


class ByteTokenizer:
    """UTF-8 bytes as ids 0..255, EOS = 256: lossless for any text, vectorized with numpy."""

    vocab_size = 257
    eos_id = 256

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8", errors="replace"), dtype=np.uint8).astype(np.int64)

    def save(self, directory: str | Path) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        byte_level_hf_tokenizer().save_pretrained(str(directory))
        (Path(directory) / BYTE_TOKENIZER_FILE).write_text(
            json.dumps({"type": "bytes", "vocab_size": self.vocab_size, "eos_id": self.eos_id}), encoding="utf-8"
        )


class HFTokenizer:
    """An HF tokenizer (a model directory's own, or any tokenizer object a user passes).

    Encodes through the Rust backend directly when there is one (several times faster per
    document than the Python call), without special tokens: documents are packed with EOS only.
    """

    def __init__(self, tokenizer, label: str = "tokenizer"):
        self._tok = tokenizer
        if tokenizer.eos_token_id is None:
            raise TrainError(f"{label}: tokenizer has no EOS token; packing needs one between documents")
        self.eos_id = int(tokenizer.eos_token_id)
        self.vocab_size = len(self._tok)
        self._backend = getattr(self._tok, "backend_tokenizer", None)

    def encode(self, text: str) -> np.ndarray:
        if self._backend is not None:
            ids = self._backend.encode(text, add_special_tokens=False).ids
        else:
            ids = self._tok(text, add_special_tokens=False)["input_ids"]
        return np.asarray(ids, dtype=np.int64)

    def save(self, directory: str | Path) -> None:
        self._tok.save_pretrained(str(directory))

    @classmethod
    def from_directory(cls, directory: str | Path) -> HFTokenizer:
        """AutoTokenizer from a local directory, never downloading."""
        from transformers import AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        except (OSError, ValueError, ImportError) as e:
            raise TrainError(f"{directory}: cannot load its tokenizer ({str(e).splitlines()[0] if str(e) else e!r})") from None
        return cls(tok, label=str(directory))


def load_tokenizer(model: str) -> Tokenizer:
    """The tokenizer of a resolved model (`model.resolve_model`): bytes for a preset, else the directory's own."""
    path = Path(model)
    if not path.is_dir():
        return ByteTokenizer()
    if (path / BYTE_TOKENIZER_FILE).exists():
        return ByteTokenizer()
    if any((path / name).exists() for name in HF_TOKENIZER_FILES):
        return HFTokenizer.from_directory(path)
    raise TrainError(f"{model}: no tokenizer files ({BYTE_TOKENIZER_FILE} or tokenizer.json); "
                     "save the tokenizer beside the model (tokenizer.save_pretrained(dir))")


def as_tokenizer(tokenizer) -> Tokenizer:
    """What `ReplayDataset` accepts as a tokenizer: "bytes" (default), a model directory / cached hub id /
    preset name, an HF tokenizer object, or anything with `encode(text) -> ids`, `eos_id` and `vocab_size`."""
    if tokenizer is None or tokenizer == "bytes":
        return ByteTokenizer()
    if isinstance(tokenizer, (str, Path)):
        from replaymill.trainer.model import resolve_model

        return load_tokenizer(resolve_model(str(tokenizer)))
    if hasattr(tokenizer, "eos_token_id") and hasattr(tokenizer, "save_pretrained"):
        return HFTokenizer(tokenizer)
    if all(hasattr(tokenizer, a) for a in ("encode", "eos_id", "vocab_size")):
        return tokenizer
    raise TrainError(f"not a tokenizer: {type(tokenizer).__name__} (pass 'bytes', a model directory or an HF tokenizer)")
