"""`--tokenizer` on build and sample: n_tokens in the base model's own tokens, and the manifest says who counted."""
from __future__ import annotations

import pyarrow.dataset as pds
import pytest

from replaymill.pipeline.cli import main
from replaymill.shards.io import read_manifest
from replaymill.trainer.bpe import train_bpe
from replaymill.transforms.tokens import count_tokens, load_tokenizer, tokenizer_fingerprint


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory, shared_data):
    """A 400-entry byte-level BPE (an HF tokenizer directory) trained on C4 text."""
    import gzip
    import json

    out = tmp_path_factory.mktemp("tok")
    texts = [json.loads(line)["text"] for path in sorted((shared_data / "olmo-c4").glob("c4-sample.*.json.gz"))
             for line in gzip.open(path, "rt", encoding="utf-8")]
    train_bpe(texts, 400, out)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory, shared_data, tokenizer_dir):
    """The C4 samples built twice: counted by the estimate, and by the tokenizer."""
    base = tmp_path_factory.mktemp("built")
    inputs = [str(shared_data / "olmo-c4" / "*.json*.gz")]
    for name, extra in (("estimate", []), ("tok", ["--tokenizer", str(tokenizer_dir)])):
        assert main(["build", "--input", *inputs, "--output", str(base / name), "--in-memory", *extra]) == 0
    return base


def _rows(root) -> list[dict]:
    return pds.dataset(str(root), format="arrow", partitioning="hive", exclude_invalid_files=True).to_table(
        columns=["text", "n_tokens"]).to_pylist()


def test_build_counts_with_the_tokenizer_and_records_it(built, tokenizer_dir):
    tok = load_tokenizer(str(tokenizer_dir))
    rows = _rows(built / "tok")
    assert [r["n_tokens"] for r in rows] == count_tokens([r["text"] for r in rows], tok)
    manifest = read_manifest(str(built / "tok"))
    counter = manifest.token_counter
    assert counter.kind == "tokenizer" and counter.path == str(tokenizer_dir)
    assert counter.sha256 == tokenizer_fingerprint(str(tokenizer_dir)) and counter.vocab_size == 400
    assert manifest.total.tokens == sum(r["n_tokens"] for r in rows)
    estimate = read_manifest(str(built / "estimate"))
    assert estimate.token_counter.kind == "estimate"
    assert estimate.total.docs == manifest.total.docs and estimate.total.tokens != manifest.total.tokens


@pytest.mark.parametrize("mode", ["target", "reference"])
def test_sample_budget_counts_the_tokenizer_tokens(tmp_path, built, tokenizer_dir, shared_data, capsys, mode):
    """On a set counted by the estimate, --tokenizer recounts: the output's n_tokens and budget are the tokenizer's."""
    what = (["--target", str(tmp_path / "w.yaml")] if mode == "target"
            else ["--reference", str(shared_data / "olmo-c4" / "c4-sample.01.json.gz")])
    (tmp_path / "w.yaml").write_text("weights: {web: 0.5, news: 0.5}\n")
    out = tmp_path / "out"
    assert main(["sample", "--shards", str(built / "estimate"), *what, "--tokens", "6000", "--tokenizer",
                 str(tokenizer_dir), "--on-short", "renormalize", "--output", str(out), "--in-memory"]) == 0
    assert "every document is recounted" in capsys.readouterr().out
    rows = _rows(out)
    counts = count_tokens([r["text"] for r in rows], load_tokenizer(str(tokenizer_dir)))
    assert [r["n_tokens"] for r in rows] == counts
    manifest = read_manifest(str(out))
    assert manifest.token_counter.kind == "tokenizer" and manifest.total.tokens == sum(counts)
    used = manifest.extra["sampling"]["budget_used"]
    assert used >= 6000 and used - max(counts) < 6000  # the budget, reached within one document, in its tokens
    # on the set built with the same tokenizer nothing is recounted, and the selection is the same
    out2 = tmp_path / "out2"
    assert main(["sample", "--shards", str(built / "tok"), *what, "--tokens", "6000", "--tokenizer",
                 str(tokenizer_dir), "--on-short", "renormalize", "--output", str(out2), "--in-memory"]) == 0
    assert "recounted" not in capsys.readouterr().out
    assert sorted(r["text"] for r in _rows(out2)) == sorted(r["text"] for r in rows)


@pytest.mark.parametrize("command", ["build", "sample"])
@pytest.mark.parametrize("bad", ["missing", "empty_dir", "corrupt"])
def test_bad_tokenizer_is_one_line_exit_2(tmp_path, built, shared_data, capsys, command, bad):
    path = tmp_path / "tok"
    if bad == "empty_dir":
        path.mkdir()
    elif bad == "corrupt":
        path.mkdir()
        (path / "tokenizer.json").write_text('{"model": "not a tokenizer"}')
    out = tmp_path / "out"
    if command == "build":
        args = ["build", "--input", str(shared_data / "olmo-c4" / "c4-sample.01.json.gz")]
    else:
        args = ["sample", "--shards", str(built / "estimate"), "--target", "llama1", "--tokens", "100"]
    assert main([*args, "--tokenizer", str(path), "--output", str(out), "--in-memory"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"replaymill {command}: error: --tokenizer"), lines
    assert not (out / "_manifest.json").exists()
