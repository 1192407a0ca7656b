"""What `--tokenizer` costs: exact token counts in a real tokenizer against the built-in estimate.

    python bench/tokenizer_cost.py [--data DIR ...] [--tokenizer PATH] [--vocab 32000] [--repeat 3]

1. Counting alone, per document, over the same real documents (default: every JSONL document of
   ../shared/data/dolma-cc and olmo-c4, plus the Python standard library's .py files as code):
   `transforms.tokens.estimate_tokens` (the baseline, measured in this run) against
   `transforms.tokens.count_tokens` with the tokenizer, batched as the Annotate stage batches
   (512 documents), once with the Rust tokenizer's own thread pool and once single-threaded.
2. The whole Annotate stage (`AnnotateBatchFn` called directly: language ID, quality signals,
   domain and the token count; the build's per-document work) with and without the tokenizer:
   the docs/s a build loses.

Without `--tokenizer`, a byte-level BPE of `--vocab` entries is trained on the documents first
(`trainer.bpe.train_bpe`, like a base model's). Prints docs/s, MB/s, the ratio to the estimate and
the peak RSS.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from measure import best_of  # noqa: E402  (bench/, first on sys.path for a script)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BATCH = 512


def load(dirs: list[Path], code_files: int) -> list[dict]:
    """Documents of every *.json(l).gz under `dirs` and the first `code_files` stdlib .py files."""
    from replaymill.schemas.document import new_document

    docs = []
    for d in dirs:
        for path in sorted(d.glob("*.json*.gz")):
            with gzip.open(path, "rt", encoding="utf-8") as f:
                for i, line in enumerate(f):
                    r = json.loads(line)
                    if isinstance(r.get("text"), str) and r["text"]:
                        docs.append(new_document(f"{path.name}:{i}", r["text"], "bench", url=r.get("url")))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(p for p in stdlib.glob("*.py"))[:code_files]:
        docs.append(new_document(path.name, path.read_text(encoding="utf-8", errors="replace"), "python-stdlib-code"))
    return docs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, nargs="+", default=[SHARED / "dolma-cc", SHARED / "olmo-c4"],
                    help="folders of gzipped JSONL documents (default: ../shared/data/dolma-cc and olmo-c4)")
    ap.add_argument("--code-files", type=int, default=200, help="stdlib .py files added as code documents")
    ap.add_argument("--tokenizer", help="tokenizer.json or HF tokenizer directory (default: train a BPE here)")
    ap.add_argument("--vocab", type=int, default=32000, help="vocabulary of the BPE trained when --tokenizer is absent")
    ap.add_argument("--repeat", type=int, default=3, help="passes per measurement (the best is reported)")
    args = ap.parse_args()

    from apache_beam.pvalue import TaggedOutput

    from replaymill.pipeline.annotate import AnnotateBatchFn
    from replaymill.schemas.recipe import resolve_recipe
    from replaymill.transforms.tokens import count_tokens, estimate_tokens, load_tokenizer

    docs = load(args.data, args.code_files)
    texts = [d["text"] for d in docs]
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    tmp = None
    if args.tokenizer:
        path = args.tokenizer
    else:
        from replaymill.trainer.bpe import train_bpe

        tmp = tempfile.TemporaryDirectory()
        t = time.perf_counter()
        train_bpe(texts, args.vocab, tmp.name)
        path = tmp.name
        print(f"trained a {args.vocab}-entry byte-level BPE on the documents in {time.perf_counter() - t:.1f} s")
    tok = load_tokenizer(path)
    print(f"{len(docs):,} documents, {mb:.1f} MB; tokenizer {path}; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")

    def batched_counts():
        return [n for i in range(0, len(texts), BATCH) for n in count_tokens(texts[i:i + BATCH], tok)]

    exact = batched_counts()
    estimate = [estimate_tokens(t) for t in texts]
    err = sum(abs(e - x) for e, x in zip(estimate, exact)) / max(1, sum(exact))
    rows = [("estimate_tokens (baseline)", best_of(lambda: [estimate_tokens(t) for t in texts], args.repeat))]
    rows.append(("count_tokens, Rust thread pool", best_of(batched_counts, args.repeat)))
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # read by the Rust library at each batch call
    rows.append(("count_tokens, one thread", best_of(batched_counts, args.repeat)))
    del os.environ["TOKENIZERS_PARALLELISM"]

    recipe = resolve_recipe("minimal")

    def annotate(tokenizer: str | None):
        fn = AnnotateBatchFn(recipe, tokenizer)
        fn.setup()

        def run():
            return [r for i in range(0, len(docs), BATCH) for r in fn.process(docs[i:i + BATCH])
                    if not isinstance(r, TaggedOutput)]
        return run

    rows.append(("Annotate stage, estimate", best_of(annotate(None), args.repeat)))
    rows.append(("Annotate stage, --tokenizer", best_of(annotate(path), args.repeat)))

    base = rows[0][1]
    print(f"\ncounts: estimate vs tokenizer, mean |error| {err:.1%} of the tokenizer's {sum(exact):,} tokens\n")
    print("| what | docs/s | MB/s | time vs estimate |")
    print("|---|---|---|---|")
    for name, sec in rows:
        print(f"| {name} | {len(docs) / sec:,.0f} | {mb / sec:.1f} | {sec / base:.1f}x |")
    ann_est, ann_tok = rows[-2][1], rows[-1][1]
    print(f"\nthe tokenizer makes the Annotate stage {ann_tok / ann_est:.2f}x as slow "
          f"({len(docs) / ann_est:,.0f} -> {len(docs) / ann_tok:,.0f} docs/s); "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
