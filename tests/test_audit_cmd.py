"""`replaymill audit` on a shard set: gates and exit codes, JSON keys, contamination, HTML (+ a Chromium screenshot)."""
from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from replaymill.audit.contamination import ContaminationStats, EvalIndex, NgramEvalIndex, read_eval_file
from replaymill.pipeline.cli import main

REPORT_KEYS = {"schema", "generated_at", "inputs", "input_kind", "totals", "by_domain", "by_lang", "by_domain_lang",
               "quality", "length_chars", "duplicates", "distinct", "funnel", "target", "contamination", "gates"}
N_PLANTED = 6


def _perturb(text: str, rng: random.Random) -> str:
    """A lightly edited copy, as a benchmark item scraped with small differences: about 1 word in 100
    changed, so shingle Jaccard ~0.9, which 14x8 bands catch with probability > 0.999."""
    words = text.split()
    return " ".join("CHANGED" if rng.random() < 0.01 else w for w in words)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, make_shard_set, real_docs_by_domain, shared_data):
    tmp = tmp_path_factory.mktemp("audit-cmd")
    rng = random.Random(3)
    docs = {k: [dict(d, quality=rng.betavariate(5, 2)) for d in v[:150]] for k, v in real_docs_by_domain.items()}
    root = make_shard_set(tmp / "shards", docs, rows_per_shard=40)
    planted = [d for d in docs["web"] if len(d["text"].split()) > 120][:N_PLANTED]
    sentences = (shared_data / "lingua-sentences" / "en.txt").read_text(encoding="utf-8").splitlines()
    with open(tmp / "eval.jsonl", "w", encoding="utf-8") as f:
        for i, d in enumerate(planted):
            f.write(json.dumps({"id": f"planted-{i}", "question": _perturb(d["text"], rng), "answer": "x"}) + "\n")
        for i in range(0, 90, 3):  # unrelated real English text that must not match
            f.write(json.dumps({"id": f"clean-{i}", "text": " ".join(sentences[i:i + 3])}) + "\n")
    (tmp / "weights.yaml").write_text("weights: {web: 0.5, books: 0.3, news: 0.2}\n", encoding="utf-8")
    return tmp, root, planted


@pytest.fixture(scope="module")
def audit_run(setup):
    tmp, root, _ = setup
    out_json, out_html = tmp / "report.json", tmp / "report.html"
    rc = main(["audit", root, "--target", str(tmp / "weights.yaml"), "--contamination", str(tmp / "eval.jsonl"),
               "--json", str(out_json), "--html", str(out_html), "-q",
               "--fail-if", "min_docs=10,max_tv=0.9,max_contaminated=0"])
    return rc, json.loads(out_json.read_text(encoding="utf-8")), out_html


def test_gate_failure_exits_3_and_names_the_gate(audit_run, capsys):
    """A failed gate is status 3, which no error gives (usage errors 2, a crash Python's 1)."""
    rc, report, _ = audit_run
    assert rc == 3
    checks = {c["name"]: c for c in report["gates"]["checks"]}
    assert checks["min_docs"]["passed"] and checks["max_tv"]["passed"]
    assert not checks["max_contaminated"]["passed"] and checks["max_contaminated"]["value"] == N_PLANTED


def test_json_report_keys_and_target(audit_run, setup):
    _, report, _ = audit_run
    assert set(report) == REPORT_KEYS and report["schema"] == "replaymill.audit/1"
    assert report["input_kind"] == "shards"
    assert report["totals"]["docs"] == sum(v["docs"] for v in report["by_domain"].values())
    target = report["target"]
    assert {r["domain"] for r in target["domains"]} == {"web", "books", "news"}
    assert sum(r["target"] for r in target["domains"]) == pytest.approx(1.0)
    assert 0.0 <= target["total_variation"] <= 1.0
    json.dumps(report, allow_nan=False)  # strict JSON


def test_contamination_finds_planted_items_only(audit_run, setup):
    _, report, _ = audit_run
    _, _, planted = setup
    cont = report["contamination"]
    assert cont["eval_docs"] == N_PLANTED + 30
    assert cont["eval_docs_matched"] == N_PLANTED
    # Other pages sharing a planted page's licence footer overlap it too (a few n-grams, ~1%):
    # shared text, reported, but only the planted copies hold most of an item.
    pairs = {(m["corpus_id"], m["eval_id"]) for m in cont["matches"] if m["overlap"] >= 0.5}
    assert pairs == {(d["id"], f"planted-{i}") for i, d in enumerate(planted)}
    assert cont["method"] == "ngram" and cont["ngram"] == 13
    assert all(m["ngrams"] >= 3 and (m["overlap"] >= 0.5 or m["overlap"] < 0.05) for m in cont["matches"])
    by_eval = {e["eval_id"]: e for e in cont["by_eval"]}
    assert set(by_eval) == {f"planted-{i}" for i in range(N_PLANTED)}
    for i, d in enumerate(planted):
        best = by_eval[f"planted-{i}"]["matches"][0]
        assert best["corpus_id"] == d["id"] and " ".join(best["sample"].split()[:3]) in " ".join(d["text"].split())


