"""Per-language resources of the word-based quality rules: stop words and FineWeb-2's thresholds.

Gopher's rules were written for English: its stop-word rule counts eight English words, so every
German page fails it, and its word-length and repetition bounds were fitted on English. Here:

- Stop words: English keeps Gopher's eight (the published rule). Any other language uses the
  stopwords-iso list of that language (PyPI `stopwordsiso`, 58 languages), or a file the recipe
  names (`quality.stop_words: {de: my-de.txt}`, one word a line). A language with neither has no
  stop-word rule (it is skipped, not failed). Counting is case-insensitive; a word with an elided
  article (`l'homme`, `dell'anno`) also counts when its part before the apostrophe is listed.
- Thresholds: where FineWeb-2 published per-language values (huggingface/fineweb-2 `configs/
  <lang>_<script>.yml`, commit 05e6729 / baedee4; the languages below), they replace the published
  English defaults for documents of that language: mean word length bounds, the alphabetic-word
  fraction, duplicate-line and n-gram repetition bounds, the line-punctuation and newline ratios. A
  threshold a recipe changed from its default is the recipe's choice and applies to every language.

Both feed `check_rules` and the 0-1 `quality` score, so a German page is scored against German
bounds and the score means "how far inside its language's bounds", comparable across languages.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

ENGLISH = "en"
FINEWEB2_SOURCE = "huggingface/fineweb-2 configs/<lang>_<script>.yml (commits 05e6729, baedee4)"

# FineWeb-2's published per-language values, as (rule set, threshold field) -> value. Their names:
# min/max_avg_word_length, max_non_alpha_words_ratio (a minimum alphabetic-word fraction in
# datatrove), dup_line_frac, top_n_grams (2-4), dup_n_grams (5-10), line_punct_thr, new_line_ratio.
_FW2_RAW: dict[str, dict[str, object]] = {
    "de": {"min_avg_word_length": 0, "max_avg_word_length": 15, "max_non_alpha_words_ratio": 0.774,
           "dup_line_frac": 0.263, "top_n_grams": (0.169, 0.153, 0.137),
           "dup_n_grams": (0.141, 0.134, 0.126, 0.117, 0.108, 0.098), "line_punct_thr": 0.0, "new_line_ratio": 0.152},
    "fr": {"min_avg_word_length": 2, "max_avg_word_length": 11, "max_non_alpha_words_ratio": 0.812,
           "dup_line_frac": 0.264, "top_n_grams": (0.161, 0.149, 0.134),
           "dup_n_grams": (0.15, 0.141, 0.131, 0.121, 0.111, 0.1), "line_punct_thr": 0.1, "new_line_ratio": 0.185},
    "es": {"min_avg_word_length": 4, "max_avg_word_length": 14, "max_non_alpha_words_ratio": 0.825,
           "dup_line_frac": 0.265, "top_n_grams": (0.077, 0.097, 0.112),
           "dup_n_grams": (0.152, 0.137, 0.123, 0.114, 0.107, 0.099), "line_punct_thr": 0.3, "new_line_ratio": 0.171},
}


def _fineweb2_overrides(raw: dict[str, object]) -> dict[tuple[str, str], float]:
    out = {
        ("gopher_quality", "min_mean_word_length"): raw["min_avg_word_length"],
        ("gopher_quality", "max_mean_word_length"): raw["max_avg_word_length"],
        ("gopher_quality", "min_alpha_word_frac"): raw["max_non_alpha_words_ratio"],
        ("gopher_repetition", "max_dup_line_frac"): raw["dup_line_frac"],
        ("fineweb", "min_line_punct_ratio"): raw["line_punct_thr"],
        ("fineweb", "max_list_ratio"): raw["new_line_ratio"],
    }
    out.update({("gopher_repetition", f"max_top_{n}gram_char_frac"): v for n, v in zip((2, 3, 4), raw["top_n_grams"])})
    out.update({("gopher_repetition", f"max_dup_{n}gram_char_frac"): v
                for n, v in zip(range(5, 11), raw["dup_n_grams"])})
    return {k: float(v) for k, v in out.items()}


FINEWEB2_THRESHOLDS: dict[str, dict[tuple[str, str], float]] = {
    lang: _fineweb2_overrides(raw) for lang, raw in _FW2_RAW.items()}


def threshold_overrides(lang: str | None) -> dict[tuple[str, str], float]:
    """(rule set, threshold field) -> FineWeb-2's value for `lang`; empty where none was published."""
    return FINEWEB2_THRESHOLDS.get(lang or "", {})


@lru_cache(maxsize=None)
def stopwordsiso_list(lang: str) -> frozenset[str] | None:
    """The stopwords-iso list of `lang` (lowercased), or None when the package has none."""
    import stopwordsiso

    if not stopwordsiso.has_lang(lang):
        return None
    return frozenset(w.lower() for w in stopwordsiso.stopwords(lang))


def read_stop_word_file(path: str) -> frozenset[str]:
    """One word a line (blank lines and `#` comments skipped), lowercased; ValueError when the file
    cannot be read as UTF-8 text or holds no word."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"stop-word list {path}: {e.strerror if isinstance(e, OSError) else 'not UTF-8 text'}") from None
    words = frozenset(w.strip().lower() for w in text.splitlines() if w.strip() and not w.lstrip().startswith("#"))
    if not words:
        raise ValueError(f"stop-word list {path}: no words")
    return words


def stop_words_for(lang: str | None, files: dict[str, frozenset[str]] | None = None) -> frozenset[str] | None:
    """The stop words of a non-English language (a recipe's file first, then stopwords-iso), or None
    when there are none; English and unknown languages use Gopher's list (None here too: the caller
    keeps Gopher's rule for them)."""
    if not lang or lang == ENGLISH or lang == "und":
        return None
    if files and lang in files:
        return files[lang]
    return stopwordsiso_list(lang)


def has_stop_words(lang: str | None, files: dict[str, frozenset[str]] | None = None) -> bool:
    """Whether the stop-word rule can be applied to `lang` (English and unknown: Gopher's list)."""
    return not lang or lang in (ENGLISH, "und") or stop_words_for(lang, files) is not None


def count_stop_words(vocab: dict[str, int], stop_words: frozenset[str]) -> int:
    """Occurrences of stop words among the words of `vocab` (word -> count), case-insensitively;
    `l'homme` also counts when `l'` or `l` is listed."""
    total = 0
    for word, n in vocab.items():
        low = word.lower()
        if low in stop_words:
            total += n
            continue
        for mark in ("'", "’"):
            if mark in low:
                head = low.split(mark, 1)[0]
                if head + "'" in stop_words or head in stop_words:
                    total += n
                break
    return total
