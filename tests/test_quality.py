"""Quality signals: exact values on crafted texts, rules firing by name, real Common Crawl pages, properties."""
from __future__ import annotations

import gzip
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaymill.schemas.filters import QualityConfig
from replaymill.transforms.quality import SIGNAL_NAMES, Rule, check_rules, compute_signals, quality_score, rule_score

ALL_RULES = QualityConfig.model_validate(
    {"gopher_quality": True, "gopher_repetition": True, "c4": True, "fineweb": True})


def _cc_texts(shared_data, name: str) -> list[str]:
    with gzip.open(shared_data / "dolma-cc" / name, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def test_word_statistics():
    s = compute_signals("The cat sat on the mat. #tag ... and so on")
    # words: The cat sat on the mat tag and so on (punctuation runs "." "#" "..." are not words)
    assert s["n_words"] == 10
    assert s["mean_word_length"] == pytest.approx(27 / 10)
    assert s["stop_words"] == 3  # The, the, and
    assert s["hash_word_ratio"] == pytest.approx(0.1)
    assert s["ellipsis_word_ratio"] == pytest.approx(0.1)
    assert s["alpha_word_frac"] == 1.0
    assert compute_signals("price 100 200 300 euro")["alpha_word_frac"] == pytest.approx(0.4)


def test_repeated_lines_and_paragraphs():
    text = "\n".join(["alpha beta gamma delta"] * 4 + ["unique line one", "unique line two"])
    s = compute_signals(text)
    assert s["dup_line_frac"] == pytest.approx(3 / 6)
    assert s["dup_line_char_frac"] == pytest.approx(3 * 22 / len(text))
    assert s["char_dup_ratio"] == pytest.approx(3 * 22 / (len(text) - 5))
    para_text = "first para\n\nsecond para\n\n\nfirst para"
    paragraphs = compute_signals(para_text)
    assert paragraphs["dup_para_frac"] == pytest.approx(1 / 3)
    assert paragraphs["dup_para_char_frac"] == pytest.approx(len("first para") / len(para_text))
    no_gopher_quality = QualityConfig.model_validate({"gopher_repetition": True, "c4": True, "fineweb": True})
    assert check_rules(s, no_gopher_quality) == "gopher_repetition:dup_line_frac"


def test_blank_lines_are_not_duplicate_lines():
    s = compute_signals("one paragraph here.\n\n\ntwo paragraph here.\n\nthree paragraph here.")
    assert s["dup_line_frac"] == 0.0 and s["dup_para_frac"] == 0.0


def test_top_and_duplicate_ngram_fractions():
    s = compute_signals("a b a b a b")
    assert s["top_2gram_char_frac"] == pytest.approx(3 * 3 / 11)  # "a b" three times
    assert s["top_3gram_char_frac"] == pytest.approx(2 * 5 / 11)  # "a b a" twice ("b a b" twice too, same length)
    text = "one two three four five one two three four five"
    s = compute_signals(text)
    assert s["dup_5gram_char_frac"] == pytest.approx(23 / len(text))  # the second "one two three four five"
    assert s["dup_6gram_char_frac"] == 0.0
    assert compute_signals("every word here is different from the others")["top_2gram_char_frac"] == 0.0


def test_bullet_and_ellipsis_lines():
    bullets = "\n".join(f"• item number {i} of the list" for i in range(9)) + "\nA closing sentence."
    assert compute_signals(bullets)["bullet_line_frac"] == pytest.approx(0.9)
    assert compute_signals(bullets + "\n- one more")["bullet_line_frac"] == pytest.approx(10 / 11)
    s = compute_signals("Read more...\nAnd then…\nA full sentence here.")
    assert s["ellipsis_line_frac"] == pytest.approx(2 / 3)


def test_c4_signals():
    page = ("This is one. This is two! Is this three?\n"
            "Lorem ipsum dolor sit amet, consectetur.\n"
            "Please enable JavaScript to view this page.\n"
            "We use cookies and have a privacy policy.\n"
            "A menu line without punctuation\n"
            "Ok.")
    s = compute_signals(page)
    assert s["lorem_ipsum"] == 1.0
    assert s["curly_brace"] == 0.0
    assert s["javascript_line_frac"] == pytest.approx(1 / 6)
    assert s["policy_line_frac"] == pytest.approx(1 / 6)
    assert s["no_terminal_punct_line_frac"] == pytest.approx(1 / 6)
    assert s["sentences"] == 4  # 3 + the lorem line; javascript, policy, short and unpunctuated lines do not count
    code = compute_signals("The function returns {x} for every input.")
    assert code["curly_brace"] == 1.0
    # lorem ipsum and braces only count in lines C4 keeps (as the TFDS reference code does)
    assert compute_signals("lorem ipsum placeholder\nfn { }")["lorem_ipsum"] == 0.0


def test_fineweb_signals():
    text = "A first full line that ends well.\nshort\nAnother long line of text that ends with a stop!\nmenu"
    s = compute_signals(text)
    assert s["line_punct_ratio"] == pytest.approx(2 / 4)
    assert s["short_line_ratio"] == pytest.approx(2 / 4)
    assert s["list_ratio"] == pytest.approx(3 / s["n_words"])
    assert s["char_dup_ratio"] == 0.0


def test_empty_text_has_zero_signals():
    s = compute_signals("")
    assert set(s) == set(SIGNAL_NAMES) and all(v == 0.0 for v in s.values())


@pytest.fixture(scope="module")
def passing_signals(shared_data) -> dict[str, float]:
    """Signals of a real English page that passes every published rule."""
    for text in _cc_texts(shared_data, "cc_en_head-0091.jsonl.gz"):
        signals = compute_signals(text)
        if check_rules(signals, ALL_RULES) is None:
            return signals
    pytest.fail("no page of cc_en_head-0091 passes all rules")


def _failing_value(rule: Rule) -> float:
    """A value just on the wrong side (exactly at the threshold for strict comparisons)."""
    step = max(abs(rule.threshold) * 0.5, 1.0)
    return {"ge": rule.threshold - step, "gt": rule.threshold, "le": rule.threshold + step, "lt": rule.threshold}[rule.op]


@pytest.mark.parametrize("rule_set,rule", ALL_RULES.enabled_rules(), ids=lambda x: getattr(x, "signal", x))
def test_each_rule_fires_by_name(passing_signals, rule_set, rule):
    signals = dict(passing_signals, **{rule.signal: _failing_value(rule)})
    assert check_rules(signals, ALL_RULES) == f"{rule_set}:{rule.signal}"
    if rule.op in ("ge", "le"):  # inclusive bounds pass at the threshold itself
        assert check_rules(dict(passing_signals, **{rule.signal: rule.threshold}), ALL_RULES) is None
    disabled = ALL_RULES.model_copy(update={rule_set: getattr(ALL_RULES, rule_set).model_copy(update={"enabled": False})})
    assert check_rules(signals, disabled) is None


def test_thresholds_are_overridable_and_null_disables_a_rule(passing_signals):
    cfg = QualityConfig.model_validate({"gopher_quality": {"enabled": True, "min_words": 10_000}})
    assert check_rules(passing_signals, cfg) == "gopher_quality:n_words"
    cfg = QualityConfig.model_validate({"gopher_quality": {"enabled": True, "min_words": None, "max_words": None}})
    assert check_rules(dict(passing_signals, n_words=1.0), cfg) is None


def test_real_pages(shared_data):
    english_head = _cc_texts(shared_data, "cc_en_head-0091.jsonl.gz") + _cc_texts(shared_data, "cc_en_head-0174.jsonl.gz")
    kept = [check_rules(compute_signals(t), ALL_RULES) is None for t in english_head]
    assert sum(kept) >= 0.6 * len(kept)  # CCNet's high-quality English bucket mostly passes
    first = compute_signals(_cc_texts(shared_data, "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz")[0])
    assert first["n_words"] > 300 and 4 < first["mean_word_length"] < 6 and first["stop_words"] > 50
    scores = [quality_score(compute_signals(t)) for t in english_head]
    assert min(scores) > 0.5 and max(scores) > 0.95


def test_quality_score_orders_clean_text_above_spam(passing_signals):
    spam = compute_signals("BUY NOW!!! " * 200 + "\n" + "click here\n" * 50)
    assert quality_score(passing_signals) > 0.9 > 0.6 > quality_score(spam)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=800))
