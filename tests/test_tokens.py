"""Token counts: the calibrated estimate against a real BPE, and the exact path with a local tokenizer."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from replaymill.transforms.tokens import count_tokens, estimate_tokens, load_tokenizer


def _pages(shared_data) -> list[str]:
    with gzip.open(shared_data / "dolma-cc" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz", "rt") as f:
        return [t for t in (json.loads(line)["text"] for line in f) if t.strip()][:200]


def test_estimate_is_close_to_cl100k_on_real_pages(shared_data):
    bpe_openai = pytest.importorskip("bpe_openai")
    enc = bpe_openai.get_encoding("cl100k_base")
    pages = _pages(shared_data)
    true = np.array([len(enc.encode(p)) for p in pages], dtype=float)
    est = np.array([estimate_tokens(p) for p in pages], dtype=float)
    bytes4 = np.array([len(p.encode()) / 4 for p in pages])
    assert 0.85 < est.sum() / true.sum() < 1.15
    assert np.median(np.abs(est / true - 1)) < np.median(np.abs(bytes4 / true - 1))  # beats bytes/4


def test_estimate_basics():
    assert estimate_tokens("") == 0
    assert estimate_tokens("a") == 1
    text = "The quick brown fox jumps over the lazy dog. " * 20
    assert 140 <= estimate_tokens(text) <= 260  # 200 tokens in cl100k_base; the estimate is within 30%
    assert estimate_tokens("这是一个测试。" * 10) > estimate_tokens("这是一个测试。")


def test_count_tokens_with_a_local_tokenizer(tmp_path, shared_data):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(_pages(shared_data)[:50], trainers.BpeTrainer(vocab_size=500, special_tokens=["[UNK]"]))
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    tokenizer = load_tokenizer(str(path))
    texts = ["Hello world, this is replaymill.", "", "Zweiter Satz auf Deutsch."]
    assert count_tokens(texts, tokenizer) == [len(tok.encode(t).ids) for t in texts]
    assert count_tokens([], tokenizer) == []


def test_count_tokens_with_a_tokenizer_directory(tmp_path, shared_data):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(_pages(shared_data)[:50], trainers.BpeTrainer(vocab_size=300, special_tokens=["[UNK]"]))
    (tmp_path / "tok").mkdir()
    tok.save(str(tmp_path / "tok" / "tokenizer.json"))  # the layout save_pretrained writes
    tokenizer = load_tokenizer(str(tmp_path / "tok"))
    texts = ["Hello world, this is replaymill.", "Zweiter Satz auf Deutsch."]
    assert count_tokens(texts, tokenizer) == [len(tok.encode(t).ids) for t in texts]
