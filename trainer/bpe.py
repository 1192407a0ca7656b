"""Training a byte-level BPE tokenizer offline and saving it as a Hugging Face tokenizer directory.

Why: experiments and tests need a model with a real subword tokenizer (the way base models count
and see text) without downloading one. `tokenizers` trains a byte-level BPE on local text in
seconds; wrapped as a `PreTrainedTokenizerFast` it loads with `AutoTokenizer`, so the model
directory it sits in is a plain HF directory that `replaymill train`, `probe` and `--tokenizer` use.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

END_OF_TEXT = "<|endoftext|>"


def train_bpe(texts: Iterable[str], vocab_size: int, directory: str | Path | None = None, min_frequency: int = 2):
    """A byte-level BPE with `vocab_size` entries (including the 256 byte symbols and one
    `<|endoftext|>` token that serves as BOS, EOS and padding), saved to `directory` if given."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 257 + 1:
        raise ValueError(f"a byte-level BPE needs vocab_size > 257, got {vocab_size}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[END_OF_TEXT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT,
                                   pad_token=END_OF_TEXT, model_max_length=1 << 30)
    if directory is not None:
        fast.save_pretrained(str(directory))
    return fast
