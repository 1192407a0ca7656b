"""`replaymill sample` end to end in a subprocess: target weights, upsampling, DSIR, pre-flight errors."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from replaymill.pipeline.cli import main
from replaymill.shards.reader import ShardSet

REPO = Path(__file__).resolve().parents[1]


def sample(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "replaymill.pipeline.cli", "sample", "--in-memory", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def pool(tmp_path_factory, make_shard_set, real_docs_by_domain):
    return make_shard_set(tmp_path_factory.mktemp("pool"), real_docs_by_domain, rows_per_shard=60)


@pytest.fixture(scope="module")
def weights_run(pool, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("weights")
    (tmp / "w.yaml").write_text("by: docs\nweights: {web: 0.5, news: 0.1, books: 0.2, books/de: 0.2}\n")
    out = tmp / "out"
    r = sample("--shards", pool, "--target", str(tmp / "w.yaml"), "--docs", "300", "--on-short", "upsample",
               "--seed", "4", "--rows-per-shard", "50", "--output", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    return out, r


def test_target_weights_materialized_exactly(weights_run, pool):
    out, r = weights_run
    ss = ShardSet.open(str(out))  # verifies every checksum on read
    m = ss.manifest
    assert m.kind == "sample" and m.total.docs == 300
    s = m.extra["sampling"]
    assert {k: v["docs"] for k, v in s["achieved"].items()} == {"books": 60, "books/de": 60, "news": 30, "web": 150}
    assert s["tv"] == pytest.approx(0.0) and s["shortfall"]["action"] == "none"
    rows = list(ss.iter_documents(["id", "domain", "lang"]))
    assert len({d["id"] for d in rows}) == 300
    assert sum(1 for d in rows if d["domain"] == "books" and d["lang"] == "de") == 60
    source_ids = {d["id"] for d in ShardSet.open(pool).iter_documents(["id"])}
    assert {d["id"] for d in rows} <= source_ids
    assert pads.dataset(str(out), format="arrow", partitioning="hive").count_rows() == 300
    assert "achieved" in r.stdout and "total variation" in r.stdout


def test_upsampling_is_counted(pool, tmp_path):
    r = sample("--shards", pool, "--target", "pile", "--tokens", "120000", "--on-short", "renormalize",
               "--output", str(tmp_path / "pile"))
    assert r.returncode == 0, r.stderr[-2000:]
    s = ShardSet.open(str(tmp_path / "pile")).manifest.extra["sampling"]
    assert set(s["shortfall"]["keys"]) >= {"code", "legal", "academic"}
    assert s["effective_divergence"]["tv"] < 0.01 < s["tv"]
    r = sample("--shards", pool, "--target", str(_news_heavy(tmp_path)), "--docs", "100", "--on-short", "upsample",
               "--output", str(tmp_path / "up"))
    assert r.returncode == 0, r.stderr[-2000:]
    ss = ShardSet.open(str(tmp_path / "up"))
    s = ss.manifest.extra["sampling"]
    news, repeats = s["achieved"]["news"]["docs"], s["shortfall"]["repeated_docs"]
    assert 89 <= news <= 91  # within one document of 0.9 * 100
    assert repeats == news - 40 and s["shortfall"]["keys"] == {"news": {"needed": 90, "available": 40}}
    assert sum("#r" in d["id"] for d in ss.iter_documents(["id"])) == repeats


def _news_heavy(tmp_path):
    path = tmp_path / "news.yaml"
    path.write_text("by: docs\nweights: {news: 0.9, web: 0.1}\n")
    return path


def test_preflight_errors_are_one_line(pool, tmp_path, capsys):
    """In process (no Beam work starts): exit code 2 and one line naming the problem."""
    cases = [
        (["--shards", pool, "--target", "llama1", "--tokens", "1000000"], "needs"),
        (["--shards", str(tmp_path), "--target", "llama1", "--tokens", "10"], "_manifest.json"),
        (["--shards", pool, "--target", "nope", "--tokens", "10"], "preset"),
        (["--shards", pool, "--target", "llama1", "--tokens", "0"], "positive"),
    ]
    for i, (argv, needle) in enumerate(cases):
        assert main(["sample", *argv, "--output", str(tmp_path / f"out{i}")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err


def test_reference_selects_toward_it(pool, tmp_path, shared_data):
    verne = (shared_data / "prose" / "de-verne-20000.txt").read_text(encoding="utf-8")
    ref = tmp_path / "ref.jsonl.gz"  # compressed references are read too
    with gzip.open(ref, "wt", encoding="utf-8") as f:
        f.write("".join(json.dumps({"text": verne[i:i + 2000]}) + "\n" for i in range(0, 100_000, 2000)))
    r = sample("--shards", pool, "--reference", str(ref), "--docs", "80", "--output", str(tmp_path / "dsir"))
    assert r.returncode == 0, r.stderr[-2000:]
    m = ShardSet.open(str(tmp_path / "dsir")).manifest
    assert m.total.docs == 80 and m.by_lang["de"].docs >= 70
    d = m.extra["sampling"]["dsir"]
    assert d["kl_reference_to_selection"] < d["kl_reference_to_pool"]
