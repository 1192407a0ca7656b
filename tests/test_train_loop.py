"""The training loop for real on CPU: learning, exact resume, LoRA, corrupt shards, DDP and the CLI."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from replaymill.schemas.document import new_document
from replaymill.shards.io import CorruptShardError
from replaymill.trainer.config import TrainConfig
from replaymill.trainer.loop import train

REPO = Path(__file__).resolve().parents[1]
TINY = dict(model="tiny-llama", seq_len=32, batch_size=4, warmup=2, lr=3e-3, eval_tokens=2048, plot=False)


@pytest.fixture(scope="module")
def replay_set(tmp_path_factory, make_shard_set, shared_data):
    """English replay shards (8 shards of Shakespeare paragraphs) for German fine-tuning."""
    text = (shared_data / "prose" / "en-tinyshakespeare.txt").read_text(encoding="utf-8")
    paras = [p for p in text.split("\n\n") if p.strip()][:480]
    docs = [new_document(f"en:{i}", p, "prose") for i, p in enumerate(paras)]
    return make_shard_set(tmp_path_factory.mktemp("replay"), {"books": docs}, rows_per_shard=60)


@pytest.fixture(scope="module")
def task_file(shared_data) -> str:
    return str(shared_data / "prose" / "de-verne-20000.txt")


def _log(out: Path, kind: str) -> list[dict]:
    return [r for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if r["kind"] == kind]


def test_training_reduces_held_out_loss_and_logs_both_curves(tmp_path, task_file, replay_set):
    out = tmp_path / "run"
    result = train(TrainConfig(**{**TINY, "plot": True}, task=task_file, replay=replay_set, replay_ratio=0.25,
                               steps=12, eval_every=6, output=str(out)))
    evals = _log(out, "eval")
    assert [e["step"] for e in evals] == [0, 6, 12]
    assert evals[-1]["eval_task_loss"] < evals[0]["eval_task_loss"] - 1.0  # a random init starts near ln(257) = 5.55
    assert evals[-1]["eval_replay_loss"] < evals[0]["eval_replay_loss"]
    train_log = _log(out, "train")
    assert train_log[-1]["replay_tokens"] == 12 * 32  # 25% of 4 x 32 tokens, every step
    assert result["eval"]["task"] == evals[-1]["eval_task_loss"]
    assert (out / "curves.png").stat().st_size > 1000
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(out / "final").config.vocab_size == 257
    assert (out / "final" / "replaymill_tokenizer.json").exists()


def test_resume_continues_the_identical_run(tmp_path, task_file, replay_set):
    cfg = dict(TINY, task=task_file, replay=replay_set, replay_ratio=0.3, steps=6, save_every=3, eval_every=100,
               keep_checkpoints=5)
    full = tmp_path / "full"
    train(TrainConfig(**cfg, output=str(full)))
    part = tmp_path / "part"  # a run killed right after its step-3 checkpoint
    shutil.copytree(full / "checkpoints" / "step-0000003", part / "checkpoints" / "step-0000003")
    train(TrainConfig(**cfg, output=str(part), resume=True))
    a = {r["step"]: r for r in _log(full, "train")}
    b = {r["step"]: r for r in _log(part, "train")}
    assert sorted(b) == [4, 5, 6]
    for s in (4, 5, 6):
        assert b[s]["loss"] == a[s]["loss"] and b[s]["replay_loss"] == a[s]["replay_loss"] and b[s]["lr"] == a[s]["lr"]
    wa = torch.load(full / "checkpoints" / "step-0000006" / "model.pt")
    wb = torch.load(part / "checkpoints" / "step-0000006" / "model.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    sa = json.loads((full / "checkpoints" / "step-0000006" / "state.json").read_text())
    sb = json.loads((part / "checkpoints" / "step-0000006" / "state.json").read_text())
    assert sa["data"] == sb["data"]  # same position in task and replay streams
    with pytest.raises(ValueError, match="config changed"):
        train(TrainConfig(**{**cfg, "replay_ratio": 0.1}, output=str(part), resume=True))
    with pytest.raises(FileExistsError):
        train(TrainConfig(**cfg, output=str(full)))


def test_lora_trains_only_adapters(tmp_path, task_file):
    pytest.importorskip("peft")
    out = tmp_path / "lora"
    train(TrainConfig(**TINY, task=task_file, steps=2, eval_every=100, lora=True, lora_r=4, output=str(out)))
    state = torch.load(out / "checkpoints" / "step-0000002" / "model.pt")
    assert any("lora_A" in k for k in state)
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(out / "final")  # adapters merged into a plain model
    assert not any("lora" in name for name, _ in merged.named_parameters())


def test_corrupt_replay_shard_is_a_clear_error(tmp_path, task_file, replay_set):
    bad = tmp_path / "bad"
    shutil.copytree(replay_set, bad)
    for shard in bad.rglob("*.arrow"):  # shards are verified when first read, so spoil every one
        data = bytearray(shard.read_bytes())
        data[len(data) // 2] ^= 0xFF
        shard.write_bytes(bytes(data))
    with pytest.raises(CorruptShardError, match="sha256"):
        train(TrainConfig(**TINY, task=task_file, replay=str(bad), replay_ratio=0.5, steps=1, eval_fraction=0.0,
                          output=str(tmp_path / "run")))


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    return env


def test_cli_yaml_config_with_flag_override(tmp_path, task_file, replay_set):
    cfg = {**TINY, "task": task_file, "replay": replay_set, "replay_ratio": 0.05, "steps": 50, "eval_every": 100}
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "replaymill.pipeline.cli", "train", "--config", str(tmp_path / "train.yaml"),
                           "--steps", "2", "--output", str(out)], cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [r["step"] for r in _log(out, "train")] == [1, 2]  # --steps overrode the file's 50
    assert "final eval" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "replaymill.pipeline.cli", "train", "--model", "tiny-llama", "--task", task_file,
                          "--replay-ratio", "0.1", "--output", str(tmp_path / "x")], cwd=REPO, env=_env(),
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "needs a replay shard set" in bad.stderr


def test_ddp_two_cpu_processes_with_gloo(tmp_path, task_file, replay_set):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "replaymill.pipeline.cli", "train", "--model", "tiny-llama", "--task", task_file, "--replay", replay_set,
           "--replay-ratio", "0.25", "--seq-len", "32", "--batch-size", "2", "--steps", "3", "--warmup", "1",
           "--eval-every", "3", "--eval-tokens", "1024", "--no-plot", "--output", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((out / "checkpoints" / "step-0000003" / "state.json").read_text())
    assert state["world_size"] == 2 and len(state["data"]) == 2  # a data position per rank (own documents)
    from replaymill.trainer.data import make_mixer_factory
    from replaymill.trainer.tokenizer import ByteTokenizer

    cfg = TrainConfig(model="tiny-llama", task=task_file, replay=replay_set, replay_ratio=0.25, seq_len=32,
                      batch_size=2, output=str(tmp_path / "x"))
    for rank in range(2):  # each rank consumed exactly its own reader's first 3 micro-batches
        mixer = make_mixer_factory(cfg, ByteTokenizer(), rank=rank, world_size=2)(0, 1)
        first = [mixer.next_batch()[0] for _ in range(3)]
        assert state["data"][rank] == [mixer.state_dict()]
        if rank == 0:
            rank0_first = first
    assert not any((a == b).all() for a, b in zip(rank0_first, first))  # the ranks saw different tokens
    assert _log(out, "train")[-1]["tokens"] == 3 * 2 * 2 * 32  # steps x ranks x batch x seq_len
