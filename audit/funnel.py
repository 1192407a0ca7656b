"""The build funnel in stage order, for people: read, format rejects, length, language ID, each
quality rule set, exact dedup, near dedup, kept.

A manifest stores the funnel as counts per reject reason (`schemas.manifest.Funnel`); this module
turns it into rows in the order the pipeline applies its stages, with tokens beside documents and
a row for every stage the recipe enabled even when it dropped nothing (a silent 0 is information:
the stage ran). Every renderer (the build's table, the audit's terminal, JSON and HTML) reads
`funnel_rows`, so they list the same rows in the same order.

Which stage a reason belongs to comes from the reject records themselves (`Funnel.stage_of`,
recorded by the build); manifests written before that field existed fall back to the reason's
name. A reason of a stage this module does not know (a new filter) is still shown, after the
quality rule sets and before dedup, so nothing the pipeline dropped can vanish from the table.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from replaymill.transforms.records import REJECT_REASONS

# Stage keys in pipeline order; `quality:<rule set>` keys sit between "langid" and "other".
FORMAT, LENGTH, LANGID, QUALITY, OTHER, EXACT, NEAR = "format", "length", "langid", "quality", "other", "exact", "near"
TARGET, BUDGET = "target", "budget"  # a sample's funnel: outside the target mixture, not drawn by the budget
DECONTAM = "decontaminate"
STAGE_LABELS = {
    FORMAT: "format rejects", LENGTH: "length", LANGID: "language ID", OTHER: "other filters",
    DECONTAM: "decontamination", EXACT: "exact dedup", NEAR: "near dedup", TARGET: "not in the target",
    BUDGET: "not drawn (budget)",
}
_LENGTH_REASONS = ("too_short", "too_long")
_EXACT_REASONS = ("exact_duplicate",)
_NEAR_REASONS = ("near_duplicate",)
# The pipeline stage names reject records carry (`stage` field) that map straight onto a funnel stage.
_RECORD_STAGES = {"read": FORMAT, "decontaminate": DECONTAM, "exact_dedup": EXACT, "near_dedup": NEAR}


@dataclass(frozen=True)
class FunnelRow:
    """One line of the funnel: a stage total (`level` 0) or one reason inside it (`level` 1).

    `kind` is "read", "drop", "add" (rows beyond the input, a sample's repeats) or "kept"; `tokens` is None where it is unknown (reader rejects carry
    no text, and manifests from before token counting have none)."""

    label: str
    docs: int
    tokens: int | None
    level: int
    kind: str
    stage: str


def enabled_stages(recipe: Any) -> list[str]:
    """The funnel stages a recipe (a `Recipe` or its JSON dict) switches on, in pipeline order."""
    r = recipe if isinstance(recipe, dict) else recipe.model_dump(mode="json")
    stages = [FORMAT, LENGTH]
    langid = r.get("langid") or {}
    if langid.get("keep") is not None or (langid.get("min_score") or 0) > 0:
        stages.append(LANGID)
    quality = r.get("quality") or {}
    stages += [f"{QUALITY}:{name}" for name, v in quality.items() if isinstance(v, dict) and v.get("enabled")]
    if (r.get("decontaminate") or {}).get("eval_files"):
        stages.append(DECONTAM)
    if (r.get("exact_dedup") or {}).get("enabled"):
        stages.append(EXACT)
    if (r.get("near_dedup") or {}).get("enabled"):
        stages.append(NEAR)
    return stages


def stage_of_reason(reason: str, record_stage: str | None = None) -> str:
    """The funnel stage of one reject reason (`record_stage`: the reject record's own `stage`)."""
    if reason in _EXACT_REASONS:
        return EXACT
    if reason in _NEAR_REASONS:
        return NEAR
    if reason == "contaminated":
        return DECONTAM
    if record_stage in _RECORD_STAGES:
        return _RECORD_STAGES[record_stage]
    if record_stage in (None, "annotate"):
        if reason in _LENGTH_REASONS:
            return LENGTH
        if reason.startswith("lang"):
            return LANGID
        if ":" in reason:
            return f"{QUALITY}:{reason.split(':', 1)[0]}"
        if record_stage is None and reason in REJECT_REASONS:
            return FORMAT
    return OTHER


def _order(stage: str) -> tuple[int, str]:
    head = stage.split(":", 1)[0]
    rank = {FORMAT: 0, LENGTH: 1, LANGID: 2, QUALITY: 3, OTHER: 4, DECONTAM: 5, EXACT: 6, NEAR: 7, TARGET: 8,
            BUDGET: 9}.get(head, 4)
    return rank, stage


def stage_label(stage: str) -> str:
    if stage.startswith(f"{QUALITY}:"):
        return f"quality: {stage.split(':', 1)[1]}"
    return STAGE_LABELS.get(stage, stage)


def reason_label(reason: str, stage: str) -> str:
    """A reason as shown under its stage (`gopher_quality:n_words` under gopher_quality is `n_words`)."""
    if stage.startswith(f"{QUALITY}:") and reason.startswith(stage.split(":", 1)[1] + ":"):
        return reason.split(":", 1)[1]
    return reason


def funnel_rows(funnel: dict[str, Any] | Any) -> list[FunnelRow]:
    """The rows of a funnel (a `Funnel` or its dict) in stage order: read, each stage with its
    reasons below it (largest first; dedup stages have a single reason and no sub-rows), kept."""
    f = funnel if isinstance(funnel, dict) else funnel.model_dump()
    dropped: dict[str, int] = f.get("dropped") or {}
    recorded: dict[str, str] = f.get("stage_of") or {}
    by_stage: dict[str, list[str]] = {stage: [] for stage in f.get("enabled") or []}
    for reason in dropped:
        by_stage.setdefault(recorded.get(reason) or stage_of_reason(reason), []).append(reason)

    has_tokens = f.get("kept_tokens") is not None
    dropped_tokens: dict[str, int] = f.get("dropped_tokens") or {}

    def tokens(stage: str, reasons: list[str]) -> int | None:
        if stage == FORMAT or not has_tokens or any(r not in dropped_tokens for r in reasons):
            return None  # reader rejects have no text; old manifests and some sample rows have no count
        return sum(dropped_tokens[r] for r in reasons)

    rows = [FunnelRow("read", int(f.get("read") or 0), f.get("read_tokens"), 0, "read", "read")]
    for stage in sorted(by_stage, key=_order):
        reasons = sorted(by_stage[stage], key=lambda r: (-dropped[r], r))
        rows.append(FunnelRow(stage_label(stage), sum(dropped[r] for r in reasons), tokens(stage, reasons), 0, "drop", stage))
        if stage not in (DECONTAM, EXACT, NEAR, TARGET, BUDGET):  # one reason each: no sub-row
            rows += [FunnelRow(reason_label(r, stage), dropped[r], tokens(stage, [r]), 1, "drop", stage) for r in reasons]
    for reason, n in (f.get("added") or {}).items():  # rows written beyond the input (upsampled repeats)
        rows.append(FunnelRow(reason.replace("_", " "), int(n), None, 0, "add", "added"))
    rows.append(FunnelRow("kept", int(f.get("kept") or 0), f.get("kept_tokens"), 0, "kept", "kept"))
    return rows


def merge_funnels(funnels: list[dict[str, Any]]) -> dict[str, Any]:
    """Several funnels (dicts, e.g. of the shard sets one audit reads) summed into one: counts per
    reason add, token totals add where every part has them, stages are the union."""
    out: dict[str, Any] = {"read": 0, "dropped": {}, "kept": 0, "dropped_tokens": {}, "added": {},
                           "stage_of": {}, "enabled": []}
    token_totals = {"read_tokens": 0, "kept_tokens": 0}
    for f in funnels:
        out["read"] += int(f.get("read") or 0)
        out["kept"] += int(f.get("kept") or 0)
        for field in ("dropped", "dropped_tokens", "added"):
            for reason, n in (f.get(field) or {}).items():
                out[field][reason] = out[field].get(reason, 0) + int(n)
        out["stage_of"].update(f.get("stage_of") or {})
        out["enabled"] += [s for s in f.get("enabled") or [] if s not in out["enabled"]]
        for key in token_totals:
            value = f.get(key)
            token_totals[key] = None if value is None or token_totals[key] is None else token_totals[key] + value
    return {**out, **token_totals}


def raw_funnel(rejects: dict[str, int], docs: int) -> dict[str, Any]:
    """The funnel of a raw-corpus audit from its reject counts keyed `stage:reason` (the audit
    recipe drops nothing, so these are the readers' rejects): documents read = audited + rejected."""
    dropped: dict[str, int] = {}
    stage_of: dict[str, str] = {}
    for key, n in rejects.items():
        record_stage, _, reason = key.partition(":") if ":" in key else ("read", "", key)
        dropped[reason] = dropped.get(reason, 0) + int(n)
        stage_of[reason] = stage_of_reason(reason, record_stage)
    return {"read": docs + sum(dropped.values()), "dropped": dict(sorted(dropped.items())), "kept": docs,
            "stage_of": stage_of, "enabled": [FORMAT]}


def _amount(n: int | None, whole: int | None) -> tuple[str, str]:
    if n is None:
        return "-", ""
    return f"{n:,}", (f"{100.0 * n / whole:.1f}%" if whole else "-")


def console_for_tables() -> Any:
    """A rich console for the commands' tables: the terminal's width, or when piped (CI logs) a
    fixed 120 columns, so rows are never wrapped."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 120)


def funnel_table(f: Any, title: str = "Build funnel") -> Any:
    """The funnel as a rich table: stages in pipeline order, documents and tokens with their shares."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, header_style="bold")
    table.add_column("stage", no_wrap=True)
    for name in ("documents", "% read", "tokens", "% tokens"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in funnel_rows(f):
        docs, docs_pct = _amount(row.docs, f.read)
        tokens, tokens_pct = _amount(row.tokens, f.read_tokens)
        if row.kind == "drop":
            label = ("  " if row.level == 0 else "      ") + row.label
            style = "dim" if row.docs == 0 or row.level else ""
        elif row.kind == "add":
            label, style = "  + " + row.label, ""
        else:
            label, style = row.label, "bold"
        table.add_row(label, docs, docs_pct, tokens, tokens_pct, style=style)
    return table
