"""Is the data path the bottleneck? Trainer tokens/s on CPU vs tokens/s the loader alone delivers.

The data path is everything between the shards and the model: verified shard reads, document
streams, byte tokenization, packing and the exact replay mixer (`trainer.data.make_mixer_factory`,
as the trainer builds it). The trainer figure is `trainer.loop.train` end to end (forward,
backward, AdamW, clipping, logging) with the replay experiment's model, same run, same data.
The ratio data/trainer says how many times faster the loader is than the trainer consumes.

    python bench/trainer_throughput.py --threads 1
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.replay_experiment import PROSE, write_english_shards  # noqa: E402
from replaymill.trainer.config import TrainConfig  # noqa: E402
from replaymill.trainer.data import make_mixer_factory  # noqa: E402
from replaymill.trainer.loop import train  # noqa: E402
from replaymill.trainer.tokenizer import ByteTokenizer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30, help="trainer optimizer steps to time")
    ap.add_argument("--data-batches", type=int, default=300, help="micro-batches the data path alone produces")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--replay-ratio", type=float, default=0.05)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        replay, _ = write_english_shards(Path(tmp), eval_fraction=0.05, num_shards=8)
        cfg = TrainConfig(model="tiny-gpt2", model_overrides=dict(n_layer=args.n_layer, n_head=4, n_embd=args.n_embd),
                          task=f"{PROSE / 'de-grimm.txt'},{PROSE / 'de-verne-20000.txt'}", replay=replay,
                          replay_ratio=args.replay_ratio, seq_len=args.seq_len, batch_size=args.batch_size,
                          steps=args.steps, warmup=5, eval_fraction=0.0, plot=False, output=str(Path(tmp) / "run"))

        t = time.perf_counter()
        mixer = make_mixer_factory(cfg, ByteTokenizer(), rank=0, world_size=1)(0, 1)
        setup = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(args.data_batches):
            mixer.next_batch()
        data_tps = args.data_batches * args.batch_size * args.seq_len / (time.perf_counter() - t)

        result = train(cfg)
        train_tps = result["tokens_per_s"]
    print(f"\nmodel: tiny-gpt2 {result['parameters']:,} parameters, {args.batch_size}x{args.seq_len} tokens per step, "
          f"replay {args.replay_ratio:.0%}, torch threads {torch.get_num_threads()}")
    print(f"data path alone (shards -> tokens -> packed mixed batches): {data_tps:,.0f} tokens/s "
          f"(+{setup:.2f}s to open sources)")
    print(f"trainer (forward+backward+AdamW):                         {train_tps:,.0f} tokens/s")
    print(f"ratio data path / trainer: {data_tps / train_tps:.1f}x  (>1: the loader is not the bottleneck)")


if __name__ == "__main__":
    main()
