"""Word-based quality rules per language: stop words, FineWeb-2 thresholds, a comparable score, and the
pre-flight checks (an unreadable stop-word list, English-only rules meeting a non-English keep-list)."""
from __future__ import annotations

import pytest

from replaymill.pipeline.cli import main
from replaymill.pipeline.errors import InputError
from replaymill.pipeline.jobs import check_quality_languages, resolve_build_recipe
from replaymill.schemas.filters import QualityConfig
from replaymill.transforms.quality import check_rules, compute_signals, quality_score
from replaymill.transforms.quality.languages import FINEWEB2_THRESHOLDS, count_stop_words, read_stop_word_file

RULES = {"gopher_quality": True, "gopher_repetition": True, "fineweb": True}


def _groups(shared_data, lang: str, n: int = 30) -> list[str]:
    """Real prose: 8 consecutive test sentences per document."""
    lines = [s for s in (shared_data / "lingua-sentences" / f"{lang}.txt").read_text(encoding="utf-8").splitlines() if s]
    return [" ".join(lines[i:i + 8]) for i in range(0, 8 * n, 8)]


def _kept(texts: list[str], lang: str, config: QualityConfig) -> float:
    code = lang if config.per_language else None
    return sum(check_rules(compute_signals(t, code), config, code) is None for t in texts) / len(texts)


@pytest.mark.parametrize("lang", ["de", "fr", "es"])
def test_non_english_prose_is_kept_like_english_prose(shared_data, lang):
    english_rules = QualityConfig.model_validate({**RULES, "per_language": False})
    per_language = QualityConfig.model_validate(RULES)
    en = _kept(_groups(shared_data, "en"), "en", per_language)
    assert en >= 0.8
    assert _kept(_groups(shared_data, lang), lang, english_rules) <= 0.1  # Gopher's English stop words fail it
    assert _kept(_groups(shared_data, lang), lang, per_language) >= en - 0.10


def test_english_is_unchanged(shared_data):
    config = QualityConfig.model_validate(RULES)
    for text in _groups(shared_data, "en", 5):
        assert compute_signals(text, "en") == compute_signals(text)
        assert quality_score(compute_signals(text), "en") == quality_score(compute_signals(text))
    assert config.enabled_rules("en") == config.enabled_rules(None) == \
        QualityConfig.model_validate({**RULES, "per_language": False}).enabled_rules("de")


def test_fineweb2_values_replace_only_thresholds_left_at_their_default():
    config = QualityConfig.model_validate({**RULES, "gopher_repetition": {"enabled": True, "max_dup_line_frac": 0.5}})
    rules = {(name, r.signal): r.threshold for name, r in config.enabled_rules("de")}
    assert rules[("gopher_repetition", "dup_line_frac")] == 0.5  # the recipe's choice wins
    assert rules[("gopher_repetition", "top_2gram_char_frac")] == FINEWEB2_THRESHOLDS["de"][
        ("gopher_repetition", "max_top_2gram_char_frac")] == pytest.approx(0.169)
    assert rules[("gopher_quality", "mean_word_length")] in (0.0, 15.0)
    assert rules[("fineweb", "list_ratio")] == pytest.approx(0.152)
    assert {(n, r.signal): r.threshold for n, r in config.enabled_rules("it")}[("gopher_repetition", "top_2gram_char_frac")] == 0.2


def test_stop_words_per_language_and_elisions():
    assert count_stop_words({"der": 3, "Und": 2, "Haus": 5}, frozenset({"der", "und"})) == 5
    assert count_stop_words({"l'homme": 2, "dell'anno": 1, "chat": 4}, frozenset({"l'", "dell"})) == 3
    text = "Der Hund und die Katze schlafen im Haus, und der Vogel singt auf dem Dach des Hauses."
    assert compute_signals(text, "de")["stop_words"] >= 6 and compute_signals(text)["stop_words"] == 0


def test_a_language_without_a_list_skips_the_stop_word_rule_and_a_file_adds_one(tmp_path):
    config = QualityConfig.model_validate(RULES)
    assert "stop_words" not in {r.signal for _, r in config.enabled_rules("xh")}
    assert "stop_words" in {r.signal for _, r in config.enabled_rules("de")}
    (tmp_path / "xh.txt").write_text("# Xhosa\nukuba\nkwaye\n", encoding="utf-8")
    with_file = QualityConfig.model_validate({**RULES, "stop_words": {"xh": str(tmp_path / "xh.txt")}})
    assert "stop_words" in {r.signal for _, r in with_file.enabled_rules("xh")}
    words = read_stop_word_file(str(tmp_path / "xh.txt"))
    assert words == {"ukuba", "kwaye"}
    assert compute_signals("Ukuba uyavuma kwaye uyahamba kwaye", "xh", {"xh": words})["stop_words"] == 3


def test_the_score_is_comparable_across_languages(shared_data):
    scores = {lang: sum(quality_score(compute_signals(t, lang), lang) for t in _groups(shared_data, lang)) / 30
              for lang in ("en", "de", "fr", "es")}
    assert max(scores.values()) - min(scores.values()) <= 0.05, scores
    german_as_english = sum(quality_score(compute_signals(t)) for t in _groups(shared_data, "de")) / 30
    assert scores["de"] > german_as_english


@pytest.mark.parametrize("content, message", [(None, "No such file"), ("\n# only a comment\n", "no words"),
                                              (b"\xff\xfe\x00bad", "not UTF-8")])
def test_an_unreadable_stop_word_list_exits_2_with_one_line(tmp_path, capsys, shared_data, content, message):
    path = tmp_path / "de.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    (tmp_path / "r.yaml").write_text(f"name: sw\nquality:\n  stop_words: {{de: '{path}'}}\n", encoding="utf-8")
    args = ["build", "-i", str(shared_data / "dolma-cc" / "cc_en_head-0091.jsonl.gz"), "-o", str(tmp_path / "out"),
            "-r", str(tmp_path / "r.yaml")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "quality.stop_words.de" in err[0] and message in err[0], err


def test_english_only_rules_meeting_a_non_english_keep_list_warn():
    warned = []
    check_quality_languages(resolve_build_recipe("fineweb-en", langs=["en", "de", "xh"]), warned.append)
    text = "\n".join(warned)
    assert "c4 rules are English-only" in text and "de, xh" in text
    assert "no stop-word list for xh" in text and "English (Gopher/FineWeb) thresholds for xh" in text
    assert check_quality_languages(resolve_build_recipe("fineweb-en"), warned.append) == []
    off = resolve_build_recipe("fineweb-en", langs=["en", "fr"]).model_copy(deep=True)
    off.quality.per_language = False
    assert any("per_language is off" in w for w in check_quality_languages(off, warned.append))
    with pytest.raises(InputError, match="quality.stop_words.de"):
        bad = resolve_build_recipe("minimal").model_copy(deep=True)
        bad.quality.stop_words = {"de": "/nonexistent/de.txt"}
        check_quality_languages(bad)
