"""The audit report three ways: a terminal table (rich), stable JSON, and a self-contained HTML page.

All three read the same report dict (`audit.report.build_report`), so they cannot disagree.
The HTML page embeds its plots as base64 PNGs and its style inline: one file that can be mailed,
attached to a CI run or opened offline, with no JavaScript and no network access.
"""
from __future__ import annotations

import base64
import html
import io
import json
import sys
from typing import Any

from replaymill.audit.report import json_safe

MAX_LANGS_PLOTTED = 6  # languages shown separately in the stacked bars; the rest are "other"


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
    """One row per domain with everything the tables show (target columns empty without a target)."""
    targets = _target_rows(report)
    by = (report.get("target") or {}).get("by", "tokens")
    rows = []
    for dom in sorted(set(report["by_domain"]) | set(targets)):
        t = report["by_domain"].get(dom, {"docs": 0, "tokens": 0, "chars": 0, "share_docs": 0.0, "share_tokens": 0.0})
        tr = targets.get(dom)
        # raw input was never deduplicated: its stored cluster sizes are all 1 and say nothing
        dup = report["duplicates"]["by_domain"].get(dom, {}) if report["input_kind"] != "raw" else {}
        q = report["quality"]["by_domain"].get(dom, {})
        ln = report["length_chars"]["by_domain"].get(dom, {})
        rows.append({
            "domain": dom, "docs": t["docs"], "tokens": t["tokens"], "chars": t["chars"],
            "share": t["share_tokens"] if by == "tokens" else t["share_docs"],
            "target": tr["target"] if tr else None, "diff": tr["diff"] if tr else None,
            "short": bool(tr and tr["short"]),
            "exact_rate": dup.get("exact_rate"), "near_rate": dup.get("near_rate"),
            "quality_mean": q.get("mean"), "length_median": ln.get("median"),
        })
    return rows


# ---- terminal ------------------------------------------------------------------------------

