"""`replaymill sample` told plainly: web topics counted as web, unnamed domains warned about, hints
that name flags, validation errors that name the field, overshoot against the budget, and a
manifest funnel that adds up."""
from __future__ import annotations

import pytest

from replaymill.pipeline.cli import main
from replaymill.schemas.domains import WEB_TOPICS
from replaymill.shards.reader import ShardSet
from replaymill.shards.sampler import ShortDomainError, key_for


@pytest.fixture(scope="module")
def pool(tmp_path_factory, make_shard_set, real_docs_by_domain):
    docs = dict(real_docs_by_domain)
    docs["legal"] = [dict(d, id=f"legal-{i}") for i, d in enumerate(real_docs_by_domain["web"][:5])]
    return make_shard_set(tmp_path_factory.mktemp("pool"), docs, rows_per_shard=80)


def adds_up(f) -> None:
    assert f.read + sum(f.added.values()) == f.kept + sum(f.dropped.values())


def test_web_topics_count_toward_web_unless_named():
    assert WEB_TOPICS == {"news": "web", "forum": "web"}
    llama = {"web", "code", "wiki", "books", "academic", "forum"}
    assert key_for("news", "en", llama) == "web" and key_for("forum", "en", llama) == "forum"
    assert key_for("news", "en", {"web/en", "code"}) == "web/en"
    assert key_for("news", "de", {"news/en", "web"}) is None  # news is named (for en): never folded
    assert key_for("legal", "en", llama) is None


def test_preset_warns_about_unnamed_domains_and_folds_news(pool, tmp_path, capsys):
    out = tmp_path / "llama"
    assert main(["sample", "--in-memory", "--shards", pool, "--target", "llama1", "--docs", "100000", "--by", "docs",
                 "--on-short", "renormalize", "--output", str(out)]) == 0  # everything the target takes
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "warning" in line]
    assert any("'news'" in w and "counted toward 'web'" in w for w in warnings)
    assert any("'legal'" in w and "left out" in w and "5 docs" in w for w in warnings)
    m = ShardSet.open(str(out)).manifest
    s = m.extra["sampling"]
    assert s["folded"] == {"news": "web"} and set(s["unnamed"]) == {"legal"}
    assert "news" in m.by_domain  # news documents drawn, as part of the web share
    assert "legal" not in m.by_domain
    f = m.funnel
    adds_up(f)
    source = ShardSet.open(pool).manifest
    assert f.dropped == {"not_in_target": 5, "not_drawn": 0} and f.kept == m.total.docs == source.total.docs - 5
    assert f.read == source.total.docs and f.read_tokens == source.total.tokens
    assert f.read_tokens == f.kept_tokens + sum(f.dropped_tokens.values())
    out_lines = captured.out.splitlines()
    assert any(line.startswith("budget 100,000 docs: drew") and "pool ran out" in line for line in out_lines)
    assert "Sample funnel" in captured.out and "not in the target" in captured.out
    assert out_lines[-1].startswith("wrote ") and str(out) in out_lines[-1]


def test_overshoot_is_reported_against_the_budget(pool, tmp_path, capsys):
    out = tmp_path / "over"
    assert main(["sample", "--in-memory", "--shards", pool, "--target", "llama1", "--tokens", "20000",
                 "--on-short", "renormalize", "--output", str(out)]) == 0
    s = ShardSet.open(str(out)).manifest.extra["sampling"]
    over = s["budget_used"] - 20000
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("budget 20,000"))
    assert over > 0 and f"{over:,}" in line and "over" in line


def test_upsampled_repeats_are_added_rows_in_the_funnel(pool, tmp_path):
    w = tmp_path / "news.yaml"
    w.write_text("by: docs\nweights: {news: 0.9, web: 0.1}\n")
    out = tmp_path / "up"
    assert main(["sample", "--in-memory", "--shards", pool, "--target", str(w), "--docs", "100",
                 "--on-short", "upsample", "--output", str(out)]) == 0
    f = ShardSet.open(str(out)).manifest.funnel
    adds_up(f)
    assert f.added["upsampled_repeat"] == f.kept - 40 - 10 > 0 and f.dropped["not_in_target"] > 0


def test_reference_funnel_adds_up(pool, tmp_path, shared_data):
    ref = tmp_path / "ref.txt"
    ref.write_text((shared_data / "prose" / "de-grimm.txt").read_text(encoding="utf-8")[:20000], encoding="utf-8")
    out = tmp_path / "dsir"
    assert main(["sample", "--in-memory", "--shards", pool, "--reference", str(ref), "--docs", "30",
                 "--output", str(out)]) == 0
    f = ShardSet.open(str(out)).manifest.funnel
    adds_up(f)
    assert f.kept == 30 and set(f.dropped) == {"not_drawn"}


def test_hints_name_flags_not_python(pool, tmp_path, capsys):
    assert main(["sample", "--in-memory", "--shards", pool, "--target", "llama1", "--tokens", "1000000",
                 "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--on-short upsample" in err and "--on-short renormalize" in err and "on_short=" not in err
    error = ShortDomainError("code: needs 5 tokens, has 1")  # the library names its argument
    assert "on_short='upsample' or 'renormalize'" in str(error)
    assert error.hint("--replay-on-short").endswith("--replay-on-short upsample or --replay-on-short renormalize")


def test_validation_errors_name_every_field(pool, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("by: pages\nweights: {web: lots, code: 0.2}\n")
    assert main(["sample", "--in-memory", "--shards", pool, "--target", str(bad), "--docs", "10",
                 "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "validation error for" not in err[0]
    assert "weights.web" in err[0] and "'lots'" in err[0] and "by:" in err[0]