def test_min_jaccard_chooses_the_banding_of_the_minhash_check(setup, tmp_path):
    tmp, root, planted = setup
    out = tmp_path / "r.json"
    assert main(["audit", root, "-q", "--no-distinct", "--contamination", str(tmp / "eval.jsonl"),
                 "--min-jaccard", "0.3", "--json", str(out)]) == 0
    cont = json.loads(out.read_text())["contamination"]
    assert cont["method"] == "minhash" and cont["threshold"] == 0.3
    assert cont["lsh_recall_at_threshold"] >= 0.95 and cont["lsh_threshold"] < 0.3
    assert cont["eval_docs_matched"] == N_PLANTED and all(m["jaccard"] >= 0.3 for m in cont["matches"])


@pytest.mark.parametrize("make_index", [EvalIndex.build, NgramEvalIndex.build])
def test_contamination_stats_merge_like_one_pass(setup, make_index):
    tmp, _, planted = setup
    index = make_index(read_eval_file(str(tmp / "eval.jsonl")))
    ids, texts = [d["id"] for d in planted], [d["text"] for d in planted]
    one = ContaminationStats().add(index.query(ids, texts))
    a = ContaminationStats().add(index.query(ids[:2], texts[:2]))
    b = ContaminationStats().add(index.query(ids[2:], texts[2:]))
    merged = ContaminationStats.from_dict(b.to_dict()).merge(a)
    assert merged.report(index, ["e"]) == one.report(index, ["e"])


def test_passing_gates_exit_0(setup):
    _, root, _ = setup
    assert main(["audit", root, "-q", "--no-distinct", "--fail-if", "min_docs=1,max_dup_rate=0.0"]) == 0


@pytest.mark.parametrize("args, message", [
    (["/nonexistent/corpus-*.jsonl"], "nonexistent"),
    (["{root}", "--fail-if", "max_tv"], "NAME=NUMBER"),
    (["{root}", "--target", "no-such-preset"], "--target"),
    (["{root}", "--fail-if", "max_tv=0.1"], "needs --target"),
])
def test_usage_errors_exit_2(setup, capsys, args, message):
    _, root, _ = setup
    assert main(["audit", "-q", *[a.format(root=root) for a in args]]) == 2
    assert message in capsys.readouterr().err


def test_html_is_self_contained(audit_run):
    _, _, html_path = audit_run
    page = html_path.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 4  # composition, heatmap, quality, length
    assert "No document of this set stands for removed duplicates" in page  # all-zero rates: a sentence, no chart
    assert "http://" not in page.replace("http://www.w3.org", "") and "<script" not in page
    assert "Contamination" in page and "planted-0" in page


def test_audit_of_a_sampled_set_agrees_with_the_sampler(setup, tmp_path):
    """Two independent implementations, one answer: the audit's shares, TV and KL of a `replaymill sample`
    output equal what the sampler wrote into its manifest."""
    tmp, root, _ = setup
    out = tmp_path / "sampled"
    assert main(["sample", "--shards", root, "--target", str(tmp / "weights.yaml"), "--tokens", "60000",
                 "--output", str(out), "--in-memory"]) == 0
    assert main(["audit", str(out), "--target", str(tmp / "weights.yaml"), "--json", str(tmp_path / "a.json"), "-q"]) == 0
    target = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))["target"]
    sampling = json.loads((out / "_manifest.json").read_text(encoding="utf-8"))["extra"]["sampling"]
    assert {r["domain"]: r["amount"] for r in target["domains"]} == {k: v["units"] for k, v in sampling["achieved"].items()}
    assert target["total_variation"] == pytest.approx(sampling["tv"], abs=1e-12)
    assert target["kl_achieved_target"] == pytest.approx(sampling["kl"], abs=1e-12)


def test_terminal_table_shows_every_section(audit_run):
    from rich.console import Console

    from replaymill.audit.render import render_terminal

    _, report, _ = audit_run
    console = Console(record=True, width=140)
    render_terminal(report, console)
    text = console.export_text()
    for expected in ("By domain", "By language", "Domain x language", "Distinct (HyperLogLog", "total variation",
                     "Evaluation documents found in the corpus", "planted-0", "gate max_contaminated=0.0: FAIL"):
        assert expected in text, expected


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium on this machine")
def test_html_renders_in_headless_chromium(audit_run, tmp_path):
    """Render the page and check the screenshot is a real page (not blank): light background, dark text, colour plots."""
    from matplotlib import image

    _, _, html_path = audit_run
    png = tmp_path / "report.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1280,2400",
                    Path(html_path).resolve().as_uri()], check=True, capture_output=True, timeout=60)
    pixels = image.imread(png)[:, :, :3]
    assert pixels.shape[:2] == (2400, 1280)
    dark = (pixels.max(axis=2) < 0.3).mean()       # text and axes
    coloured = (pixels.max(axis=2) - pixels.min(axis=2) > 0.3).mean()  # plot bars
    assert 0.002 < dark < 0.3 and coloured > 0.01
