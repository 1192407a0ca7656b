"""The funnel read by people: stage order, tokens beside documents, a row for every enabled stage
(even at 0), reasons of unknown stages never lost, and one line per row in the terminal."""
from __future__ import annotations

import io

from replaymill.audit.funnel import enabled_stages, funnel_rows, stage_of_reason
from replaymill.schemas.manifest import Funnel, Manifest
from replaymill.schemas.recipe import resolve_recipe

STAGE_ORDER = ["read", "format rejects", "length", "language ID", "quality: gopher_quality",
               "quality: gopher_repetition", "other filters", "exact dedup", "near dedup", "kept"]


def funnel(**overrides) -> dict:
    base = {
        "read": 1000,
        # deliberately in no particular order: alphabetical would put exact_duplicate first
        "dropped": {"near_duplicate": 40, "gopher_repetition:dup_line_frac": 30, "too_short": 20,
                    "malformed_json": 5, "lang_score_low": 100, "exact_duplicate": 50,
                    "gopher_quality:n_words": 70, "gopher_quality:stop_words": 80, "decontaminated": 5},
        "kept": 600,
        "read_tokens": 900_000,
        "dropped_tokens": {"near_duplicate": 4000, "gopher_repetition:dup_line_frac": 3000, "too_short": 100,
                           "lang_score_low": 9000, "exact_duplicate": 5000, "gopher_quality:n_words": 700,
                           "gopher_quality:stop_words": 800, "decontaminated": 400},
        "kept_tokens": 877_000,
        "stage_of": {"decontaminated": "other"},
        "enabled": ["format", "length", "langid", "quality:gopher_quality", "quality:gopher_repetition",
                    "exact", "near"],
    }
    base.update(overrides)
    return base


def stage_labels(rows) -> list[str]:
    return [r.label for r in rows if r.level == 0]


def test_stages_in_pipeline_order_with_reasons_below():
    rows = funnel_rows(funnel())
    assert stage_labels(rows) == STAGE_ORDER
    labels = [r.label for r in rows]
    gq = labels.index("quality: gopher_quality")
    assert labels[gq + 1: gq + 3] == ["stop_words", "n_words"]  # largest first, rule-set prefix dropped
    assert sum(r.docs for r in rows if r.level == 0 and r.kind == "drop") == 1000 - 600
    assert all(r.level == 0 for r in rows if r.stage in ("exact", "near"))  # a single reason: no sub-row


def test_tokens_beside_documents_and_unknown_for_reader_rejects():
    rows = {r.label: r for r in funnel_rows(funnel()) if r.level == 0}
    assert rows["read"].tokens == 900_000 and rows["kept"].tokens == 877_000
    assert rows["quality: gopher_quality"].tokens == 1500
    assert rows["format rejects"].tokens is None  # reader rejects carry no text


def test_every_enabled_stage_has_a_row_even_at_zero():
    rows = funnel_rows(funnel(dropped={}, dropped_tokens={}, kept=1000, kept_tokens=900_000))
    assert stage_labels(rows) == [s for s in STAGE_ORDER if s != "other filters"]
    assert all(r.docs == 0 and r.tokens in (0, None) for r in rows if r.kind == "drop")


def test_manifest_without_stage_fields_falls_back_to_reason_names():
    old = {"read": 10, "dropped": {"exact_duplicate": 2, "too_short": 1, "truncated_file": 1, "c4:sentences": 1},
           "kept": 5}
    rows = funnel_rows(Funnel.model_validate(old))
    assert stage_labels(rows) == ["read", "format rejects", "length", "quality: c4", "exact dedup", "kept"]
    assert all(r.tokens is None for r in rows)  # no token counts in an old manifest


def test_stage_of_reason_uses_the_record_stage():
    assert stage_of_reason("malformed_json", "read") == "format"
    assert stage_of_reason("too_large", "reshard") == "other"
    assert stage_of_reason("lang_not_kept", "annotate") == "langid"
    assert stage_of_reason("fineweb:list_ratio", "annotate") == "quality:fineweb"
    assert stage_of_reason("annotate_error", "annotate") == "other"
    assert stage_of_reason("contaminated", "decontaminate") == "decontaminate"


def test_decontamination_sits_between_quality_and_dedup():
    f = funnel(dropped={"contaminated": 4, "exact_duplicate": 1}, dropped_tokens={"contaminated": 40, "exact_duplicate": 9},
               stage_of={"contaminated": "decontaminate"}, kept=995, kept_tokens=899_951,
               enabled=["format", "length", "quality:c4", "decontaminate", "exact"])
    assert stage_labels(funnel_rows(f)) == ["read", "format rejects", "length", "quality: c4", "decontamination",
                                            "exact dedup", "kept"]
    recipe = resolve_recipe("minimal").model_dump(mode="json")
    recipe["decontaminate"] = {"eval_files": ["e.jsonl"], "action": "drop"}
    assert "decontaminate" in enabled_stages(recipe)


def test_enabled_stages_from_recipes():
    assert enabled_stages(resolve_recipe("minimal")) == ["format", "length", "exact"]
    multi = enabled_stages(resolve_recipe("multilingual"))
    assert multi == ["format", "length", "langid", "quality:gopher_repetition", "exact", "near"]


def test_terminal_table_one_line_per_row_no_wrapping():
    from rich.console import Console

    from replaymill.pipeline.funnel import render_funnel

    long_reason = "gopher_repetition:dup_10gram_char_frac"
    f = funnel()
    f["dropped"][long_reason] = 3
    f["dropped_tokens"][long_reason] = 30
    f["read"] += 3
    manifest = Manifest(schema_version="t", created_at="t", tool_version="t", funnel=Funnel.model_validate(f))
    out = io.StringIO()
    render_funnel(manifest, console=Console(file=out, width=100, color_system=None))
    lines = out.getvalue().splitlines()
    rows = funnel_rows(f)
    at = []
    for row in rows:  # every row is one line holding its label and its count: nothing wrapped or cut
        matches = [i for i, line in enumerate(lines)
                   if line.split()[:len(row.label.split())] == row.label.split() and f"{row.docs:,}" in line]
        assert matches, row.label
        at.append(matches[0])
    assert at == sorted(at)  # in stage order
    assert any("dup_10gram_char_frac" in line and " 30 " in f" {line} " for line in lines)
