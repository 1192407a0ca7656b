"""Token counts: a calibrated estimate that costs a few byte passes, and an exact count with a real tokenizer.

Why an estimate: shard manifests and token-weighted sampling need a token count for every
document, and running a BPE tokenizer over a whole corpus costs more than the rest of annotation.
The estimate is linear in ten character/word counts, whose weights were fitted by least squares
against OpenAI's cl100k_base BPE (the vocabulary of GPT-3.5/4, close to LLaMA-3's) over real
multilingual web text, 75-language sentences and Python source; `python -m bench.token_estimate`
refits them and prints the error per text kind (README, section annotate).
"""
from __future__ import annotations

import os
from typing import Any, Iterable

# Features, all counted on the UTF-8 bytes with C-speed bytes methods: runs of ASCII letters,
# ASCII letters, digits, ASCII punctuation/symbols, and non-ASCII characters by script block,
# counted by their UTF-8 lead bytes.
_LETTERS = bytes(range(ord("A"), ord("Z") + 1)) + bytes(range(ord("a"), ord("z") + 1))
_DIGITS = b"0123456789"
_PUNCT = bytes(c for c in range(33, 127) if not chr(c).isalnum())
_NOT = {name: bytes(c for c in range(256) if c not in keep) for name, keep in (
    ("letters", _LETTERS), ("digits", _DIGITS), ("punct", _PUNCT),
    ("latin", range(0xC2, 0xCA)),     # U+0080-U+024F: Latin-1 and Latin Extended
    ("alphabets", range(0xCA, 0xE0)),  # U+0280-U+07FF: IPA, Greek, Cyrillic, Armenian, Hebrew, Arabic
    ("brahmic", range(0xE0, 0xE2)),    # U+0800-U+1FFF: Indic, Thai, Georgian, Myanmar, Ethiopic, ...
    ("symbols", (0xE2,)),             # U+2000-U+2FFF: typographic punctuation and symbols
    ("cjk", range(0xE3, 0xF0)),        # U+3000-U+FFFF: kana, CJK ideographs, hangul, ...
    ("four_byte", range(0xF0, 0xF8)),  # beyond the BMP: emoji, rare CJK
)}
_NON_ASCII = ("latin", "alphabets", "brahmic", "symbols", "cjk", "four_byte")
_LETTER_RUNS = bytes(b"a"[0] if c in _LETTERS else b" "[0] for c in range(256))  # letters -> a, rest -> space

# Fitted weights (python -m bench.token_estimate, cl100k_base): tokens per unit of each feature.
WEIGHTS: dict[str, float] = {
    "ascii_words": 0.3959,
    "ascii_letters": 0.2062,
    "digits": 1.0187,
    "ascii_punct": 0.401,
    "latin": 1.9245,
    "alphabets": 0.7445,
    "brahmic": 1.4396,
    "symbols": 1.306,
    "cjk": 1.244,
    "four_byte": 4.4115,
}


def _count(data: bytes, name: str) -> int:
    """How many bytes of `data` are in the class `name` (deleting all the others, in C)."""
    return len(data.translate(None, _NOT[name]))


def token_features(text: str) -> dict[str, int]:
    """The counts the estimate is linear in."""
    data = text.encode("utf-8", "surrogatepass")
    ascii_only = len(data) == len(text)
    return {
        "ascii_words": len(data.translate(_LETTER_RUNS).split()),
        "ascii_letters": _count(data, "letters"),
        "digits": _count(data, "digits"),
        "ascii_punct": _count(data, "punct"),
        **{name: 0 if ascii_only else _count(data, name) for name in _NON_ASCII},
    }


def estimate_tokens(text: str) -> int:
    """Estimated BPE tokens of `text` (0 for empty text, at least 1 otherwise)."""
    if not text:
        return 0
    features = token_features(text)
    return max(1, round(sum(WEIGHTS[name] * value for name, value in features.items())))


def load_tokenizer(path: str) -> Any:
    """A local tokenizer, no download: a `tokenizer.json` file or a directory holding one (loaded
    with `tokenizers`: light, fast, no torch import), else a Hugging Face tokenizer directory
    without it (e.g. sentencepiece only; loaded with transformers' AutoTokenizer)."""
    json_path = path if path.endswith(".json") else os.path.join(path, "tokenizer.json")
    if os.path.isfile(json_path):
        from tokenizers import Tokenizer

        return Tokenizer.from_file(json_path)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "tokenizer.model",
                   "special_tokens_map.json", "added_tokens.json")


class TokenizerError(ValueError):
    """A `--tokenizer` path that cannot be loaded (one line: the reason)."""


def tokenizer_fingerprint(path: str) -> str:
    """sha256 over a tokenizer's files (a tokenizer.json, or the tokenizer files of a directory):
    equal fingerprints mean equal token counts."""
    import hashlib

    digest = hashlib.sha256()
    if os.path.isfile(path):
        files = [path]
    else:
        files = [os.path.join(path, n) for n in TOKENIZER_FILES if os.path.isfile(os.path.join(path, n))]
    for name in files:
        digest.update(os.path.basename(name).encode() + b"\0")
        with open(name, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def open_tokenizer(path: str) -> tuple[Any, dict[str, Any]]:
    """(tokenizer, counter description for the manifest) of a `--tokenizer` path; TokenizerError
    with one line if it is missing or does not load (never a download)."""
    if not os.path.exists(path):
        raise TokenizerError(f"--tokenizer {path}: no such file or directory")
    if os.path.isdir(path) and not any(os.path.isfile(os.path.join(path, n)) for n in TOKENIZER_FILES):
        raise TokenizerError(f"--tokenizer {path}: no tokenizer files ({', '.join(TOKENIZER_FILES[:2])}, ...)")
    try:
        tokenizer = load_tokenizer(path)
        count_tokens(["probe text"], tokenizer)
    except Exception as e:  # noqa: BLE001 - tokenizers and transformers raise many kinds for one cause: unusable
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TokenizerError(f"--tokenizer {path}: cannot load a tokenizer ({first})") from None
    vocab = tokenizer.get_vocab_size() if hasattr(tokenizer, "get_vocab_size") else len(tokenizer)
    return tokenizer, {"kind": "tokenizer", "name": os.path.basename(os.path.abspath(path).rstrip("/")),
                       "path": os.path.abspath(path), "sha256": tokenizer_fingerprint(path), "vocab_size": int(vocab)}


def count_tokens(texts: Iterable[str], tokenizer: Any) -> list[int]:
    """Exact token counts with a real tokenizer (either kind `load_tokenizer` returns), one batched
    call, no special tokens added."""
    texts = list(texts)
    if not texts:
        return []
    if hasattr(tokenizer, "encode_batch"):  # tokenizers.Tokenizer
        return [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
