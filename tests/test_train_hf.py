"""Real HF directories in and out: a run's `final/` opens with AutoTokenizer/AutoModelForCausalLM and
generates; GPT-2, Llama and Qwen-style local models train with their own BPE tokenizers; hub ids
resolve from the local HF cache offline; anything else is one clear error.

No network: tokenizers are trained here with `tokenizers`, models built from configs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoModelForCausalLM, AutoTokenizer

from replaymill.trainer.config import TrainConfig
from replaymill.trainer.errors import TrainError
from replaymill.trainer.loop import train
from replaymill.trainer.model import resolve_model
from replaymill.trainer.tokenizer import ByteTokenizer, HFTokenizer, byte_level_hf_tokenizer, load_tokenizer

GERMAN = "Über die Brücke gingen fünf Männer, während die Sonne über Köln unterging. Grüße!"
SMALL = {"seq_len": 32, "batch_size": 2, "warmup": 1, "lr": 3e-3, "eval_tokens": 256, "plot": False, "eval_every": 100}


@pytest.fixture(scope="module")
def task_file(shared_data) -> str:
    return str(shared_data / "prose" / "de-verne-20000.txt")


def _generates(directory: Path) -> None:
    """AutoTokenizer + AutoModelForCausalLM from `directory`: lossless German round trip, new tokens generated."""
    tok = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory)
    ids = tok(GERMAN, add_special_tokens=False)["input_ids"]
    assert len(ids) > 0 and tok.decode(ids) == GERMAN
    prompt = tok("Der Kapitän", return_tensors="pt")
    out = model.generate(**prompt, max_new_tokens=8, min_new_tokens=8, do_sample=True,
                         pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
    assert out.shape[1] == prompt["input_ids"].shape[1] + 8
    assert isinstance(tok.decode(out[0, prompt["input_ids"].shape[1]:]), str)


@settings(max_examples=80, deadline=None)
@given(text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_saved_byte_tokenizer_has_the_trainers_ids(text):
    hf = byte_level_hf_tokenizer()
    ids = hf(text, add_special_tokens=False)["input_ids"]
    assert ids == ByteTokenizer().encode(text).tolist()
    assert hf.decode(ids) == text


def test_byte_preset_final_is_a_working_hf_directory(tmp_path, task_file):
    out = tmp_path / "run"
    train(TrainConfig(model="tiny-llama", task=task_file, steps=2, output=str(out), **SMALL))
    final = out / "final"
    tok = AutoTokenizer.from_pretrained(final)
    assert len(tok) == 257 and tok.eos_token_id == 256
    assert tok("Hallo Welt", add_special_tokens=False)["input_ids"] == list(b"Hallo Welt")
    _generates(final)
    # and it is the next run's --model, with the same (fast numpy) tokenizer
    out2 = tmp_path / "again"
    train(TrainConfig(model=str(final), task=task_file, steps=1, output=str(out2), **SMALL))
    assert isinstance(load_tokenizer(str(out2 / "final")), ByteTokenizer)


def _bpe_tokenizer(texts: list[str], special: list[str], eos: str, bos: str | None):
    """A byte-level BPE trained here (like GPT-2's, Llama-3's or Qwen's), as a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, special_tokens=special, show_progress=False,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=raw, eos_token=eos, bos_token=bos, pad_token=eos,
                                   clean_up_tokenization_spaces=False)


def _make_hf_model(directory: Path, family: str, texts: list[str]) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    if family == "gpt2":
        tok = _bpe_tokenizer(texts, ["<|endoftext|>"], "<|endoftext|>", "<|endoftext|>")
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_layer=1, n_head=2, n_embd=32, n_positions=64,
                                           eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id))
    elif family == "llama":
        tok = _bpe_tokenizer(texts, ["<s>", "</s>"], "</s>", "<s>")
        model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                             max_position_embeddings=64, bos_token_id=tok.bos_token_id,
                                             eos_token_id=tok.eos_token_id))
    else:
        tok = _bpe_tokenizer(texts, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], "<|endoftext|>", None)
        model = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok) + 13, hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                             max_position_embeddings=64, eos_token_id=tok.eos_token_id,
                                             tie_word_embeddings=True))  # Qwen pads its embedding past the vocab
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def corpus(shared_data) -> list[str]:
    de = (shared_data / "prose" / "de-verne-20000.txt").read_text(encoding="utf-8")[:60000]
    en = (shared_data / "prose" / "en-tinyshakespeare.txt").read_text(encoding="utf-8")[:20000]
    return [p for p in (de + "\n\n" + en).split("\n\n") if p.strip()]


