"""The audit's renderers, section by section: the funnel grouped by stage, no empty charts, histogram
ranges from the data, small domains in words, an actionable sentence for a short target, and the
page checked as pixels in headless Chromium (where installed)."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from rich.console import Console

from replaymill.audit.compare import compare_to_target, counted_as, limiting_sentence
from replaymill.audit.html_report import HTML_SECTIONS, data_range, render_html
from replaymill.audit.render import TERMINAL_SECTIONS, human, render_terminal
from replaymill.audit.report import build_report
from replaymill.audit.stats import AuditStats

FUNNEL = {
    "read": 1000, "kept": 700, "read_tokens": 900_000, "kept_tokens": 700_000,
    "dropped": {"near_duplicate": 30, "exact_duplicate": 50, "malformed_json": 10, "too_short": 60,
                "gopher_repetition:dup_line_frac": 90, "gopher_repetition:top_2gram_char_frac": 60},
    "dropped_tokens": {"near_duplicate": 30_000, "exact_duplicate": 50_000, "too_short": 1_000,
                       "gopher_repetition:dup_line_frac": 90_000, "gopher_repetition:top_2gram_char_frac": 29_000},
    "stage_of": {"malformed_json": "format"},
    "enabled": ["format", "length", "langid", "quality:gopher_repetition", "exact", "near"],
}


def _report(quality_bins: dict[str, tuple[int, int]], dups: dict[str, tuple[int, int, int]]) -> dict:
    """A report from real AuditStats: per domain (first quality bin, docs), stored cluster sizes."""
    import pyarrow as pa

    stats = AuditStats(distinct=False)
    for domain, (start_bin, n) in quality_bins.items():
        exact, near = dups.get(domain, (0, 0, 0))[1:]
        q = [min(0.999, (start_bin + i % 3) / 20 + 0.01) for i in range(n)]
        stats.add_table(pa.table({
            "domain": [domain] * n, "lang": ["en"] * n, "n_chars": [300 + 50 * i for i in range(n)],
            "n_tokens": [80 + i for i in range(n)], "quality": q,
            "dup_exact_count": [2 if i < exact else 1 for i in range(n)],
            "dup_near_count": [2 if i < near else 1 for i in range(n)],
        }))
    return build_report(stats, inputs=["t"], input_kind="shards", funnel=dict(FUNNEL))


def html_text(page: str) -> str:
    return re.sub(r"<[^>]+>", " ", re.sub(r'src="data:[^"]+"', "", page))


def test_sections_are_small_functions():
    assert len(TERMINAL_SECTIONS) >= 8 and len(HTML_SECTIONS) >= 7


def test_funnel_grouped_by_stage_in_pipeline_order():
    page = html_text(render_html(_report({"web": (14, 300)}, {})))
    order = ["format rejects", "malformed_json", "length", "too_short", "language ID",
             "quality: gopher_repetition", "dup_line_frac", "top_2gram_char_frac", "exact dedup", "near dedup", "kept"]
    at = [page.index(f" {label} ") for label in order]
    assert at == sorted(at)
    console = Console(record=True, width=120)
    render_terminal(_report({"web": (14, 300)}, {}), console)
    text = console.export_text()
    assert [text.index(label) for label in ("language ID", "exact dedup", "near dedup")] == sorted(
        text.index(label) for label in ("language ID", "exact dedup", "near dedup"))


def test_no_chart_of_zeros_and_small_domains_in_words():
    page = render_html(_report({"web": (14, 300), "code": (16, 3)}, {}))
    assert "No document of this set stands for removed duplicates" in page
    assert page.count("data:image/png") == 5  # composition, heatmap, quality, length, funnel: no duplicates chart
    assert "Too few documents to draw" in page and "code n=3" in page
    page = render_html(_report({"web": (14, 300), "wiki": (12, 80)}, {"web": (300, 30, 0)}))
    assert page.count("data:image/png") == 6
    assert "No duplicates removed in wiki" in page


def test_histogram_range_from_the_data():
    report = _report({"web": (14, 300), "wiki": (12, 80)}, {})
    lo, hi = data_range(report["quality"])
    assert (lo, hi) == (11, 17)  # bins 12..16 hold documents, one bin of margin each side
    assert data_range({"by_domain": {"x": {"counts": [0, 0]}}}) is None


def test_short_target_says_which_domain_limits_and_by_how_much():
    t = compare_to_target({"web": 900, "code": 10}, {"web": 0.8, "code": 0.1, "books": 0.1}, by="tokens")
    assert t["limiting"]["domain"] == "books" and t["max_total_at_target"] == 0
    sentence = limiting_sentence(t, human)
    assert sentence.startswith("books limits the corpus") and "--on-short renormalize" in sentence
    assert "91 tokens of books" in sentence  # 10% of 910
    t = compare_to_target({"web": 900, "code": 10}, {"web": 0.9, "code": 0.1}, by="tokens")
    lim = t["limiting"]
    assert lim["domain"] == "code" and lim["max_total"] == 100 and lim["needed_for_all"] == 81
    assert "at most 100 tokens" in limiting_sentence(t, human) and "--on-short upsample" in limiting_sentence(t, human)
    even = compare_to_target({"web": 900, "code": 100}, {"web": 0.9, "code": 0.1}, by="tokens")
    assert limiting_sentence(even, human) is None  # nothing short: nothing to say


def test_web_topics_shown_as_counted_toward_web():
    cells = [{"domain": "news", "lang": "en"}, {"domain": "web", "lang": "en"}, {"domain": "legal", "lang": "en"}]
    assert counted_as(cells, ["web", "code"]) == {"news": "web"}


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium on this machine (apt-get install chromium)")
def test_report_screenshot_has_plots_text_and_no_blank_charts(tmp_path):
    from matplotlib import image

    report = _report({"web": (14, 300), "wiki": (12, 80), "code": (16, 3)}, {"web": (300, 30, 9)})
    report["target"] = {"name": "t", "description": "", **compare_to_target(
        {"web": 300 * 85, "wiki": 80 * 85}, {"web": 0.7, "wiki": 0.2, "books": 0.1}, by="tokens"), "counted_as": {}}
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    png = tmp_path / "report.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1280,5000",
                    page.resolve().as_uri()], check=True, capture_output=True, timeout=90)
    pixels = image.imread(png)[:, :, :3]
    rows = np.where((pixels.max(axis=2) - pixels.min(axis=2) > 0.3).any(axis=1))[0]  # rows holding colour
    assert rows.size and (pixels.max(axis=2) < 0.3).mean() > 0.002  # plots and dark text drawn
    assert (pixels[:, :, 0] > 0.95).mean() > 0.3  # mostly light page, not a blank or error screen
    amber = ((pixels[:, :, 0] > 0.98) & (pixels[:, :, 1] > 0.95) & (pixels[:, :, 2] > 0.85) & (pixels[:, :, 2] < 0.93))
    assert amber.sum() > 2000  # the highlighted sentence saying what limits the corpus
