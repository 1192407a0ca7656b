"""MinHash signature throughput vs datasketch, the whole near-dedup stage vs datatrove, and peak RSS.

Run from the repository root:  python -m bench.minhash_throughput [--docs 2000] [--sizes 2000 8000]

1. Signatures (one process = one core): `transforms.minhash.batch_signatures` against
   `datasketch.MinHash(112, seed=1, scheme="affine64")` on the same real documents with the same
   permutations, (a) with our shingle hash as `hashfunc` (bit-identical signatures, checked) and
   (b) with a C-level hashfunc (xxh3 of the joined shingle) as the fastest datasketch setup.
   Shingling (normalize + split + n-grams) is done for datasketch outside the timer in (b') too, so
   the ratio isolates hashing + permutation.
2. Whole stage, same jsonl input, same parameters (word 5-grams, 14 bands x 8 rows, 64-bit hashes,
   seed 1), single worker each: replaymill's NearDedup on Beam's DirectRunner (read -> signatures ->
   LSH shuffle -> components -> join -> write kept/rejects) against datatrove's four MinHash steps
   (signature, buckets, cluster, filter; LocalPipelineExecutor, workers=1). datatrove's English
   word tokenizer needs spaCy, so it is given a whitespace tokenizer (after its own
   `simplify_text`), like replaymill's `words`; and since datatrove 0.10 passes str to xxhash, which
   xxhash 4 rejects, its xxhash64 is wrapped to encode UTF-8 first. Skipped with a message if datatrove is not
   importable (it is not a replaymill dependency: `pip install datatrove` to run this part).
3. Peak RSS (ru_maxrss) of each run, in its own subprocess, at two input sizes; plus a signature-only
   streaming pass (what one worker holds outside the shuffle).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.near_dedup_common import REPO, scaled_corpus, write_jsonl

NUM_PERM, SEED, NGRAM, BANDS, ROWS = 112, 1, 5, 14, 8


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM) and of its finished children, in MiB.

    VmHWM rather than getrusage(RUSAGE_SELF): Linux carries ru_maxrss across execve, so a child
    would report the benchmark parent's peak instead of its own.
    """
    own_kib = 0
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                own_kib = int(line.split()[1])
    kids_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own_kib, kids_kib) / 1024


def bench_signatures(n_docs: int) -> None:
    import xxhash
    from datasketch import MinHash

    from replaymill.transforms.minhash import Permutations, batch_signatures, doc_shingles, shingle_hash

    texts = [d["text"] for d in scaled_corpus(n_docs)]
    perms = Permutations.create(NUM_PERM, SEED)

    t0 = time.perf_counter()
    ours = np.vstack([batch_signatures(texts[i : i + 256], NGRAM, perms)[0] for i in range(0, len(texts), 256)])
    t_ours = time.perf_counter() - t0

    template = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine64")
    assert np.array_equal(template.permutations[0], perms.a)

    def datasketch_run(hashfunc, shingled=None) -> tuple[float, list]:
        out = []
        t = time.perf_counter()
        for k, text in enumerate(texts):
            sh = shingled[k] if shingled is not None else doc_shingles(text, NGRAM)
            m = MinHash(num_perm=NUM_PERM, seed=SEED, hashfunc=hashfunc, permutations=template.permutations,
                        scheme="affine64")
            m.update_batch(sh)
            out.append(m.hashvalues)
        return time.perf_counter() - t, out

    t_same, same = datasketch_run(shingle_hash)
    mismatched = sum(not np.array_equal(a, b) for a, b, t in zip(ours, same, texts) if len(doc_shingles(t, NGRAM)))
    fast = lambda s: xxhash.xxh3_64_intdigest(" ".join(s).encode())  # noqa: E731
    t_fast, _ = datasketch_run(fast)
    pre = [doc_shingles(t, NGRAM) for t in texts]
    t_fast_pre, _ = datasketch_run(fast, pre)
    t1 = time.perf_counter()
    from replaymill.transforms.minhash import batch_shingles

    for i in range(0, len(texts), 256):
        batch_shingles(texts[i : i + 256], NGRAM)
    t_our_shingles = time.perf_counter() - t1

    n = len(texts)
    print(f"## signatures: {n} real/edited web documents, {NUM_PERM} permutations, word {NGRAM}-grams, one core")
    print("| implementation | docs/s | ratio vs replaymill |")
    print("|---|---|---|")
    print(f"| replaymill batch_signatures (batches of 256) | {n / t_ours:,.0f} | 1.00 |")
    print(f"| datasketch, same shingle hash (identical signatures; {mismatched} mismatches) | {n / t_same:,.0f} | "
          f"{t_ours / t_same:.3f} |")
    print(f"| datasketch, C xxh3 hashfunc | {n / t_fast:,.0f} | {t_ours / t_fast:.3f} |")
    print(f"| datasketch, C xxh3 hashfunc, shingling excluded from its time | {n / t_fast_pre:,.0f} | "
          f"{(t_ours - t_our_shingles) / t_fast_pre:.3f} (vs our permutation+min only) |")
    print(f"replaymill speed-up: {t_same / t_ours:.1f}x vs datasketch same-hash, {t_fast / t_ours:.1f}x vs datasketch "
          f"fast-hash; permutation+segment-min alone {t_fast_pre / (t_ours - t_our_shingles):.1f}x")


# --- child processes: one measured run each -------------------------------------------------------

