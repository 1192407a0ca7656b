"""The audit report: one JSON-able dict with stable, documented keys (schema `replaymill.audit/1`).

Everything a renderer or a CI gate reads is computed here once, from an `AuditStats`, the
manifest's funnel (shard sets) and the optional target and contamination results, so the
terminal table, the JSON file and the HTML page can never disagree. Keys are listed in
README `<!-- section:audit -->`; adding keys keeps the schema version, renaming bumps it.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

import numpy as np

from replaymill.audit.funnel import raw_funnel
from replaymill.audit.stats import LENGTH_EDGES, QUALITY_BINS, QUALITY_EDGES, AuditStats, duplicate_rate, hll_relative_error

REPORT_SCHEMA = "replaymill.audit/1"


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _hist_quantile(counts: np.ndarray, edges: list[float], q: float) -> float | None:
    """Quantile read off a histogram by linear interpolation inside the bin (None when empty)."""
    total = counts.sum()
    if total == 0:
        return None
    target = q * total
    cum = np.cumsum(counts)
    i = int(np.searchsorted(cum, target, side="left"))
    lo = edges[i]
    hi = edges[i + 1] if i + 1 < len(edges) else edges[i] * 2  # open last bin: assume one doubling
    before = cum[i - 1] if i else 0
    frac = (target - before) / counts[i] if counts[i] else 0.0
    return float(lo + frac * (hi - lo))


def build_report(
    stats: AuditStats,
    *,
    inputs: list[str],
    input_kind: str,
    funnel: dict[str, Any] | None = None,
    target: dict[str, Any] | None = None,
    contamination: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the report dict (gates are added later by `audit.gates.apply_gates`).

    `funnel` is the manifest's funnel for shard sets; for raw input it is derived from the
    reader's rejects (documents read = audited + rejected).
    """
    by_domain, by_lang, total = totals_section(stats)
    if funnel is None and input_kind == "raw":
        funnel = raw_funnel(stats.rejects, total["docs"])
    return {
        "schema": REPORT_SCHEMA,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "inputs": list(inputs),
        "input_kind": input_kind,
        "totals": {**total, "tokens_missing_docs": stats.tokens_missing},
        "by_domain": by_domain,
        "by_lang": by_lang,
        "by_domain_lang": [
            {"domain": d, "lang": lang, "docs": int(v[0]), "chars": int(v[1]), "tokens": int(v[2])}
            for (d, lang), v in sorted(stats.cells.items())
        ],
        "quality": {"edges": list(QUALITY_EDGES), "by_domain": quality_section(stats)},
        "length_chars": {"edges": list(LENGTH_EDGES), "by_domain": length_section(stats, by_domain)},
        "duplicates": duplicates_section(stats),
        "distinct": distinct_section(stats, total["docs"]),
        "funnel": funnel,
        "target": target,
        "contamination": contamination,
        "gates": None,
    }


def totals_section(stats: AuditStats) -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
    """Documents, characters and tokens per domain and per language with their shares, and overall."""
    by_domain = stats.totals_by(0)
    by_lang = stats.totals_by(1)
    total = {"docs": 0, "chars": 0, "tokens": 0}
    for t in by_domain.values():
        for k in total:
            total[k] += t[k]
    for table in (by_domain, by_lang):
        for t in table.values():
            t["share_docs"] = _share(t["docs"], total["docs"])
            t["share_tokens"] = _share(t["tokens"], total["tokens"])
    return by_domain, by_lang, total


def quality_section(stats: AuditStats) -> dict[str, Any]:
    """Per domain: the quality histogram (QUALITY_EDGES bins), unscored documents, mean and median."""
    quality = {}
    for dom, hist in sorted(stats.quality.items()):
        scored = int(hist[:QUALITY_BINS].sum())
        quality[dom] = {
            "counts": [int(x) for x in hist[:QUALITY_BINS]],
            "unscored": int(hist[QUALITY_BINS]),
            "mean": stats.quality_sum.get(dom, 0.0) / scored if scored else None,
            "median": _hist_quantile(hist[:QUALITY_BINS], list(QUALITY_EDGES), 0.5),
        }
    return quality


def length_section(stats: AuditStats, by_domain: dict[str, Any]) -> dict[str, Any]:
    """Per domain: the length histogram in characters (LENGTH_EDGES bins), mean and median."""
    return {
        dom: {
            "counts": [int(x) for x in hist],
            "mean": _share(by_domain[dom]["chars"], by_domain[dom]["docs"]) if dom in by_domain else None,
            "median": _hist_quantile(hist, list(LENGTH_EDGES), 0.5),
        }
        for dom, hist in sorted(stats.length.items())
    }


def duplicates_section(stats: AuditStats) -> dict[str, Any]:
    """Exact and near duplicate rates per domain and overall, from the stored cluster sizes."""
    rows = {}
    agg = np.zeros(3, dtype=np.int64)
    for dom, v in sorted(stats.dups.items()):
        agg += v
        rows[dom] = _dup_entry(v)
    return {"by_domain": rows, "total": _dup_entry(agg)}


def distinct_section(stats: AuditStats, docs: int) -> dict[str, Any] | None:
    """HyperLogLog distinct texts, URLs and hosts with the estimate's error (None without sketches)."""
    if stats.sketches is None:
        return None
    est = stats.sketches.estimates()
    return {
        **est,
        "text_identity": stats.sketches.text_identity,
        "relative_error": hll_relative_error(stats.sketches.precision),
        "estimated_text_dup_rate": max(0.0, 1.0 - est["texts"] / docs) if docs else 0.0,
    }


def _dup_entry(v: np.ndarray) -> dict[str, Any]:
    rows, exact, near = (int(x) for x in v)
    return {
        "rows": rows,
        "exact_represented": exact,
        "exact_rate": duplicate_rate(exact, rows),
        "near_represented": near,
        "near_rate": duplicate_rate(near, rows),
    }


def json_safe(obj: Any) -> Any:
    """Replace non-finite floats by None so the report is strict JSON (RFC 8259 has no NaN/inf)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj
