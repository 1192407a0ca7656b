"""GPU readiness of the trainer: throughput and MFU of a ~125M Llama-style model, with and without
replay, whether the data path keeps up, and a 1-process NCCL DDP step. One command, <= 5 minutes
on one H100/H200 (`bench/gpu_check.sh`); `--size tiny` runs the same code on a CPU in seconds
(tests/test_train_gpu_check.py).

Phases (each reported, the whole written to WORKDIR/results.json):
1. data: task text files (`--task`) and a replay shard set (`--replay`, or one written from
   `--replay-text` files); a byte-level BPE (`--vocab-size`) trained on them with `tokenizers`.
2. model: a Llama-style config (`--size`: 125m = 12 layers x 768, 12 heads, MLP 2048, untied),
   random init, saved as a plain HF directory with its tokenizer: the `--model DIR` path users take.
3. trainer: `replaymill.train` as users run it (bf16 autocast, SDPA, fused AdamW, DataLoader
   workers), at replay 0 and `--replay-ratio`, eager and, with `--compile`, torch.compile'd. Tokens/s
   is the steady state (steps after `--warmup-steps`, from the per-step `elapsed_s` in log.jsonl);
   MFU = tokens/s x FLOPs/token / peak, FLOPs/token = 6 N + 12 n_layer d_model seq_len (PaLM,
   N = parameters except the input embedding), peak = `--peak-tflops` or the GPU's bf16 dense peak.
4. data path: the trainer's own DataLoader (same mixer, BPE tokenization, packing, exact replay
   mix) with no model, at `--data-workers` workers: tokens/s, and its ratio to what the trainer consumed.
5. DDP: `torchrun --nproc_per_node 1 -m replaymill.pipeline.cli train` for 2 steps (NCCL on CUDA,
   gloo on CPU), checking the run reports DDP and finishes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SIZES = {  # model shape, micro-batch, steps
    "125m": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 2048,
             "vocab_size": 32000, "seq_len": 1024, "batch_size": 32, "steps": 60, "warmup_steps": 10},
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128,
             "vocab_size": 600, "seq_len": 64, "batch_size": 4, "steps": 6, "warmup_steps": 2},
}
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0}


def default_data() -> Path:
    env = os.environ.get("REPLAYMILL_SHARED_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data", REPO / "shared" / "data"]:
        if cand.is_dir():
            return cand
    return REPO.parent / "shared" / "data"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    data = default_data() / "prose"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=SIZES, default="125m")
    ap.add_argument("--workdir", default="/tmp/replaymill-gpu-check")
    ap.add_argument("--task", default=f"{data / 'de-grimm.txt'},{data / 'de-verne-20000.txt'}",
                    help="task data (any `replaymill train --task` value)")
    ap.add_argument("--replay", help="a replay shard set; default: written from --replay-text")
    ap.add_argument("--replay-text", default=str(data / "en-tinyshakespeare.txt"),
                    help="comma-separated text/JSONL files the replay shard set is written from")
    ap.add_argument("--replay-ratio", type=float, default=0.25)
    ap.add_argument("--vocab-size", type=int, help="BPE vocabulary (default by --size)")
    ap.add_argument("--seq-len", type=int)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--steps", type=int, help="optimizer steps per trainer run")
    ap.add_argument("--warmup-steps", type=int, help="steps left out of the steady-state rate")
    ap.add_argument("--num-workers", type=int, default=4, help="trainer DataLoader workers")
    ap.add_argument("--data-workers", type=int, default=8, help="DataLoader workers for the data-path rate")
    ap.add_argument("--data-seconds", type=float, default=20.0, help="how long to time the data path")
    ap.add_argument("--compile", action="store_true", help="also run the trainer torch.compile'd")
    ap.add_argument("--peak-tflops", type=float, help="bf16 dense peak of the device (default: from its name)")
    ap.add_argument("--skip-ddp", action="store_true")
    args = ap.parse_args(argv)
    for key, value in SIZES[args.size].items():
        if key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
            continue
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def _texts(spec: str) -> list[str]:
    from replaymill.trainer.sources import load_documents

    return [text for _, text in load_documents(spec)]


def write_replay_set(root: Path, spec: str, shards: int) -> str:
    """The --replay-text documents as a verified shard set of `shards` shards (domain books)."""
    import pyarrow as pa

    from replaymill.schemas.document import SCHEMA_VERSION, new_document, to_record_batch
    from replaymill.schemas.manifest import Manifest, totals_from_shards
    from replaymill.shards.io import write_manifest, write_shard
    from replaymill.trainer.sources import load_documents

    shutil.rmtree(root, ignore_errors=True)
    rows = [dict(new_document(doc_id, text, "gpu-check"), domain="books", lang="en")
            for doc_id, text in load_documents(spec)]
    infos = [write_shard(str(root), f"domain=books/lang=en/part-{k:05d}.arrow",
                         pa.Table.from_batches([to_record_batch(rows[k::shards])]), "books", "en")
             for k in range(shards)]
    by_domain, by_lang, total = totals_from_shards(infos)
    write_manifest(str(root), Manifest(schema_version=SCHEMA_VERSION, kind="build",
                                       created_at=datetime.now(timezone.utc).isoformat(), tool_version="gpu-check",
                                       inputs=spec.split(","), shards=infos, by_domain=by_domain, by_lang=by_lang,
                                       total=total))
    return str(root)


def llama_config(size: str, vocab: int, seq_len: int, eos_id: int):
    """The Llama-style shape of `size` (multi-head attention, SwiGLU MLP, RMSNorm, RoPE, untied head)."""
    from transformers import LlamaConfig

    shape = {k: v for k, v in SIZES[size].items()
             if k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")}
    return LlamaConfig(vocab_size=vocab, max_position_embeddings=seq_len, tie_word_embeddings=False,
                       bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id,
                       num_key_value_heads=shape["num_attention_heads"], **shape)


def make_model(args: argparse.Namespace, directory: Path, texts: list[str]) -> dict:
    """A BPE tokenizer trained on `texts` and a random Llama-style model, saved as one HF directory."""
    import torch
    from transformers import AutoModelForCausalLM

    from replaymill.trainer.bpe import train_bpe
    from replaymill.trainer.model import quiet_hf_progress

    shutil.rmtree(directory, ignore_errors=True)
    t = time.perf_counter()
    tok = train_bpe(texts, args.vocab_size, directory)
    bpe_s = time.perf_counter() - t
    config = llama_config(args.size, len(tok), args.seq_len, tok.eos_token_id)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    with quiet_hf_progress():
        model.save_pretrained(directory)
    total = sum(p.numel() for p in model.parameters())
    embed = model.get_input_embeddings().weight.numel()
    return {"dir": str(directory), "parameters": total, "non_embedding": total - embed, "vocab": len(tok),
            "layers": config.num_hidden_layers, "hidden": config.hidden_size, "bpe_train_s": round(bpe_s, 1)}


def flops_per_token(model: dict, seq_len: int) -> float:
    return 6.0 * model["non_embedding"] + 12.0 * model["layers"] * model["hidden"] * seq_len


def peak_flops(override: float | None) -> tuple[float | None, str]:
    import torch

    if override:
        return override * 1e12, "given"
    if not torch.cuda.is_available():
        return None, "cpu"
    name = torch.cuda.get_device_name()
    for key, tflops in PEAK_BF16_TFLOPS.items():
        if key in name:
            return tflops * 1e12, name
    return None, name


def steady_rate(log_path: Path, warmup_steps: int) -> float:
    """Tokens/s from the end of step `warmup_steps` to the last step (per-step `elapsed_s` in log.jsonl),
    so start-up, compilation and the first evaluation are not counted."""
    train = [r for r in map(json.loads, log_path.read_text().splitlines()) if r["kind"] == "train"]
    last = train[-1]
    if not 0 < warmup_steps < len(train):
        return last["tokens"] / last["elapsed_s"]
    first = train[warmup_steps - 1]
    return (last["tokens"] - first["tokens"]) / max(last["elapsed_s"] - first["elapsed_s"], 1e-9)


def run_trainer(args, model: dict, task: str, replay: str, ratio: float, compile_: bool, work: Path) -> dict:
    import torch

    from replaymill.trainer.config import TrainConfig
    from replaymill.trainer.loop import train

    out = work / f"train-r{ratio:g}{'-compile' if compile_ else ''}"
    shutil.rmtree(out, ignore_errors=True)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    cfg = TrainConfig(model=model["dir"], task=task, replay=replay if ratio > 0 else None, replay_ratio=ratio,
                      seq_len=args.seq_len, batch_size=args.batch_size, steps=args.steps, warmup=5, lr=6e-4,
                      eval_fraction=0.0, eval_every=10**9, num_workers=args.num_workers, attn_implementation="sdpa",
                      compile=compile_, plot=False, log_every=max(1, args.steps // 4), output=str(out))
    t = time.perf_counter()
    result = train(cfg)
    rate = steady_rate(out / "log.jsonl", args.warmup_steps)
    peak, device = peak_flops(args.peak_tflops)
    return {"replay_ratio": ratio, "compile": compile_, "tokens_per_s": rate, "wall_s": time.perf_counter() - t,
            "mfu": rate * flops_per_token(model, args.seq_len) / peak if peak else None, "device": device,
            "final_loss": result.get("eval", {}), "steps": result["steps"],
            "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None}


def data_path_rate(args, model: dict, task: str, replay: str, workers: int) -> dict:
    """What the trainer's data loader delivers with no model attached, in tokens/s."""
    from torch.utils.data import DataLoader

    from replaymill.trainer.data import DataSpec, make_mixer_factory
    from replaymill.trainer.mixer import MixedBatches
    from replaymill.trainer.tokenizer import load_tokenizer

    spec = DataSpec(task=task, replay=replay, replay_ratio=args.replay_ratio, seq_len=args.seq_len,
                    batch_size=args.batch_size)
    factory = make_mixer_factory(spec, load_tokenizer(model["dir"]), 0, 1)
    loader = DataLoader(MixedBatches(factory, max(1, workers)), batch_size=None, num_workers=workers,
                        prefetch_factor=4 if workers else None)
    it = iter(loader)
    next(it)  # workers started and their sources opened
    t, batches = time.perf_counter(), 0
    while time.perf_counter() - t < args.data_seconds:
        next(it)
        batches += 1
    elapsed = time.perf_counter() - t
    del it
    return {"workers": workers, "tokens_per_s": batches * args.batch_size * args.seq_len / elapsed}


def ddp_step(args, model: dict, task: str, replay: str, work: Path) -> dict:
    out = work / "ddp"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
           "-m", "replaymill.pipeline.cli", "train", "--model", model["dir"], "--task", task, "--replay", replay,
           "--replay-ratio", str(args.replay_ratio), "--seq-len", str(args.seq_len), "--batch-size",
           str(args.batch_size), "--steps", "2", "--warmup", "1", "--eval-fraction", "0", "--no-plot",
           "--attn-implementation", "sdpa", "--output", str(out)]
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)
    backend = next((b for b in ("nccl", "gloo") if f"DDP, {b}" in proc.stdout), None)
    ok = proc.returncode == 0 and backend is not None and (out / "checkpoints" / "step-0000002").is_dir()
    return {"ok": ok, "backend": backend, "wall_s": time.perf_counter() - t,
            "error": None if ok else (proc.stderr or proc.stdout)[-1500:]}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results: dict = {"date": datetime.now(timezone.utc).isoformat(), "size": args.size, "torch": torch.__version__,
                     "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                     "seq_len": args.seq_len, "batch_size": args.batch_size, "steps": args.steps}
    replay = args.replay or write_replay_set(work / "replay", args.replay_text,
                                             shards=max(16, args.num_workers, args.data_workers))
    model = make_model(args, work / "model", _texts(args.task) + _texts(args.replay_text))
    results["model"] = model
    print(f"[gpu-check] model: {model['parameters']:,} parameters ({model['non_embedding']:,} non-embedding), "
          f"BPE vocab {model['vocab']} trained in {model['bpe_train_s']}s", flush=True)
    runs = [(0.0, False), (args.replay_ratio, False)] + ([(0.0, True), (args.replay_ratio, True)] if args.compile else [])
    results["trainer"] = [run_trainer(args, model, args.task, replay, r, c, work) for r, c in runs]
    results["data_path"] = [data_path_rate(args, model, args.task, replay, w) for w in sorted({0, args.data_workers})]
    consumed = max(r["tokens_per_s"] for r in results["trainer"])
    for d in results["data_path"]:
        d["x_trainer"] = d["tokens_per_s"] / consumed
    results["ddp"] = None if args.skip_ddp else ddp_step(args, model, args.task, replay, work)
    results["wall_s"] = time.perf_counter() - t0
    (work / "results.json").write_text(json.dumps(results, indent=1))
    report(results)
    return 0 if results["ddp"] is None or results["ddp"]["ok"] else 1


def report(results: dict) -> None:
    m = results["model"]
    print(f"\n## GPU check ({results['device']}, torch {results['torch']}, {results['size']}: "
          f"{m['parameters'] / 1e6:.1f}M parameters, {results['batch_size']}x{results['seq_len']} tokens per step)")
    print("| run | tokens/s | MFU | peak memory |\n|---|---|---|---|")
    for r in results["trainer"]:
        name = f"replay {r['replay_ratio']:.0%}" + (", compiled" if r["compile"] else ", eager")
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "n/a (no peak known)"
        mem = f"{r['peak_mem_gib']:.1f} GiB" if r["peak_mem_gib"] is not None else "-"
        print(f"| {name} | {r['tokens_per_s']:,.0f} | {mfu} | {mem} |")
    for d in results["data_path"]:
        print(f"data path, {d['workers']} workers: {d['tokens_per_s']:,.0f} tokens/s = {d['x_trainer']:.1f}x "
              "the fastest trainer run's consumption")
    if results["ddp"] is not None:
        ddp = results["ddp"]
        print(f"DDP, 1 process ({ddp['backend']}): {'ok' if ddp['ok'] else 'FAILED'} in {ddp['wall_s']:.0f}s"
              + ("" if ddp["ok"] else f"\n{ddp['error']}"))
    print(f"total {results['wall_s']:.0f}s")


if __name__ == "__main__":
    sys.exit(main())
