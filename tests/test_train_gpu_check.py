"""bench/gpu_check.py, the GPU readiness check, run end to end on a CPU at a tiny size: every phase
(BPE + HF model dir, trainer with and without replay, MFU arithmetic, data path rate, a 1-process
DDP step through torchrun) must work here so the GPU run only has to measure."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import gpu_check  # noqa: E402


def test_125m_shape_is_about_125m_parameters():
    import torch
    from transformers import AutoModelForCausalLM

    config = gpu_check.llama_config("125m", vocab=32000, seq_len=1024, eos_id=0)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    assert 110e6 < total < 140e6
    non_embedding = total - model.get_input_embeddings().weight.numel()
    info = {"non_embedding": non_embedding, "layers": 12, "hidden": 768}
    assert gpu_check.flops_per_token(info, 1024) == pytest.approx(6 * non_embedding + 12 * 12 * 768 * 1024)


@pytest.mark.slow
def test_gpu_check_runs_on_cpu_at_tiny_size(tmp_path, shared_data, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PYTHONPATH", str(REPO.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    prose = shared_data / "prose"
    rc = gpu_check.main(["--size", "tiny", "--workdir", str(tmp_path), "--task", str(prose / "de-verne-20000.txt"),
                         "--replay-text", str(prose / "en-tinyshakespeare.txt"), "--steps", "4", "--warmup-steps", "1",
                         "--num-workers", "1", "--data-workers", "1", "--data-seconds", "1", "--peak-tflops", "1"])
    printed = capsys.readouterr().out
    results = json.loads((tmp_path / "results.json").read_text())
    assert rc == 0, results["ddp"]
    assert results["model"]["vocab"] == 600 and Path(results["model"]["dir"], "tokenizer.json").exists()
    runs = results["trainer"]
    assert [r["replay_ratio"] for r in runs] == [0.0, 0.25] and all(r["tokens_per_s"] > 0 for r in runs)
    flops = gpu_check.flops_per_token(results["model"], 64)
    assert runs[0]["mfu"] == pytest.approx(runs[0]["tokens_per_s"] * flops / 1e12)
    assert [d["workers"] for d in results["data_path"]] == [0, 1] and all(d["x_trainer"] > 0 for d in results["data_path"])
    assert results["ddp"]["ok"] and results["ddp"]["backend"] == "gloo"
    assert "| replay 25%, eager |" in printed and "DDP, 1 process (gloo): ok" in printed
