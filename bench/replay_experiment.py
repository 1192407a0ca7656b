"""Does replay prevent forgetting? A small English -> German version of Ibrahim et al. (2024), Table 2.

1. Pre-train a tiny byte-level GPT-2 (~3M parameters) on English (Tiny Shakespeare), read from a
   real replay shard set written with shards.io (held-out English in a second shard set).
2. Fine-tune it on German (Grimm + Verne) four times at equal compute (same steps, same tokens per
   batch, re-warmed LR) with 0%, 1%, 5% and 25% of every batch's tokens replayed from the English
   shards, all through `trainer.loop.train`, the code path `replaymill train` runs.
3. Report held-out English loss (forgetting), held-out German loss (learning) and their average per
   replay ratio, against the English loss before fine-tuning; the baseline is the 0% row.

    python bench/replay_experiment.py --workdir /tmp/replay-exp
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa  # noqa: E402
import torch  # noqa: E402

from replaymill.schemas.document import SCHEMA_VERSION, new_document, to_record_batch  # noqa: E402
from replaymill.schemas.manifest import Manifest, totals_from_shards  # noqa: E402
from replaymill.shards.io import write_manifest, write_shard  # noqa: E402
from replaymill.trainer.config import TrainConfig  # noqa: E402
from replaymill.trainer.loop import train  # noqa: E402
from replaymill.trainer.sources import is_held_out, load_documents  # noqa: E402

PROSE = Path(__file__).resolve().parents[2] / "shared" / "data" / "prose"
RATIOS = (0.0, 0.01, 0.05, 0.25)


def write_english_shards(workdir: Path, eval_fraction: float, num_shards: int) -> tuple[str, str]:
    """English paragraphs as two real shard sets: replay (train part, `num_shards` shards) and eval."""
    docs = load_documents(str(PROSE / "en-tinyshakespeare.txt"))
    sets = {"en-replay": [d for d in docs if not is_held_out(d[0], eval_fraction)],
            "en-eval": [d for d in docs if is_held_out(d[0], eval_fraction)]}
    roots = []
    for name, part in sets.items():
        root = workdir / name
        shutil.rmtree(root, ignore_errors=True)
        rows = [dict(new_document(i, t, "tinyshakespeare"), domain="books", lang="en") for i, t in part]
        n = num_shards if name == "en-replay" else 1
        infos = [write_shard(str(root), f"domain=books/lang=en/part-{k:05d}.arrow",
                             pa.Table.from_batches([to_record_batch(rows[k::n])]), "books", "en") for k in range(n)]
        by_domain, by_lang, total = totals_from_shards(infos)
        write_manifest(str(root), Manifest(
            schema_version=SCHEMA_VERSION, kind="build", created_at=datetime.now(timezone.utc).isoformat(),
            tool_version="bench", inputs=[str(PROSE / "en-tinyshakespeare.txt")], shards=infos,
            by_domain=by_domain, by_lang=by_lang, total=total))
        roots.append(str(root))
    return roots[0], roots[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="/tmp/replay-exp")
    ap.add_argument("--pretrain-steps", type=int, default=300)
    ap.add_argument("--finetune-steps", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default); 1 is faster on a busy machine")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = dict(n_layer=args.n_layer, n_head=4, n_embd=args.n_embd)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    replay, en_eval = write_english_shards(work, eval_fraction=0.05, num_shards=8)
    german = f"{PROSE / 'de-grimm.txt'},{PROSE / 'de-verne-20000.txt'}"
    common = dict(seq_len=args.seq_len, batch_size=args.batch_size, seed=args.seed, eval_tokens=32768,
                  weight_decay=0.1, max_grad_norm=1.0)

    pre_dir = work / "pretrain"
    shutil.rmtree(pre_dir, ignore_errors=True)
    t = time.perf_counter()
    pre = train(TrainConfig(model="tiny-gpt2", model_overrides=model, task=replay, task_eval=en_eval,
                            steps=args.pretrain_steps, warmup=50, lr=2e-3, min_lr_ratio=0.1,
                            eval_every=args.pretrain_steps, output=str(pre_dir), **common))
    print(f"pretrain: {time.perf_counter() - t:.0f}s, English held-out loss {pre['eval']['task']:.4f}", flush=True)

    rows = []
    for ratio in RATIOS:
        out = work / f"finetune-r{ratio:g}"
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        res = train(TrainConfig(model=str(pre_dir / "final"), task=german, eval_fraction=0.05,
                                replay=replay, replay_eval=en_eval, replay_ratio=ratio,
                                steps=args.finetune_steps, warmup=20, lr=1e-3, min_lr_ratio=0.1,
                                eval_every=max(1, args.finetune_steps // 4), output=str(out), **common))
        log = [json.loads(ln) for ln in (out / "log.jsonl").read_text().splitlines()]
        before = next(r for r in log if r["kind"] == "eval" and r["step"] == 0)
        last = [r for r in log if r["kind"] == "train"][-1]
        rows.append({"replay_ratio": ratio, "en_before": before["eval_replay_loss"], "de_before": before["eval_task_loss"],
                     "en": res["eval"]["replay"], "de": res["eval"]["task"],
                     "replay_tokens": last["replay_tokens"], "tokens": last["tokens"],
                     "seconds": time.perf_counter() - t})
        print(f"finetune r={ratio:g}: {rows[-1]['seconds']:.0f}s en={rows[-1]['en']:.4f} de={rows[-1]['de']:.4f}", flush=True)

    en_before = rows[0]["en_before"]
    print(f"\nTiny GPT-2 ({model}, {pre['parameters']:,} parameters), byte-level; {args.pretrain_steps} pre-training steps on English, "
          f"{args.finetune_steps} fine-tuning steps on German, {args.batch_size}x{args.seq_len} tokens per step; "
          "held-out loss in nats/token (lower is better)\n")
    print("| replay ratio | replay tokens / total | English (forgetting) | German (learning) | average | English forgetting vs 0% |")
    print("|---|---|---|---|---|---|")
    print(f"| before fine-tuning | - | {en_before:.4f} | {rows[0]['de_before']:.4f} | "
          f"{(en_before + rows[0]['de_before']) / 2:.4f} | - |")
    base = rows[0]["en"] - en_before
    for r in rows:
        forgot = r["en"] - en_before
        print(f"| {r['replay_ratio']:.0%} | {r['replay_tokens']:,} / {r['tokens']:,} | {r['en']:.4f} (+{forgot:.4f}) | "
              f"{r['de']:.4f} | {(r['en'] + r['de']) / 2:.4f} | {forgot / base:.2f}x |")
    (work / "results.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    print(f"\ntotal {time.perf_counter() - t_start:.0f}s; curves in {work}/finetune-r*/curves.png, rows in {work}/results.json")


if __name__ == "__main__":
    main()