@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2"])
def test_local_hf_model_trains_with_its_own_tokenizer(tmp_path, family, corpus, task_file):
    base = _make_hf_model(tmp_path / f"{family}-base", family, corpus)
    out = tmp_path / "run"
    result = train(TrainConfig(model=str(base), task=task_file, steps=3, output=str(out), **SMALL))
    assert result["steps"] == 3 and np.isfinite(result["eval"]["task"])
    base_tok, final_tok = AutoTokenizer.from_pretrained(base), AutoTokenizer.from_pretrained(out / "final")
    assert final_tok.get_vocab() == base_tok.get_vocab() and final_tok.eos_token == base_tok.eos_token
    # the trainer packed the model's own BPE ids, not bytes: fewer tokens than characters
    assert len(HFTokenizer.from_directory(base).encode(GERMAN)) < len(GERMAN.encode())
    _generates(out / "final")
    before = AutoModelForCausalLM.from_pretrained(base).state_dict()
    after = AutoModelForCausalLM.from_pretrained(out / "final").state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # it really trained


def _cache_snapshot(cache: Path, repo_id: str, source: Path) -> Path:
    """Lay out `source` as the hub cache does after a download (refs/main -> snapshots/<commit>)."""
    import shutil

    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / f"models--{repo_id.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    shutil.copytree(source, root / "snapshots" / commit)
    return root / "snapshots" / commit


def test_hub_id_resolves_from_the_local_cache_offline(tmp_path, monkeypatch, corpus, task_file):
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    snapshot = _cache_snapshot(cache, "tiny-org/tiny-llama-de", _make_hf_model(tmp_path / "src", "llama", corpus))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert Path(resolve_model("tiny-org/tiny-llama-de")) == snapshot
    result = train(TrainConfig(model="tiny-org/tiny-llama-de", task=task_file, steps=1, output=str(tmp_path / "r"),
                               **SMALL))
    assert result["steps"] == 1 and (tmp_path / "r" / "final" / "tokenizer.json").exists()
    with pytest.raises(TrainError, match="not in the local HF cache"):
        resolve_model("tiny-org/not-downloaded")


def test_other_directories_are_one_clear_error(tmp_path, corpus, task_file):
    from transformers import T5Config

    T5Config(vocab_size=300, d_model=16, num_layers=1, num_heads=2).save_pretrained(tmp_path / "t5")  # seq2seq
    byte_level_hf_tokenizer().save_pretrained(tmp_path / "t5")
    with pytest.raises(TrainError, match="cannot load it as a causal LM"):
        train(TrainConfig(model=str(tmp_path / "t5"), task=task_file, steps=1, output=str(tmp_path / "a"), **SMALL))
    no_tok = _make_hf_model(tmp_path / "gpt2", "gpt2", corpus)
    (no_tok / "tokenizer.json").unlink()
    (no_tok / "tokenizer_config.json").unlink()
    with pytest.raises(TrainError, match="no tokenizer files"):
        train(TrainConfig(model=str(no_tok), task=task_file, steps=1, output=str(tmp_path / "b"), **SMALL))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_packed_rows_pass_a_mask_so_transformers_does_not_warn_of_padding():
    """Packed rows start and end with EOS, which GPT-2 also uses as pad: without an explicit mask,
    transformers warns on every run that the input "may be padded" (it is not)."""
    import logging

    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    from replaymill.trainer.evaluate import evaluate
    from replaymill.trainer.loop import token_losses

    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=1, n_head=2,
                                       pad_token_id=0, bos_token_id=0, eos_token_id=0))
    rows = np.array([[0, 5, 6, 7, 0, 9, 10, 0]] * 2, dtype=np.int64)
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    hf_logging.get_logger("transformers").addHandler(handler)
    try:
        logging.Logger.warning_once.cache_clear()  # transformers warns once per process
        model(input_ids=torch.from_numpy(rows))  # the unmasked call does warn: the check can fail
        assert any("attention_mask" in m for m in seen), seen
        seen.clear()
        logging.Logger.warning_once.cache_clear()
        token_losses(model, torch.from_numpy(rows), torch.device("cpu"))
        evaluate(model, rows, 2, torch.device("cpu"))
    finally:
        hf_logging.get_logger("transformers").removeHandler(handler)
    assert not any("attention_mask" in m for m in seen), seen
