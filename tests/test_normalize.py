"""Text identity for dedup: normalization, hash, word splitter."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from replaymill.transforms.normalize import HASH_BYTES, dedup_key, normalize_for_dedup, text_hash, words


def test_normalization_removes_surface_differences():
    assert normalize_for_dedup("Héllo, WORLD!!  It's 2024…\n\tﬁne") == "héllo world it s 0000 fine"
    assert normalize_for_dedup("ＡＢＣ　１２３") == "abc 000"  # full-width forms (NFKC) and digits
    assert normalize_for_dedup("٣ apples") == "0 apples"  # any decimal digit, not only ASCII
    assert normalize_for_dedup("end.Start") == "end start"  # punctuation separates, never glues
    assert normalize_for_dedup("  \n ") == ""


def test_same_page_with_different_boilerplate_digits_has_one_key():
    a = "Posted on March 3, 2018 by Anna.\nThe clinic opens at 9:00."
    b = "posted on march 7 2019 by anna   the clinic opens at 10 30"
    assert dedup_key(a) != dedup_key(b)  # "10 30" is two numbers, "9:00" one
    assert dedup_key(a) == dedup_key(a.upper().replace("\n", "  ").replace("2018", "2019"))


def test_hash_is_128_bit_deterministic_and_discriminating():
    assert len(text_hash("abc")) == HASH_BYTES == 16
    assert text_hash("abc") == text_hash("abc") != text_hash("abd")
    assert text_hash("lone \udcff surrogate")  # hashing never fails on bad code points


def test_words():
    assert words("Hello, World! 42 times") == ["hello", "world", "00", "times"]
    assert words(" ... ") == []


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_normalization_is_idempotent_and_words_rejoin(text):
    once = normalize_for_dedup(text)
    assert normalize_for_dedup(once) == once
    assert " ".join(words(text)) == once