def test_signals_are_finite_and_score_in_unit_interval(text):
    signals = compute_signals(text)
    assert tuple(signals) == SIGNAL_NAMES
    assert all(math.isfinite(v) and v >= 0 for v in signals.values())
    assert 0.0 <= quality_score(signals) <= 1.0


# n_words and mean_word_length have a band (min and max): the score peaks inside it.
ONE_SIDED = [r for _, r in ALL_RULES.enabled_rules() if r.signal not in ("n_words", "mean_word_length")]


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab c.\n#•…{}"), max_size=400), st.integers(0, len(ONE_SIDED) - 1),
       st.floats(0, 5))
def test_score_never_drops_when_a_one_sided_signal_improves(text, index, amount):
    signals = compute_signals(text)
    rule = ONE_SIDED[index]
    better = dict(signals)
    better[rule.signal] += amount if rule.op in ("ge", "gt") else -amount
    assert quality_score(better) >= quality_score(signals) - 1e-12
    assert rule_score(better[rule.signal], rule) >= rule_score(signals[rule.signal], rule)


def _naive_ngram_fractions(words: list[str], n_chars: int) -> dict[str, float]:
    """Plain-Python statement of the definitions in transforms.quality, for checking the numpy version."""
    out = {}
    for n in range(2, 11):
        grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
        if n <= 4:
            # the most frequent n-gram (ties: the longest), if it occurs at least twice
            ranked = sorted(((grams.count(g), sum(map(len, g)) + n - 1) for g in set(grams)), reverse=True)
            count, length = ranked[0] if ranked else (0, 0)
            out[f"top_{n}gram_char_frac"] = count * length / n_chars if count >= 2 else 0.0
        else:
            covered = [False] * len(words)
            for i, g in enumerate(grams):
                if g in grams[:i]:
                    covered[i:i + n] = [True] * n
            chars = sum(len(w) for w, c in zip(words, covered) if c)
            chars += sum(1 for a, b in zip(covered, covered[1:]) if a and b)
            out[f"dup_{n}gram_char_frac"] = chars / n_chars
    return {k: min(v, 1.0) for k, v in out.items()}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "bb", "ccc", "the", "dddd"]), min_size=0, max_size=60))
def test_vectorized_ngram_fractions_match_the_definition(words):
    text = " ".join(words)
    signals = compute_signals(text)
    expected = _naive_ngram_fractions(words, len(text)) if text else {}
    for name, value in expected.items():
        assert signals[name] == pytest.approx(value, abs=1e-9), name
