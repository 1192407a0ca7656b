"""Tokenized documents as one endless token stream (EOS after each document), cut to any length.

Packing fixed-length sequences from a stream wastes no tokens on padding. The stream's position
is (source position of the current document, token offset inside it), so a checkpoint can resume
in the middle of a document and produce the identical next tokens.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from replaymill.trainer.sources import DocSource
from replaymill.trainer.tokenizer import Tokenizer


class TokenStream:
    """`take(n)` returns the next n tokens of the documents of `source`, each followed by EOS."""

    def __init__(self, source: DocSource, tokenizer: Tokenizer):
        self.source = source
        self.tokenizer = tokenizer
        self._doc_state: dict[str, Any] = source.state_dict()  # source position *before* the current document
        self._tokens = np.empty(0, dtype=np.int64)
        self._offset = 0
        self.docs_read = 0

    def _next_document(self) -> None:
        self._doc_state = self.source.state_dict()  # a snapshot by the DocSource contract
        _, text = next(self.source)
        self._tokens = np.append(self.tokenizer.encode(text), self.tokenizer.eos_id).astype(np.int64)
        self._offset = 0
        self.docs_read += 1

    def take(self, n: int) -> np.ndarray:
        out = np.empty(n, dtype=np.int64)
        filled = 0
        while filled < n:
            if self._offset >= len(self._tokens):
                self._next_document()
            k = min(n - filled, len(self._tokens) - self._offset)
            out[filled:filled + k] = self._tokens[self._offset:self._offset + k]
            filled += k
            self._offset += k
        return out

    def state_dict(self) -> dict[str, Any]:
        if self._offset >= len(self._tokens):  # between documents: the source already points at the next one
            return {"source": self.source.state_dict(), "offset": 0}
        return {"source": self._doc_state, "offset": self._offset}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.source.load_state_dict(state["source"])
        self._tokens = np.empty(0, dtype=np.int64)
        self._offset = 0
        if state["offset"]:
            self._next_document()
            self._offset = int(state["offset"])


def pack_documents(texts: list[str], tokenizer: Tokenizer, seq_len: int) -> np.ndarray:
    """Whole documents (EOS-separated) packed into `[n, seq_len]` rows; the incomplete tail is dropped."""
    if not texts:
        return np.empty((0, seq_len), dtype=np.int64)
    eos = np.array([tokenizer.eos_id], dtype=np.int64)
    flat = np.concatenate([part for t in texts for part in (tokenizer.encode(t), eos)])
    n = len(flat) // seq_len
    return flat[: n * seq_len].reshape(n, seq_len)
