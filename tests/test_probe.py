"""`replaymill probe`: unconditional samples from a local HF model, streamed as JSONL, and its bad-input paths."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from replaymill.pipeline.cli import main
from replaymill.trainer.bpe import END_OF_TEXT, train_bpe
from replaymill.trainer.probe import Probe, ProbeSettings


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, shared_data) -> Path:
    """A tiny Llama with a BPE tokenizer trained on Shakespeare, saved as a plain HF directory."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    out = tmp_path_factory.mktemp("model")
    text = (shared_data / "prose" / "en-tinyshakespeare.txt").read_text(encoding="utf-8")[:200_000]
    tok = train_bpe([p for p in text.split("\n\n") if p.strip()], 320, out)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                         bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    return out


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_probe_writes_batched_samples_with_their_settings(tmp_path, model_dir, capsys):
    out = tmp_path / "gens.jsonl"
    args = ["probe", "--model", str(model_dir), "--samples", "5", "--batch-size", "2", "--max-new-tokens", "12",
            "--temperature", "0.9", "--top-p", "0.95", "--seed", "3", "--device", "cpu", "--output", str(out)]
    assert main(args) == 0
    assert "5 samples" in capsys.readouterr().out
    rows = _lines(out)
    assert len(rows) == 5 and len({r["id"] for r in rows}) == 5
    for r in rows:
        assert isinstance(r["text"], str) and END_OF_TEXT not in r["text"]
        assert 0 <= r["n_tokens"] <= 12 and r["stop"] in ("eos", "length")
        assert r["stop"] == "eos" or r["n_tokens"] == 12
        s = r["settings"]
        assert (s["samples"], s["max_new_tokens"], s["temperature"], s["top_p"], s["seed"], s["batch_size"],
                s["prompt"], s["device"]) == (5, 12, 0.9, 0.95, 3, 2, "eos", "cpu")
        assert s["model"] == str(model_dir.resolve())
    # the same seed gives the same samples; another seed other samples; --overwrite is needed to replace
    assert main(args) == 2
    assert main(args + ["--overwrite"]) == 0
    assert [r["text"] for r in _lines(out)] == [r["text"] for r in rows]
    assert main([*args[:-2], "--seed", "4", "--output", str(tmp_path / "other.jsonl")]) == 0
    assert [r["text"] for r in _lines(tmp_path / "other.jsonl")] != [r["text"] for r in rows]


def test_probe_cuts_each_sample_at_eos(model_dir):
    """A sample ends at the first EOS the model emits; the rest of the row (padding) is dropped."""
    probe = Probe(str(model_dir), ProbeSettings(samples=2, batch_size=2, max_new_tokens=4, device="cpu"))
    eos = probe.eos
    body = probe.tokenizer("to be", add_special_tokens=False)["input_ids"]

    def fake_generate(input_ids, **kwargs):
        rows = [[eos, *body, eos, eos], [eos, *body, 7, 8]]
        return torch.tensor(rows)

    probe.model.generate = fake_generate
    first, second = list(probe.samples())
    assert (first["text"], first["n_tokens"], first["stop"]) == ("to be", len(body), "eos")
    assert second["stop"] == "length" and second["n_tokens"] == len(body) + 2


def test_probe_stops_at_the_model_context(model_dir, capsys):
    """The fixture's model has 64 positions: 100 new tokens are capped at 63, and the record says so."""
    probe = Probe(str(model_dir), ProbeSettings(samples=1, batch_size=1, max_new_tokens=100, device="cpu"))
    seen = {}

    def fake_generate(input_ids, **kwargs):
        seen.update(kwargs)
        return torch.tensor([[probe.eos, 5, 6]])

    probe.model.generate = fake_generate
    (row,) = list(probe.samples())
    assert seen["max_new_tokens"] == 63
    assert row["settings"]["max_new_tokens"] == 63 and row["settings"]["requested_max_new_tokens"] == 100


def test_probe_to_stdout_and_bos_prompt(model_dir, capsys):
    args = ["probe", "--model", str(model_dir), "--samples", "3", "--max-new-tokens", "5", "--prompt", "bos",
            "--output", "-"]
    assert main(args) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert len(rows) == 3 and rows[0]["settings"]["prompt"] == "bos"
    assert "3 samples" in captured.err  # the summary goes to stderr when the samples use stdout


@pytest.mark.parametrize("case", ["missing", "no_config", "no_tokenizer", "not_causal", "temperature", "top_p"])
def test_probe_bad_input_is_one_line_exit_2(tmp_path, model_dir, case, capsys):
    model = tmp_path / "m"
    extra: list[str] = []
    if case == "no_config":
        model.mkdir()
        (model / "tokenizer.json").write_text("{}")
    elif case == "no_tokenizer":
        model.mkdir()
        (model / "config.json").write_text((model_dir / "config.json").read_text())
    elif case == "not_causal":
        model.mkdir()
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (model / name).write_text((model_dir / name).read_text())
        (model / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 320}))  # no weights
    elif case == "temperature":
        model, extra = model_dir, ["--temperature", "0"]
    elif case == "top_p":
        model, extra = model_dir, ["--top-p", "1.5"]
    out = tmp_path / "out.jsonl"
    assert main(["probe", "--model", str(model), "--output", str(out), *extra]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("replaymill probe: error:"), lines
    assert not out.exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_probe_on_cuda(model_dir):
    probe = Probe(str(model_dir), ProbeSettings(samples=4, batch_size=4, max_new_tokens=8, device="cuda"))
    rows = list(probe.samples())
    assert len(rows) == 4 and rows[0]["settings"]["device"].startswith("cuda")