def child_stage(inp: Path, work: Path) -> dict:
    from bench.near_dedup_common import run_stage
    from replaymill.schemas.dedup import NearDedupConfig

    t = time.perf_counter()
    centre = run_stage(inp, NearDedupConfig(enabled=True, bands=BANDS, rows=ROWS, ngram=NGRAM, seed=SEED), work,
                       direct_num_workers=1)
    removed = sum(1 for k, c in centre.items() if k != c)
    return {"seconds": time.perf_counter() - t, "removed": removed, "rss_mb": peak_rss_mb()}


def child_signatures(inp: Path, work: Path) -> dict:
    """Stream the file in batches of 256, computing signatures and band hashes (no shuffle)."""
    from replaymill.transforms.lsh import band_hashes
    from replaymill.transforms.minhash import Permutations, batch_signatures

    perms = Permutations.create(NUM_PERM, SEED)
    t, n, batch = time.perf_counter(), 0, []
    with open(inp, encoding="utf-8") as f:
        for line in f:
            batch.append(json.loads(line)["text"])
            if len(batch) == 256:
                band_hashes(batch_signatures(batch, NGRAM, perms)[0], BANDS, ROWS)
                n, batch = n + len(batch), []
    if batch:
        band_hashes(batch_signatures(batch, NGRAM, perms)[0], BANDS, ROWS)
    return {"seconds": time.perf_counter() - t, "rss_mb": peak_rss_mb()}


def child_datatrove(inp: Path, work: Path) -> dict:
    from datatrove.executor.local import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers.jsonl import JsonlWriter
    from datatrove.utils.hashing import HashConfig
    from datatrove.utils.word_tokenizers import WordTokenizer

    class Whitespace(WordTokenizer):
        def word_tokenize(self, text: str) -> list[str]:
            return text.split()

        def sent_tokenize(self, text: str) -> list[str]:
            return [text]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            raise NotImplementedError

    # datatrove 0.10 hands str to xxhash, which xxhash 4 rejects; encode as xxhash 3 did implicitly.
    import datatrove.utils.hashes.xxhash as dt_xxhash
    import xxhash

    dt_xxhash.xxhash64 = lambda data: xxhash.xxh64_intdigest(data.encode() if isinstance(data, str) else data)

    cfg = MinhashConfig(n_grams=NGRAM, num_buckets=BANDS, hashes_per_bucket=ROWS, seed=SEED,
                        hash_config=HashConfig(precision=64, hash_fc="xxhash"))
    reader = lambda: JsonlReader(str(inp.parent), glob_pattern=inp.name, text_key="text", id_key="id")  # noqa: E731
    logs = str(work / "logs")
    t = time.perf_counter()
    LocalPipelineExecutor(pipeline=[reader(), MinhashDedupSignature(str(work / "sigs"), config=cfg, language=Whitespace())],
                          tasks=1, workers=1, logging_dir=f"{logs}/1").run()
    LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=cfg)],
                          tasks=BANDS, workers=1, logging_dir=f"{logs}/2").run()
    LocalPipelineExecutor(pipeline=[MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=cfg)],
                          tasks=1, workers=1, logging_dir=f"{logs}/3").run()
    LocalPipelineExecutor(pipeline=[reader(), MinhashDedupFilter(str(work / "remove"),
                                                                  exclusion_writer=JsonlWriter(str(work / "removed"))),
                                    JsonlWriter(str(work / "kept"))],
                          tasks=1, workers=1, logging_dir=f"{logs}/4").run()
    seconds = time.perf_counter() - t
    removed = 0
    for path in (work / "removed").glob("*.jsonl*"):
        import gzip

        with gzip.open(path, "rt") as f:
            removed += sum(1 for _ in f)
    return {"seconds": seconds, "removed": removed, "rss_mb": peak_rss_mb()}


CHILDREN = {"stage": child_stage, "signatures": child_signatures, "datatrove": child_datatrove}


def measure(kind: str, inp: Path, work: Path) -> dict | None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.minhash_throughput", "--child", kind, "--input", str(inp), "--work", str(work)],
        cwd=REPO, capture_output=True, text=True,
    )
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"[{kind}] failed (rc={proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=2000, help="documents for the signature benchmark")
    ap.add_argument("--sizes", type=int, nargs=2, default=[2000, 8000], help="two input sizes for stage + RSS")
    ap.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    ap.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](args.input, args.work)))
        return

    bench_signatures(args.docs)
    try:
        import datatrove  # noqa: F401

        have_datatrove = True
    except ImportError:
        have_datatrove = False
        print("\n(datatrove not importable: skipping the stage comparison; `pip install datatrove` to run it)")
    print(f"\n## whole stage, one worker, word {NGRAM}-grams, {BANDS}x{ROWS}, seed {SEED}; peak RSS per run")
    print("| docs | run | seconds | docs/s | removed | peak RSS MiB | time ratio vs datatrove |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            inp = write_jsonl(scaled_corpus(n), Path(tmp) / f"in{n}" / "docs.jsonl")
            res = {k: measure(k, inp, Path(tmp) / f"{k}{n}") for k in (["stage", "signatures"]
                                                                      + (["datatrove"] if have_datatrove else []))}
            base = res.get("datatrove")
            for k, name in (("stage", "replaymill NearDedup (Beam DirectRunner)"),
                            ("datatrove", "datatrove MinHash 4 steps"),
                            ("signatures", "replaymill signatures only, streamed (no shuffle)")):
                r = res.get(k)
                if r is None:
                    continue
                ratio = f"{r['seconds'] / base['seconds']:.2f}" if base and k != "signatures" else "-"
                print(f"| {n} | {name} | {r['seconds']:.1f} | {n / r['seconds']:,.0f} | {r.get('removed', '-')} | "
                      f"{r['rss_mb']:.0f} | {ratio} |")


if __name__ == "__main__":
    main()