def render_terminal(report: dict[str, Any], console=None) -> None:
    """Print the report as rich tables (domains, languages, funnel, distinct counts, target, gates)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    # Piped output (CI logs) gets a fixed width wide enough for every column instead of rich's 80.
    console = console or Console(width=None if sys.stdout.isatty() else 140)
    tot = report["totals"]
    console.print(f"[bold]replaymill audit[/bold] ({report['input_kind']}): {', '.join(report['inputs'])}")
    console.print(f"{tot['docs']:,} documents, {tot['tokens']:,} tokens, {tot['chars']:,} characters"
                  + (f" ({tot['tokens_missing_docs']:,} documents without a token count)" if tot["tokens_missing_docs"] else ""))

    has_target = report.get("target") is not None
    table = Table(title="By domain", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("domain", no_wrap=True)
    for col in ("docs", "tokens", "chars", "share"):
        table.add_column(col, justify="right", no_wrap=True)
    if has_target:
        for col in ("target", "diff"):
            table.add_column(col, justify="right", no_wrap=True)
    for col in ("dup exact", "dup near", "quality", "chars p50"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in _domain_rows(report):
        cells = [r["domain"], f"{r['docs']:,}", human(r["tokens"]), human(r["chars"]), pct(r["share"])]
        if has_target:
            diff = points(r["diff"])
            cells += [pct(r["target"]), f"[red]{diff}[/red]" if r["short"] else diff]
        cells += [pct(r["exact_rate"]), pct(r["near_rate"]),
                  "-" if r["quality_mean"] is None else f"{r['quality_mean']:.2f}", human(r["length_median"])]
        table.add_row(*cells)
    console.print(table)

    langs = sorted(report["by_lang"].items(), key=lambda kv: -kv[1]["tokens"])
    lt = Table(title=f"By language ({len(langs)})", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("lang", "docs", "tokens", "share (tokens)"):
        lt.add_column(col, justify="left" if col == "lang" else "right")
    for lang, t in langs[:12]:
        lt.add_row(lang, f"{t['docs']:,}", f"{t['tokens']:,}", pct(t["share_tokens"]))
    if len(langs) > 12:
        rest = langs[12:]
        lt.add_row(f"{len(rest)} others", f"{sum(t['docs'] for _, t in rest):,}",
                   f"{sum(t['tokens'] for _, t in rest):,}", pct(sum(t["share_tokens"] for _, t in rest)))
    console.print(lt)

    cells = sorted(report["by_domain_lang"], key=lambda c: -c["tokens"])
    ct = Table(title=f"Domain x language (top {min(15, len(cells))} of {len(cells)} by tokens)", title_justify="left",
               box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("domain", "lang", "docs", "tokens", "chars"):
        ct.add_column(col, justify="left" if col in ("domain", "lang") else "right")
    for c in cells[:15]:
        ct.add_row(c["domain"], c["lang"], f"{c['docs']:,}", f"{c['tokens']:,}", f"{c['chars']:,}")
    console.print(ct)

    funnel = report.get("funnel")
    if funnel:
        ft = Table(title="Funnel", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        ft.add_column("stage")
        ft.add_column("documents", justify="right")
        ft.add_row("read", f"{funnel['read']:,}")
        for reason, n in sorted(funnel["dropped"].items(), key=lambda kv: -kv[1]):
            ft.add_row(f"  dropped: {reason}", f"-{n:,}")
        ft.add_row("kept", f"{funnel['kept']:,}")
        console.print(ft)

    dist = report.get("distinct")
    if dist:
        console.print(f"Distinct (HyperLogLog, +/-{pct(dist['relative_error'])}): {dist['texts']:,} {dist['text_identity']} texts "
                      f"(estimated exact-duplicate rate {pct(dist['estimated_text_dup_rate'])}), "
                      f"{dist['urls']:,} URLs, {dist['hosts']:,} hosts")
    dup = report["duplicates"]["total"]
    if report["input_kind"] != "raw":
        console.print(f"Stored cluster sizes: {pct(dup['exact_rate'])} of documents removed as exact duplicates, "
                      f"{pct(dup['near_rate'])} as near duplicates")

    target = report.get("target")
    if target:
        kl = "inf" if target["kl_infinite"] else f"{target['kl_target_achieved']:.4f}"
        console.print(f"Target [bold]{target.get('name', '')}[/bold] by {target['by']}: total variation "
                      f"{target['total_variation']:.4f}, KL(target||achieved) {kl} nats; "
                      f"short: {', '.join(target['short']) or 'none'}; largest corpus at target proportions: "
                      f"{human(target['max_total_at_target'])} {target['by']}")

    cont = report.get("contamination")
    if cont:
        console.print(f"Contamination: {cont['eval_docs_matched']:,} of {cont['eval_docs']:,} evaluation documents "
                      f"have a near duplicate in the corpus ({cont['corpus_docs_matched']:,} corpus documents, "
                      f"Jaccard >= {cont['threshold']})")
        if cont["matches"]:
            mt = Table(title="Overlapping documents", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
            for col in ("corpus id", "eval id", "eval file", "est. Jaccard"):
                mt.add_column(col, justify="right" if col == "est. Jaccard" else "left")
            for m in cont["matches"][:20]:
                mt.add_row(m["corpus_id"], m["eval_id"], m["eval_file"], f"{m['jaccard']:.2f}")
            console.print(mt)

    gates = report.get("gates")
    if gates:
        for g in gates["checks"]:
            mark = "[green]pass[/green]" if g["passed"] else "[red]FAIL[/red]"
            console.print(f"gate {g['name']}={g['threshold']}: {mark} ({g['detail']})")


# ---- HTML ----------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:1180px;margin:0 auto;padding:24px 32px 48px}
h1{font-size:26px;margin:8px 0 2px} h2{font-size:19px;margin:34px 0 10px;border-bottom:1px solid #dde1e7;padding-bottom:6px}
.sub{color:#5b6475;font-size:14px;word-break:break-all}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:18px 0}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:12px 16px;min-width:140px}
.card .v{font-size:22px;font-weight:600} .card .k{font-size:12px;color:#5b6475;text-transform:uppercase;letter-spacing:.04em}
.card.bad{border-color:#d9534f;background:#fdf1f0} .card.good{border-color:#3c9d5d;background:#f0f8f2}
table{border-collapse:collapse;background:#fff;font-size:13px;margin:8px 0;border:1px solid #dde1e7}
th,td{padding:5px 10px;border-bottom:1px solid #eceef2;text-align:right;white-space:nowrap}
th{background:#eef0f4;font-weight:600} td:first-child,th:first-child,td.l,th.l{text-align:left}
td.l{white-space:normal;max-width:520px}
tr.short td{background:#fdf1f0} .fail{color:#c0392b;font-weight:600} .pass{color:#2e7d4f;font-weight:600}
img{max-width:100%;background:#fff;border:1px solid #dde1e7;border-radius:6px;margin:6px 0}
.note{font-size:13px;color:#5b6475;max-width:900px}
"""


