"""The audit report three ways: a terminal table (rich), stable JSON, and a self-contained HTML page.

All three read the same report dict (`audit.report.build_report`), so they cannot disagree.
Each output is a sequence of section functions (`TERMINAL_SECTIONS` here, `HTML_SECTIONS` in
`audit.html_report`, which draws the page's plots), so a section is read, tested and changed alone.
"""
from __future__ import annotations

import json
import sys
from typing import Any

from replaymill.audit.report import json_safe

# ---- JSON ----------------------------------------------------------------------------------

def to_json(report: dict[str, Any]) -> str:
    """Strict JSON (no NaN/inf), keys in a stable order, indented for diffs."""
    return json.dumps(json_safe(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# ---- formatting helpers --------------------------------------------------------------------

def human(n: float | int | None) -> str:
    """1234567 -> '1.23M': counts readable at a glance."""
    if n is None:
        return "-"
    n = float(n)
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}" if n == int(n) else f"{n:.3g}"


def contamination_rule(cont: dict[str, Any]) -> str:
    """What counted as contamination in words, for either method of `audit.contamination`."""
    if cont["method"] == "ngram":
        rule = f"sharing at least {cont['min_ngrams']} word {cont['ngram']}-grams"
        return rule + (f" and {pct(cont['min_overlap'])} of the item's" if cont["min_overlap"] else "")
    return (f"near duplicates: estimated Jaccard >= {cont['threshold']}, MinHash {cont['bands']}x{cont['rows']} "
            f"bands of word {cont['ngram']}-grams, P(candidate) at the threshold {cont['lsh_recall_at_threshold']:.2f}")


def match_strength(m: dict[str, Any]) -> str:
    """One overlap as text: shared n-grams and share of the item's, or the estimated Jaccard."""
    if "ngrams" in m:
        return f"{m['ngrams']:,} n-grams ({pct(m['overlap'])})"
    return f"J {m['jaccard']:.2f}"


def pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def points(diff: float | None, unit: str = "") -> str:
    """A share difference in percentage points, signed, without a "-0.0" for tiny negatives."""
    if diff is None:
        return "-"
    text = f"{100 * diff:+.1f}"
    return ("+0.0" if text == "-0.0" else text) + unit


def _target_rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    target = report.get("target") or {}
    return {r["domain"]: r for r in target.get("domains", [])}


def _domain_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per domain with everything the tables show (target columns empty without a target).

    `counted_as`: the key a domain the target does not name counts toward (news -> web); `label`
    names the domain with the ones counted in it, as "web (+news)", since its diff includes them."""
    targets = _target_rows(report)
    by = (report.get("target") or {}).get("by", "tokens")
    folded = (report.get("target") or {}).get("counted_as") or {}
    rows = []
    for dom in sorted(set(report["by_domain"]) | set(targets)):
        t = report["by_domain"].get(dom, {"docs": 0, "tokens": 0, "chars": 0, "share_docs": 0.0, "share_tokens": 0.0})
        tr = targets.get(dom)
        # raw input was never deduplicated: its stored cluster sizes are all 1 and say nothing
        dup = report["duplicates"]["by_domain"].get(dom, {}) if report["input_kind"] != "raw" else {}
        q = report["quality"]["by_domain"].get(dom, {})
        ln = report["length_chars"]["by_domain"].get(dom, {})
        included = sorted(d for d, key in folded.items() if key == dom)
        rows.append({
            "domain": dom, "label": dom + (f" (+{', '.join(included)})" if included else ""),
            "counted_as": folded.get(dom), "docs": t["docs"], "tokens": t["tokens"], "chars": t["chars"],
            "share": t["share_tokens"] if by == "tokens" else t["share_docs"],
            "target": tr["target"] if tr else None, "diff": tr["diff"] if tr else None,
            "short": bool(tr and tr["short"]),
            "exact_rate": dup.get("exact_rate"), "near_rate": dup.get("near_rate"),
            "quality_mean": q.get("mean"), "length_median": ln.get("median"),
        })
    return rows


# ---- terminal ------------------------------------------------------------------------------

def render_terminal(report: dict[str, Any], console=None) -> None:
    """Print the report as rich tables, one section after another (see TERMINAL_SECTIONS)."""
    from rich.console import Console

    # Piped output (CI logs) gets a fixed width wide enough for every column instead of rich's 80.
    console = console or Console(width=None if sys.stdout.isatty() else 140)
    for section in TERMINAL_SECTIONS:
        section(report, console)


def _simple_table(title: str, columns: list[str], left: tuple[str, ...] = ()):
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 or col in left else "right", no_wrap=True)
    return table


def _term_header(report: dict[str, Any], console) -> None:
    tot = report["totals"]
    console.print(f"[bold]replaymill audit[/bold] ({report['input_kind']}): {', '.join(report['inputs'])}")
    console.print(f"{tot['docs']:,} documents, {tot['tokens']:,} tokens, {tot['chars']:,} characters"
                  + (f" ({tot['tokens_missing_docs']:,} documents without a token count)" if tot["tokens_missing_docs"] else ""))


def _term_domains(report: dict[str, Any], console) -> None:
    has_target = report.get("target") is not None
    columns = ["domain", "docs", "tokens", "chars", "share"] + (["target", "diff"] if has_target else []) + [
        "dup exact", "dup near", "quality", "chars p50"]
    table = _simple_table("By domain", columns)
    for r in _domain_rows(report):
        cells = [r["label"], f"{r['docs']:,}", human(r["tokens"]), human(r["chars"]), pct(r["share"])]
        if has_target:
            diff = points(r["diff"])
            target = f"-> {r['counted_as']}" if r["counted_as"] else pct(r["target"])
            cells += [target, f"[red]{diff}[/red]" if r["short"] else diff]
        cells += [pct(r["exact_rate"]), pct(r["near_rate"]),
                  "-" if r["quality_mean"] is None else f"{r['quality_mean']:.2f}", human(r["length_median"])]
        table.add_row(*cells)
    console.print(table)


def _term_languages(report: dict[str, Any], console, shown: int = 12) -> None:
    langs = sorted(report["by_lang"].items(), key=lambda kv: -kv[1]["tokens"])
    table = _simple_table(f"By language ({len(langs)})", ["lang", "docs", "tokens", "share (tokens)"])
    for lang, t in langs[:shown]:
        table.add_row(lang, f"{t['docs']:,}", f"{t['tokens']:,}", pct(t["share_tokens"]))
    if len(langs) > shown:
        rest = langs[shown:]
        table.add_row(f"{len(rest)} others", f"{sum(t['docs'] for _, t in rest):,}",
                      f"{sum(t['tokens'] for _, t in rest):,}", pct(sum(t["share_tokens"] for _, t in rest)))
    console.print(table)


def _term_cells(report: dict[str, Any], console, shown: int = 15) -> None:
    cells = sorted(report["by_domain_lang"], key=lambda c: -c["tokens"])
    table = _simple_table(f"Domain x language (top {min(shown, len(cells))} of {len(cells)} by tokens)",
                          ["domain", "lang", "docs", "tokens", "chars"], left=("lang",))
    for c in cells[:shown]:
        table.add_row(c["domain"], c["lang"], f"{c['docs']:,}", f"{c['tokens']:,}", f"{c['chars']:,}")
    console.print(table)


def _term_funnel(report: dict[str, Any], console) -> None:
    from replaymill.audit.funnel import funnel_table
    from replaymill.schemas.manifest import Funnel

    funnel = report.get("funnel")
    if funnel:
        console.print(funnel_table(Funnel.model_validate(funnel), title="Funnel"))


def _term_duplicates(report: dict[str, Any], console) -> None:
    dist = report.get("distinct")
    if dist:
        console.print(f"Distinct (HyperLogLog, +/-{pct(dist['relative_error'])}): {dist['texts']:,} {dist['text_identity']} texts "
                      f"(estimated exact-duplicate rate {pct(dist['estimated_text_dup_rate'])}), "
                      f"{dist['urls']:,} URLs, {dist['hosts']:,} hosts")
    dup = report["duplicates"]["total"]
    if report["input_kind"] != "raw":
        console.print(f"Stored cluster sizes: {pct(dup['exact_rate'])} of documents removed as exact duplicates, "
                      f"{pct(dup['near_rate'])} as near duplicates")


def _term_target(report: dict[str, Any], console) -> None:
    from replaymill.audit.compare import limiting_sentence

    target = report.get("target")
    if not target:
        return
    kl = "inf" if target["kl_infinite"] else f"{target['kl_target_achieved']:.4f}"
    console.print(f"Target [bold]{target.get('name', '')}[/bold] by {target['by']}: total variation "
                  f"{target['total_variation']:.4f}, KL(target||achieved) {kl} nats; "
                  f"short: {', '.join(target['short']) or 'none'}; largest corpus at target proportions: "
                  f"{human(target['max_total_at_target'])} {target['by']}", soft_wrap=True)
    sentence = limiting_sentence(target, human)
    if sentence:
        console.print(sentence, soft_wrap=True)


def _term_contamination(report: dict[str, Any], console) -> None:
    cont = report.get("contamination")
    if not cont:
        return
    console.print(f"Contamination: {cont['eval_docs_matched']:,} of {cont['eval_docs']:,} evaluation documents "
                  f"appear in the corpus ({contamination_rule(cont)}; {cont['corpus_docs_matched']:,} corpus documents)",
                  soft_wrap=True)
    if cont["by_eval"]:
        table = _simple_table("Evaluation documents found in the corpus",
                              ["eval id", "eval file", "corpus docs", "best corpus id", "overlap"],
                              left=("eval id", "eval file", "best corpus id"))
        for e in cont["by_eval"][:20]:
            best = e["matches"][0]
            table.add_row(e["eval_id"], e["eval_file"], f"{e['corpus_docs']:,}", best["corpus_id"],
                          match_strength(best))
        console.print(table)


def _term_gates(report: dict[str, Any], console) -> None:
    for g in (report.get("gates") or {}).get("checks", []):
        mark = "[green]pass[/green]" if g["passed"] else "[red]FAIL[/red]"
        console.print(f"gate {g['name']}={g['threshold']}: {mark} ({g['detail']})")


TERMINAL_SECTIONS = (_term_header, _term_domains, _term_languages, _term_cells, _term_funnel, _term_duplicates,
                     _term_target, _term_contamination, _term_gates)


# ---- HTML ----------------------------------------------------------------------------------

def render_html(report: dict[str, Any]) -> str:
    """The whole report as one self-contained HTML page (`audit.html_report`)."""
    from replaymill.audit.html_report import render_html as render

    return render(report)
