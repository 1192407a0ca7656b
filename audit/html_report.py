"""The audit report as one self-contained HTML page: sections of tables and plots.

The page embeds its plots as base64 PNGs and its style inline: one file that can be mailed,
attached to a CI run or opened offline, with no JavaScript and no network access. It is the
sequence `HTML_SECTIONS`, each a function of the report dict returning HTML.

Plots say what their data says: a chart whose every value is zero becomes a sentence, histogram
axes span the bins that hold documents, panels of one histogram share their count axis and each
bar carries its count (a domain of 2 documents never looks as tall as one of 555), and the funnel
is drawn stage by stage in pipeline order.
"""
from __future__ import annotations

import base64
import html
import io
from typing import Any

from replaymill.audit.render import (
    _domain_rows,
    _target_rows,
    contamination_rule,
    human,
    match_strength,
    pct,
    points,
)

MAX_LANGS_PLOTTED = 6  # languages shown separately in the stacked bars; the rest are "other"
MIN_PANEL_DOCS = 10    # histogram panels need at least this many documents (and 1/50 of the largest)

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
tr.stage td{font-weight:600;background:#f7f8fa} tr.reason td:first-child{padding-left:28px;color:#5b6475}
tr.zero td{color:#9aa1ad} tr.total td{font-weight:700}
img{max-width:100%;background:#fff;border:1px solid #dde1e7;border-radius:6px;margin:6px 0}
.note{font-size:13px;color:#5b6475;max-width:900px}
.action{font-size:14px;max-width:900px;background:#fff8e6;border:1px solid #f0d48a;border-radius:6px;padding:10px 14px}
"""


# ---- plot helpers --------------------------------------------------------------------------

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


def data_range(section: dict[str, Any], pad_bins: int = 1) -> tuple[int, int] | None:
    """The bins [first, last] that hold a document in any domain, widened by `pad_bins` each side:
    a histogram's x-axis spans the data, not the whole 0-1 (or 0-1M) range."""
    nonzero = [i for v in section["by_domain"].values() for i, n in enumerate(v["counts"]) if n]
    if not nonzero:
        return None
    n_bins = len(next(iter(section["by_domain"].values()))["counts"])
    return max(0, min(nonzero) - pad_bins), min(n_bins - 1, max(nonzero) + pad_bins)


# ---- plots ---------------------------------------------------------------------------------

def _plot_composition(report: dict[str, Any]) -> str:
    """Tokens by domain stacked by language (n documents at each bar), and (with a target)
    achieved vs target shares."""
    import matplotlib.pyplot as plt

    domains = sorted(report["by_domain"], key=lambda d: -report["by_domain"][d]["tokens"])
    targets = _target_rows(report)
    all_domains = domains + sorted(d for d in targets if d not in report["by_domain"])
    langs = [lang for lang, _ in sorted(report["by_lang"].items(), key=lambda kv: -kv[1]["tokens"])]
    shown = langs[:MAX_LANGS_PLOTTED]
    per: dict[str, dict[str, int]] = {d: {} for d in all_domains}
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
    for y, d in enumerate(all_domains):  # every bar says how many documents it stands for
        n = report["by_domain"].get(d, {}).get("docs", 0)
        ax.text(left[y], y, f" n={n:,}", va="center", fontsize=7, color="#333")
    ax.set_xlim(0, max(left + [1]) * 1.18)
    ax.invert_yaxis()
    ax.set_xlabel("tokens")
    ax.set_title("Tokens by domain and language")
    ax.legend(title="language", fontsize=8, loc="lower right")
    ax.xaxis.set_major_formatter(_human_formatter())
    if targets:
        _plot_target_shares(axes[0][1], report, all_domains, targets)
    fig.tight_layout()
    return _png(fig)


def _plot_target_shares(ax, report: dict[str, Any], domains: list[str], targets: dict[str, Any]) -> None:
    by = report["target"]["by"]
    ys = range(len(domains))
    ach = [targets.get(d, {}).get("achieved", 0.0) * 100 for d in domains]
    tgt = [targets.get(d, {}).get("target", 0.0) * 100 for d in domains]
    ax.barh([y - 0.2 for y in ys], ach, height=0.4, label="achieved", color="#4c72b0")
    ax.barh([y + 0.2 for y in ys], tgt, height=0.4, label="target", color="#c9ccd3", edgecolor="#6b7280")
    for y, d in zip(ys, domains):
        if targets.get(d, {}).get("short"):
            ax.text(max(ach[y], tgt[y]) + 0.5, y, "short", va="center", color="#c0392b", fontsize=8)
    ax.set_yticks(list(ys), domains)
    ax.invert_yaxis()
    ax.set_xlabel(f"share of {by} (%)")
    ax.set_title(f"Achieved vs target (TV {report['target']['total_variation']:.3f})")
    ax.legend(fontsize=8, loc="lower right")


def _small_multiples(report: dict[str, Any], key: str, title: str, xlabel: str, log_x: bool) -> str:
    """One histogram panel per domain: shared bins, x spanning the bins with data, one count axis
    for all panels and each bar's count written on it."""
    import matplotlib.pyplot as plt

    section = report[key]
    edges = section["edges"]
    sizes = {d: sum(v["counts"]) for d, v in section["by_domain"].items() if sum(v["counts"])}
    span = data_range(section)
    if not sizes or span is None:
        return '<p class="note">No scored documents.</p>'
    lo, hi = span
    # a panel of a few documents against one shared count axis is an empty frame: say those in words
    floor = max(MIN_PANEL_DOCS, max(sizes.values()) // 50)
    domains = sorted((d for d, n in sizes.items() if n >= floor), key=lambda d: (-sizes[d], d))
    few = sorted((d for d in sizes if d not in domains), key=lambda d: (-sizes[d], d))
    note = ""
    if few:
        def median(d: str) -> str:
            med = section["by_domain"][d].get("median")
            return "" if med is None else f", median {human(med) if log_x else f'{med:.2f}'}"

        note = ("<p class=note>Too few documents to draw (under " + str(floor) + "): "
                + html.escape("; ".join(f"{d} n={sizes[d]:,}{median(d)}" for d in few)) + ".</p>")
    if not domains:
        return note
    ncols = min(3, len(domains))
    nrows = (len(domains) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.8 * ncols, 2.6 * nrows), squeeze=False, sharey=True)
    top = max(max(section["by_domain"][d]["counts"]) for d in domains)
    for i, (dom, color) in enumerate(zip(domains, _palette(len(domains)))):
        ax = axes[i // ncols][i % ncols]
        counts = section["by_domain"][dom]["counts"]
        lefts = list(edges[: len(counts)])
        rights = list(edges[1: len(counts)]) + ([edges[-1] * 2] if len(edges) == len(counts) else [edges[len(counts)]])
        ax.bar(lefts, counts, width=[r - left for left, r in zip(lefts, rights)], align="edge", color=color,
               alpha=0.85, edgecolor="white", linewidth=0.5)
        for left, right, n in zip(lefts, rights, counts):
            if n:
                mid = (left * right) ** 0.5 if log_x and left > 0 else (left + right) / 2
                ax.text(mid, n, f"{n:,}", ha="center", va="bottom", fontsize=6, color="#333")
        if log_x:
            ax.set_xscale("log", base=2)
            ax.set_xlim(max(lefts[lo], 16), rights[hi])
        else:
            ax.set_xlim(lefts[lo], rights[hi])
        ax.set_ylim(0, top * 1.18)
        med = section["by_domain"][dom].get("median")
        if med is not None:
            ax.axvline(med, color="#333", linestyle="--", linewidth=1)
        ax.set_title(f"{dom} (n={sum(counts):,})", fontsize=10)
        ax.tick_params(labelsize=8)
        ax.set_xlabel(xlabel, fontsize=8)
    for j in range(len(domains), nrows * ncols):
        axes[j // ncols][j % ncols].axis("off")
    fig.suptitle(title + " (documents per bin, one count axis for all panels; dashed: median)", fontsize=11)
    fig.tight_layout()
    return _png(fig) + note


def _plot_heatmap(report: dict[str, Any], max_langs: int = 12) -> str:
    """Domain x language token shares (% of all tokens) as an annotated heatmap; small languages pooled."""
    import matplotlib.pyplot as plt
    import numpy as np

    total = report["totals"]["tokens"] or 1
    domains = sorted(report["by_domain"], key=lambda d: -report["by_domain"][d]["tokens"])
    langs = [lang for lang, _ in sorted(report["by_lang"].items(), key=lambda kv: -kv[1]["tokens"])]
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
    domains = sorted(d for d in rows if rows[d]["exact_rate"] or rows[d]["near_rate"])
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(domains) + 1.6))
    ys = range(len(domains))
    ax.barh([y - 0.2 for y in ys], [rows[d]["exact_rate"] * 100 for d in domains], height=0.4,
            label="exact (stored cluster sizes)", color="#dd8452")
    ax.barh([y + 0.2 for y in ys], [rows[d]["near_rate"] * 100 for d in domains], height=0.4,
            label="near (stored component sizes)", color="#8172b3")
    top = max([rows[d]["exact_rate"] for d in domains] + [rows[d]["near_rate"] for d in domains] + [0.0]) * 100
    ax.set_xlim(0, max(1.0, top * 1.3))
    for y, d in zip(ys, domains):
        for off, key in ((-0.2, "exact_rate"), (0.2, "near_rate")):
            if rows[d][key] > 0:
                ax.text(rows[d][key] * 100, y + off, f" {100 * rows[d][key]:.1f}%", va="center", fontsize=7)
    ax.set_yticks(list(ys), [f"{d} (n={rows[d]['rows']:,})" for d in domains])
    ax.invert_yaxis()
    ax.set_xlabel("% of original documents removed as duplicates")
    ax.set_title("Duplicate rates by domain")
    fig.legend(*ax.get_legend_handles_labels(), fontsize=8, loc="lower center", ncols=2, frameon=False)
    fig.tight_layout(rect=(0, 0.5 / fig.get_figheight(), 1, 1))  # room for the legend under the axis label
    return _png(fig)


def _plot_funnel(funnel: dict[str, Any]) -> str:
    """A waterfall of the funnel's stages in pipeline order: read, what each stage removed, kept."""
    import matplotlib.pyplot as plt

    from replaymill.audit.funnel import funnel_rows

    stages = [r for r in funnel_rows(funnel) if r.level == 0]
    remaining = funnel["read"]
    labels, lefts, widths, colors = [], [], [], []
    for r in stages:
        if r.kind == "drop":
            remaining -= r.docs
            lefts.append(remaining)
            colors.append("#c44e52" if r.docs else "#c9ccd3")
        elif r.kind == "add":
            lefts.append(remaining)
            remaining += r.docs
            colors.append("#8172b3")
        else:
            lefts.append(0)
            colors.append("#4c72b0" if r.kind == "read" else "#55a868")
        labels.append(r.label if r.kind in ("read", "kept") else ("+ " if r.kind == "add" else "- ") + r.label)
        widths.append(r.docs)
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(labels) + 1.2))
    ax.barh(labels, widths, left=lefts, color=colors)
    for y, (left, w) in enumerate(zip(lefts, widths)):
        ax.text(left + w, y, f" {w:,}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(funnel["read"], funnel["kept"], 1) * 1.15)
    ax.xaxis.set_major_formatter(_human_formatter())
    ax.set_xlabel("documents")
    ax.set_title("Funnel by stage, in pipeline order")
    fig.tight_layout()
    return _png(fig)


# ---- HTML helpers --------------------------------------------------------------------------

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


# ---- sections ------------------------------------------------------------------------------

def _html_header(report: dict[str, Any]) -> str:
    esc = html.escape
    tot, target, gates = report["totals"], report.get("target"), report.get("gates")
    cards = [_card("documents", human(tot["docs"])), _card("tokens", human(tot["tokens"])),
             _card("characters", human(tot["chars"])), _card("domains", str(len(report["by_domain"]))),
             _card("languages", str(len(report["by_lang"])))]
    if report.get("distinct"):
        cards.append(_card("distinct texts (HLL)", human(report["distinct"]["texts"])))
    if target:
        cards.append(_card("total variation", f"{target['total_variation']:.3f}", "bad" if target["short"] else "good"))
    if gates:
        cards.append(_card("gates", "pass" if gates["passed"] else "FAIL", "good" if gates["passed"] else "bad"))
    return "\n".join([
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<title>replaymill audit: {esc(', '.join(report['inputs']))}</title><style>{_CSS}</style></head><body><main>",
        "<h1>replaymill audit</h1>",
        (f"<div class=sub>{esc(report['input_kind'])}: {esc(', '.join(report['inputs']))}<br>"
         f"generated {esc(report['generated_at'])}, report schema {esc(report['schema'])}</div>"),
        f"<div class=cards>{''.join(cards)}</div>",
    ])


def _html_gates(report: dict[str, Any]) -> str:
    gates = report.get("gates")
    if not gates:
        return ""
    rows = [[html.escape(g["name"]), html.escape(str(g["threshold"])),
             f"<span class={'pass' if g['passed'] else 'fail'}>{'pass' if g['passed'] else 'FAIL'}</span>",
             html.escape(g["detail"])] for g in gates["checks"]]
    return "<h2>CI gates</h2>" + _table(["gate", "threshold", "result", "detail"], rows, left=(0, 3))


def _html_target_note(report: dict[str, Any]) -> str:
    from replaymill.audit.compare import limiting_sentence

    target = report.get("target")
    if not target:
        return ""
    esc = html.escape
    kl = "infinite (a target domain is missing)" if target["kl_infinite"] else f"{target['kl_target_achieved']:.4f} nats"
    note = (f"<p class=note>Target <b>{esc(str(target.get('name', '')))}</b> by {esc(target['by'])}: total variation "
            f"{target['total_variation']:.4f}, KL(target&#8214;achieved) {kl}. Short domains (below target by more than "
            f"{pct(target['tolerance'])}): <b>{esc(', '.join(target['short']) or 'none')}</b>. Largest corpus drawable at "
            f"exactly the target proportions: {human(target['max_total_at_target'])} {esc(target['by'])}.</p>")
    sentence = limiting_sentence(target, human)
    return note + (f"<p class=action>{esc(sentence)}</p>" if sentence else "")


def _html_composition(report: dict[str, Any]) -> str:
    target = report.get("target")
    headers = ["domain", "docs", "tokens", "chars", "share"] + (["target", "diff"] if target else []) + [
        "exact dup", "near dup", "mean quality", "median chars"]
    rows, classes = [], []
    for r in _domain_rows(report):
        row = [html.escape(r["label"]), f"{r['docs']:,}", f"{r['tokens']:,}", f"{r['chars']:,}", pct(r["share"])]
        if target:
            counted = f"&rarr; {html.escape(r['counted_as'])}" if r["counted_as"] else pct(r["target"])
            row += [counted, points(r["diff"], " pp")]
        row += [pct(r["exact_rate"]), pct(r["near_rate"]),
                "-" if r["quality_mean"] is None else f"{r['quality_mean']:.3f}", human(r["length_median"])]
        rows.append(row)
        classes.append("short" if r["short"] else "")
    folded = (target or {}).get("counted_as") or {}
    note = ("<p class=note>Domains the target does not name that count toward another share (topical web pages "
            "count as web): " + html.escape(", ".join(f"{d} &rarr; {k}" for d, k in folded.items())).replace(
                "&amp;rarr;", "&rarr;") + ".</p>") if folded else ""
    return ("<h2>Composition</h2>" + _plot_composition(report) + _html_target_note(report) + note
            + _table(headers, rows, classes))


def _html_cells(report: dict[str, Any]) -> str:
    esc = html.escape
    cells = sorted(report["by_domain_lang"], key=lambda c: -c["tokens"])
    return "".join([
        "<h2>Domain &times; language</h2>", _plot_heatmap(report),
        f"<p class=note>{len(cells)} non-empty cells; the {min(15, len(cells))} largest by tokens "
        "(every cell is in the JSON report under <code>by_domain_lang</code>):</p>",
        _table(["domain", "language", "docs", "tokens", "chars"],
               [[esc(c["domain"]), esc(c["lang"]), f"{c['docs']:,}", f"{c['tokens']:,}", f"{c['chars']:,}"]
                for c in cells[:15]], left=(0, 1)),
    ])


def _html_quality(report: dict[str, Any]) -> str:
    out = "<h2>Quality</h2>" + _small_multiples(report, "quality", "Quality score by domain", "quality score",
                                                   log_x=False)
    unscored = {d: v["unscored"] for d, v in report["quality"]["by_domain"].items() if v["unscored"]}
    if unscored:
        out += ("<p class=note>Documents without a quality score (not plotted): "
                + html.escape(", ".join(f"{d} {n:,}" for d, n in unscored.items())) + ".</p>")
    return out


def _html_length(report: dict[str, Any]) -> str:
    return "<h2>Length</h2>" + _small_multiples(report, "length_chars", "Document length by domain",
                                               "characters (log scale)", log_x=True)


def _html_duplicates(report: dict[str, Any]) -> str:
    out = "<h2>Duplicates</h2>"
    if report["input_kind"] == "raw":
        out += ("<p class=note>Raw input has not been deduplicated, so there are no stored cluster sizes; "
                "the HyperLogLog estimate below says how much exact dedup would remove.</p>")
    elif any(r["exact_rate"] or r["near_rate"] for r in report["duplicates"]["by_domain"].values()):
        rows = report["duplicates"]["by_domain"]
        clean = sorted(d for d, r in rows.items() if not (r["exact_rate"] or r["near_rate"]))
        out += _plot_duplicates(report)
        if clean:
            out += f"<p class=note>No duplicates removed in {html.escape(', '.join(clean))} (0.0% exact and near).</p>"
    else:  # a chart of zeros is an empty frame: say it instead
        out += ("<p class=note>No document of this set stands for removed duplicates (stored exact and near "
                "cluster sizes are all 1): 0.0% exact, 0.0% near.</p>")
    dist = report.get("distinct")
    if dist:
        out += (f"<p class=note>HyperLogLog estimates (&plusmn;{pct(dist['relative_error'])}): "
                f"{dist['texts']:,} distinct texts ({html.escape(dist['text_identity'])} identity) among "
                f"{report['totals']['docs']:,} documents (estimated exact-duplicate rate "
                f"{pct(dist['estimated_text_dup_rate'])}), {dist['urls']:,} distinct URLs, "
                f"{dist['hosts']:,} distinct hosts.</p>")
    return out


def _html_funnel(report: dict[str, Any]) -> str:
    """The funnel chart by stage, then every stage with its reasons beneath it (documents and tokens)."""
    from replaymill.audit.funnel import funnel_rows

    funnel = report.get("funnel")
    if not funnel or not funnel["read"]:
        return ""
    rows, classes = [], []
    for r in funnel_rows(funnel):
        docs_pct = pct(r.docs / funnel["read"]) if funnel["read"] else "-"
        tokens = "-" if r.tokens is None else f"{r.tokens:,}"
        rows.append([html.escape(r.label), f"{r.docs:,}", docs_pct, tokens])
        kind = "total" if r.kind in ("read", "kept") else ("reason" if r.level else "stage")
        classes.append(f"{kind} zero" if r.kind == "drop" and not r.docs else kind)
    return ("<h2>Funnel</h2>" + _plot_funnel(funnel)
            + _table(["stage / reason", "documents", "% of read", "tokens"], rows, classes))


def _html_contamination(report: dict[str, Any]) -> str:
    cont = report.get("contamination")
    if not cont:
        return ""
    esc = html.escape
    out = ("<h2>Contamination</h2>"
           f"<p class=note>{cont['eval_docs_matched']:,} of {cont['eval_docs']:,} evaluation documents "
           f"({esc(', '.join(cont['eval_files']))}) appear in the corpus ({esc(contamination_rule(cont))}); "
           f"{cont['corpus_docs_matched']:,} corpus documents overlap. Per evaluation document, the corpus "
           "documents that overlap it most:</p>")
    rows = [[esc(e["eval_id"]), esc(e["eval_file"]), f"{e['corpus_docs']:,}", esc(m["corpus_id"]),
             match_strength(m), esc(m["sample"][:120])]
            for e in cont["by_eval"][:100] for m in e["matches"]]
    if rows:
        out += _table(["eval id", "eval file", "corpus docs", "corpus id", "overlap", "corpus text"],
                      rows, left=(0, 1, 3, 5))
    return out


# Sections that need documents; the header and gates come first in any case.
HTML_SECTIONS = (_html_composition, _html_cells, _html_quality, _html_length, _html_duplicates, _html_funnel,
                 _html_contamination)


def render_html(report: dict[str, Any]) -> str:
    """The whole report as one HTML document with embedded PNG plots."""
    import matplotlib

    matplotlib.use("Agg")
    parts = [_html_header(report), _html_gates(report)]
    if not report["totals"]["docs"]:
        parts.append("<h2>Composition</h2><p class=note>No documents.</p>" + _html_funnel(report))
    else:
        parts += [section(report) for section in HTML_SECTIONS]
    parts.append("</main></body></html>")
    return "\n".join(p for p in parts if p)