def _png(fig) -> str:
    """A matplotlib figure as an <img> with a base64 PNG data URI (then the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode("ascii")}">'


def _human_formatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda x, _pos: human(x))


def _palette(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def _plot_composition(report: dict[str, Any]) -> str:
    """Tokens by domain stacked by language, and (with a target) achieved vs target shares."""
    import matplotlib.pyplot as plt

    domains = sorted(report["by_domain"], key=lambda d: -report["by_domain"][d]["tokens"])
    targets = _target_rows(report)
    all_domains = domains + sorted(d for d in targets if d not in report["by_domain"])
    langs = [l for l, _ in sorted(report["by_lang"].items(), key=lambda kv: -kv[1]["tokens"])]
    shown = langs[:MAX_LANGS_PLOTTED]
    per = {d: {} for d in all_domains}
    for c in report["by_domain_lang"]:
        key = c["lang"] if c["lang"] in shown else "other"
        per[c["domain"]][key] = per[c["domain"]].get(key, 0) + c["tokens"]
    series = shown + (["other"] if len(langs) > len(shown) else [])
    ncols = 2 if targets else 1
    fig, axes = plt.subplots(1, ncols, figsize=(11 if targets else 8, 0.45 * len(all_domains) + 1.6), squeeze=False)
    ax = axes[0][0]
    left = [0.0] * len(all_domains)
    for color, lang in zip(_palette(len(series)), series):
        vals = [per[d].get(lang, 0) for d in all_domains]
        ax.barh(all_domains, vals, left=left, color=color, label=lang)
        left = [a + b for a, b in zip(left, vals)]
    ax.invert_yaxis()
    ax.set_xlabel("tokens")
    ax.set_title("Tokens by domain and language")
    ax.legend(title="language", fontsize=8, loc="lower right")
    ax.xaxis.set_major_formatter(_human_formatter())
    if targets:
        by = report["target"]["by"]
        ax2 = axes[0][1]
        ys = range(len(all_domains))
        ach = [targets.get(d, {}).get("achieved", 0.0) * 100 for d in all_domains]
        tgt = [targets.get(d, {}).get("target", 0.0) * 100 for d in all_domains]
        ax2.barh([y - 0.2 for y in ys], ach, height=0.4, label="achieved", color="#4c72b0")
        ax2.barh([y + 0.2 for y in ys], tgt, height=0.4, label="target", color="#c9ccd3", edgecolor="#6b7280")
        for y, d in zip(ys, all_domains):
            if targets.get(d, {}).get("short"):
                ax2.text(max(ach[y], tgt[y]) + 0.5, y, "short", va="center", color="#c0392b", fontsize=8)
        ax2.set_yticks(list(ys), all_domains)
        ax2.invert_yaxis()
        ax2.set_xlabel(f"share of {by} (%)")
        ax2.set_title(f"Achieved vs target (TV {report['target']['total_variation']:.3f})")
        ax2.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def _small_multiples(report: dict[str, Any], key: str, title: str, xlabel: str, log_x: bool) -> str:
    """One histogram panel per domain (shared bins) for quality or length."""
    import matplotlib.pyplot as plt

    section = report[key]
    edges = section["edges"]
    domains = [d for d in sorted(section["by_domain"]) if sum(section["by_domain"][d]["counts"])]
    if not domains:
        return '<p class="note">No scored documents.</p>'
    ncols = min(3, len(domains))
    nrows = (len(domains) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.8 * ncols, 2.5 * nrows), squeeze=False)
    for i, (dom, color) in enumerate(zip(domains, _palette(len(domains)))):
        ax = axes[i // ncols][i % ncols]
        counts = section["by_domain"][dom]["counts"]
        lefts = list(edges[: len(counts)])
        rights = list(edges[1: len(counts)]) + ([edges[-1] * 2] if len(edges) == len(counts) else [edges[len(counts)]])
        ax.bar(lefts, counts, width=[r - l for l, r in zip(lefts, rights)], align="edge", color=color, alpha=0.85,
               edgecolor="white", linewidth=0.5)
        if log_x:
            ax.set_xscale("log", base=2)
            ax.set_xlim(max(lefts[0], 16), rights[-1])
        med = section["by_domain"][dom].get("median")
        if med is not None:
            ax.axvline(med, color="#333", linestyle="--", linewidth=1)
        ax.set_title(f"{dom} (n={sum(counts):,})", fontsize=10)
        ax.tick_params(labelsize=8)
        ax.set_xlabel(xlabel, fontsize=8)
    for j in range(len(domains), nrows * ncols):
        axes[j // ncols][j % ncols].axis("off")
    fig.suptitle(title + " (dashed: median)", fontsize=11)
    fig.tight_layout()
    return _png(fig)


def _plot_heatmap(report: dict[str, Any], max_langs: int = 12) -> str:
    """Domain x language token shares (% of all tokens) as an annotated heatmap; small languages pooled."""
    import matplotlib.pyplot as plt
    import numpy as np

    total = report["totals"]["tokens"] or 1
    domains = sorted(report["by_domain"], key=lambda d: -report["by_domain"][d]["tokens"])
    langs = [l for l, _ in sorted(report["by_lang"].items(), key=lambda kv: -kv[1]["tokens"])]
    cols = langs[:max_langs] + ([f"{len(langs) - max_langs} others"] if len(langs) > max_langs else [])
    grid = np.zeros((len(domains), len(cols)))
    for c in report["by_domain_lang"]:
        j = langs.index(c["lang"])
        grid[domains.index(c["domain"]), min(j, max_langs)] += 100 * c["tokens"] / total
    fig, ax = plt.subplots(figsize=(0.75 * len(cols) + 2.5, 0.42 * len(domains) + 1.4))
    im = ax.imshow(grid, cmap="Blues", aspect="auto", vmin=0)
    for i in range(len(domains)):
        for j in range(len(cols)):
            if grid[i, j] > 0:
                ax.text(j, i, f"{grid[i, j]:.1f}" if grid[i, j] >= 0.1 else "<.1", ha="center", va="center", fontsize=7,
                        color="white" if grid[i, j] > grid.max() * 0.6 else "#1d2330")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(domains)), domains, fontsize=8)
    ax.set_title("% of tokens by domain and language", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label="% of tokens")
    fig.tight_layout()
    return _png(fig)


def _plot_duplicates(report: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    rows = report["duplicates"]["by_domain"]
    domains = sorted(rows)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(domains) + 1.4))
    ys = range(len(domains))
    ax.barh([y - 0.2 for y in ys], [rows[d]["exact_rate"] * 100 for d in domains], height=0.4,
            label="exact (stored cluster sizes)", color="#dd8452")
    ax.barh([y + 0.2 for y in ys], [rows[d]["near_rate"] * 100 for d in domains], height=0.4,
            label="near (stored component sizes)", color="#8172b3")
    top = max([rows[d]["exact_rate"] for d in domains] + [rows[d]["near_rate"] for d in domains] + [0.0]) * 100
    ax.set_xlim(0, max(1.0, top * 1.25))
    for y, d in zip(ys, domains):
        for off, key in ((-0.2, "exact_rate"), (0.2, "near_rate")):
            if rows[d][key] > 0:
                ax.text(rows[d][key] * 100, y + off, f" {100 * rows[d][key]:.1f}%", va="center", fontsize=7)
    ax.set_yticks(list(ys), domains)
    ax.invert_yaxis()
    ax.set_xlabel("% of original documents removed as duplicates")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Duplicate rates by domain")
    fig.tight_layout()
    return _png(fig)


def _plot_funnel(funnel: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    drops = sorted(funnel["dropped"].items(), key=lambda kv: -kv[1])
    labels = ["read"] + [f"- {r}" for r, _ in drops] + ["kept"]
    remaining, lefts, widths, colors = funnel["read"], [], [], []
    lefts.append(0)
    widths.append(funnel["read"])
    colors.append("#4c72b0")
    for _, n in drops:
        remaining -= n
        lefts.append(remaining)
        widths.append(n)
        colors.append("#c44e52")
    lefts.append(0)
    widths.append(funnel["kept"])
    colors.append("#55a868")
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(labels) + 1.2))
    ax.barh(labels, widths, left=lefts, color=colors)
    for y, (l, w) in enumerate(zip(lefts, widths)):
        ax.text(l + w, y, f" {w:,}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, funnel["read"] * 1.15)
    ax.xaxis.set_major_formatter(_human_formatter())
    ax.set_xlabel("documents")
    ax.set_title("Funnel")
    fig.tight_layout()
    return _png(fig)


def _table(headers: list[str], rows: list[list[str]], row_classes: list[str] | None = None,
           left: tuple[int, ...] = (0,)) -> str:
    """An HTML table; cells are already-escaped HTML, columns in `left` are left-aligned text."""
    def attr(j: int) -> str:
        return " class=l" if j in left else ""

    head = "".join(f"<th{attr(j)}>{html.escape(h)}</th>" for j, h in enumerate(headers))
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td{attr(j)}>{c}</td>" for j, c in enumerate(row)) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _card(label: str, value: str, cls: str = "") -> str:
    return f'<div class="card {cls}"><div class="k">{html.escape(label)}</div><div class="v">{html.escape(value)}</div></div>'


def render_html(report: dict[str, Any]) -> str:
    """The whole report as one HTML document with embedded PNG plots."""
    import matplotlib

    matplotlib.use("Agg")
    esc = html.escape
    tot = report["totals"]
    target = report.get("target")
    gates = report.get("gates")
    cards = [_card("documents", human(tot["docs"])), _card("tokens", human(tot["tokens"])),
             _card("characters", human(tot["chars"])), _card("domains", str(len(report["by_domain"]))),
             _card("languages", str(len(report["by_lang"])))]
    if report.get("distinct"):
        cards.append(_card("distinct texts (HLL)", human(report["distinct"]["texts"])))
    if target:
        cards.append(_card("total variation", f"{target['total_variation']:.3f}",
                           "bad" if target["short"] else "good"))
    if gates:
        cards.append(_card("gates", "pass" if gates["passed"] else "FAIL", "good" if gates["passed"] else "bad"))
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<title>replaymill audit: {esc(', '.join(report['inputs']))}</title><style>{_CSS}</style></head><body><main>",
        "<h1>replaymill audit</h1>",
        f"<div class=sub>{esc(report['input_kind'])}: {esc(', '.join(report['inputs']))}<br>"
        f"generated {esc(report['generated_at'])}, report schema {esc(report['schema'])}</div>",
        f"<div class=cards>{''.join(cards)}</div>",
    ]
    if gates:
        rows = [[esc(g["name"]), esc(str(g["threshold"])),
                 f"<span class={'pass' if g['passed'] else 'fail'}>{'pass' if g['passed'] else 'FAIL'}</span>",
                 esc(g["detail"])] for g in gates["checks"]]
        parts += ["<h2>CI gates</h2>", _table(["gate", "threshold", "result", "detail"], rows, left=(0, 3))]

    if not tot["docs"]:
        parts += ["<h2>Composition</h2><p class=note>No documents.</p>", "</main></body></html>"]
        return "\n".join(parts)
    parts += ["<h2>Composition</h2>", _plot_composition(report)]
    if target:
        kl = "infinite (a target domain is missing)" if target["kl_infinite"] else f"{target['kl_target_achieved']:.4f} nats"
        parts.append(
            f"<p class=note>Target <b>{esc(str(target.get('name', '')))}</b> by {esc(target['by'])}: total variation "
            f"{target['total_variation']:.4f}, KL(target&#8214;achieved) {kl}. Short domains (below target by more than "
            f"{pct(target['tolerance'])}): <b>{esc(', '.join(target['short']) or 'none')}</b>. Largest corpus drawable at "
            f"exactly the target proportions: {human(target['max_total_at_target'])} {esc(target['by'])}.</p>")
    headers = ["domain", "docs", "tokens", "chars", "share"] + (["target", "diff"] if target else []) + [
        "exact dup", "near dup", "mean quality", "median chars"]
    rows, classes = [], []
    for r in _domain_rows(report):
        row = [esc(r["domain"]), f"{r['docs']:,}", f"{r['tokens']:,}", f"{r['chars']:,}", pct(r["share"])]
        if target:
            row += [pct(r["target"]), points(r["diff"], " pp")]
        row += [pct(r["exact_rate"]), pct(r["near_rate"]),
                "-" if r["quality_mean"] is None else f"{r['quality_mean']:.3f}", human(r["length_median"])]
        rows.append(row)
        classes.append("short" if r["short"] else "")
    parts.append(_table(headers, rows, classes))

    cells = sorted(report["by_domain_lang"], key=lambda c: -c["tokens"])
    parts += ["<h2>Domain &times; language</h2>", _plot_heatmap(report),
              f"<p class=note>{len(cells)} non-empty cells; the {min(15, len(cells))} largest by tokens "
              "(every cell is in the JSON report under <code>by_domain_lang</code>):</p>",
              _table(["domain", "language", "docs", "tokens", "chars"],
                     [[esc(c["domain"]), esc(c["lang"]), f"{c['docs']:,}", f"{c['tokens']:,}", f"{c['chars']:,}"]
                      for c in cells[:15]], left=(0, 1))]

    parts += ["<h2>Quality</h2>",
              _small_multiples(report, "quality", "Quality score by domain", "quality score (0-1)", log_x=False)]
    unscored = {d: v["unscored"] for d, v in report["quality"]["by_domain"].items() if v["unscored"]}
    if unscored:
        parts.append("<p class=note>Documents without a quality score (not plotted): "
                     + esc(", ".join(f"{d} {n:,}" for d, n in unscored.items())) + ".</p>")
    parts += ["<h2>Length</h2>",
              _small_multiples(report, "length_chars", "Document length by domain", "characters (log scale)", log_x=True)]

    parts.append("<h2>Duplicates</h2>")
    if report["input_kind"] == "raw":
        parts.append("<p class=note>Raw input has not been deduplicated, so there are no stored cluster sizes; "
                     "the HyperLogLog estimate below says how much exact dedup would remove.</p>")
    else:
        parts.append(_plot_duplicates(report))
    dist = report.get("distinct")
    if dist:
        parts.append(f"<p class=note>HyperLogLog estimates (&plusmn;{pct(dist['relative_error'])}): "
                     f"{dist['texts']:,} distinct texts ({esc(dist['text_identity'])} identity) among {tot['docs']:,} documents "
                     f"(estimated exact-duplicate rate {pct(dist['estimated_text_dup_rate'])}), "
                     f"{dist['urls']:,} distinct URLs, {dist['hosts']:,} distinct hosts.</p>")

    funnel = report.get("funnel")
    if funnel and funnel["read"]:
        parts += ["<h2>Funnel</h2>", _plot_funnel(funnel)]

    cont = report.get("contamination")
    if cont:
        parts.append("<h2>Contamination</h2>")
        parts.append(f"<p class=note>{cont['eval_docs_matched']:,} of {cont['eval_docs']:,} evaluation documents "
                     f"({esc(', '.join(cont['eval_files']))}) have a near duplicate in the corpus "
                     f"(MinHash {cont['num_perm']} permutations, {cont['bands']}&times;{cont['rows']} bands, "
                     f"word {cont['ngram']}-grams, estimated Jaccard &ge; {cont['threshold']}); "
                     f"{cont['corpus_docs_matched']:,} corpus documents overlap.</p>")
        if cont["matches"]:
            parts.append(_table(["corpus id", "eval id", "eval file", "est. Jaccard", "corpus text"],
                                [[esc(m["corpus_id"]), esc(m["eval_id"]), esc(m["eval_file"]), f"{m['jaccard']:.2f}",
                                  esc(m["sample"][:90])] for m in cont["matches"][:100]], left=(0, 1, 2, 4)))
    parts.append("</main></body></html>")
    return "\n".join(parts)
