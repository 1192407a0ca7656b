"""Sampling benchmark: mixture exactness, DSIR closeness, iterator throughput; each against a baseline run here.

Data: real text from ../shared/data (Dolma Common Crawl -> web, C4 -> news, Tiny Shakespeare and
Grimm -> books en/de) plus this machine's Python standard library sources (-> code), written as a
real shard set. Figures:

1. Exactness. Target {web 0.5, books 0.25, code 0.15, news 0.1} streamed by ReplaySampler (upsample
   on), max |achieved - target| over every prefix up to N, in documents (docs mode) and in tokens
   (tokens mode, also as a fraction of the largest document). Baseline: i.i.d. draws of the key by
   the same weights, the usual "sample by probability" mixer.
2. DSIR. Reference: held-out German prose (Verne). KL(reference || selection) of hashed n-gram
   distributions for the DSIR selection vs uniform random samples of the same size (mean of 5).
3. Throughput: documents/s through the ReplaySampler iterator (text + n_tokens columns) vs a plain
   sequential pass over the same shards with ShardSet.iter_documents.

Run: python bench/sample_mixture.py [--prefix 10000] [--rows-per-shard 500]
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import sysconfig
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from replaymill.schemas.document import SCHEMA_VERSION, new_document, to_record_batch  # noqa: E402
from replaymill.schemas.manifest import Manifest, totals_from_shards  # noqa: E402
from replaymill.shards.io import write_manifest, write_shard  # noqa: E402
from replaymill.shards.reader import ShardSet  # noqa: E402
from replaymill.shards.sampler import ReplaySampler  # noqa: E402
from replaymill.transforms import dsir  # noqa: E402

DATA = Path(os.environ.get("REPLAYMILL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
TARGET = {"web": 0.5, "books": 0.25, "code": 0.15, "news": 0.1}


def chunks(text: str, size: int = 2000) -> list[str]:
    out, cur = [], ""
    for line in (ln.strip() for ln in text.splitlines()):
        if line:
            cur = f"{cur}\n{line}" if cur else line
            if len(cur) >= size:
                out.append(cur)
                cur = ""
    return out + ([cur] if cur else [])


def load_docs() -> dict[str, list[dict]]:
    def jsonl(path):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    web = [new_document(r["id"], r["text"], "dolma-cc") for p in sorted((DATA / "dolma-cc").glob("*.json*.gz"))
           for r in jsonl(p)]
    news = [new_document(f"{p.name}:{i}", r["text"], "c4") for p in sorted((DATA / "olmo-c4").glob("*.json*.gz"))
            for i, r in enumerate(jsonl(p))]
    books = [dict(new_document(f"en:{i}", c, "prose"), lang="en")
             for i, c in enumerate(chunks((DATA / "prose" / "en-tinyshakespeare.txt").read_text(encoding="utf-8")))]
    books += [dict(new_document(f"de:{i}", c, "prose"), lang="de")
              for i, c in enumerate(chunks((DATA / "prose" / "de-grimm.txt").read_text(encoding="utf-8")))]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    code = [new_document(str(p.relative_to(stdlib)), p.read_text(encoding="utf-8", errors="replace"), "stdlib")
            for p in sorted(stdlib.glob("*.py"))]
    return {"web": web, "news": news, "books": books, "code": [d for d in code if d["text"].strip()]}


def write_set(root: str, docs_by_domain: dict[str, list[dict]], rows: int = 100) -> ShardSet:
    infos = []
    for domain, docs in sorted(docs_by_domain.items()):
        by_lang: dict[str, list[dict]] = {}
        for d in docs:
            d = dict(d, domain=domain, lang=d.get("lang") or "en", n_tokens=max(1, len(d["text"].split())))
            by_lang.setdefault(d["lang"], []).append(d)
        for lang, ds in sorted(by_lang.items()):
            for part, start in enumerate(range(0, len(ds), rows)):
                table = pa.Table.from_batches([to_record_batch(ds[start:start + rows])])
                infos.append(write_shard(root, f"domain={domain}/lang={lang}/part-{part:05d}.arrow", table, domain, lang))
    by_domain, by_lang, total = totals_from_shards(infos)
    write_manifest(root, Manifest(schema_version=SCHEMA_VERSION, kind="build", tool_version="bench",
                                  created_at=datetime.now(timezone.utc).isoformat(), shards=infos,
                                  by_domain=by_domain, by_lang=by_lang, total=total))
    return ShardSet.open(root)


def max_deviation(keys: list[str], sizes: list[int], checkpoints: list[int]) -> dict[int, float]:
    """Max over prefixes up to each checkpoint (in steps) of max_k |u_k - w_k U|."""
    units = dict.fromkeys(TARGET, 0)
    total, worst, out = 0, 0.0, {}
    for i, (k, s) in enumerate(zip(keys, sizes), 1):
        units[k] += s
        total += s
        worst = max(worst, max(abs(units[j] - w * total) for j, w in TARGET.items()))
        if i in checkpoints:
            out[i] = worst
    return out


def exactness(ss: ShardSet, n: int) -> None:
    checkpoints = [c for c in (10, 100, 1000, 10_000, 100_000) if c <= n]
    print(f"\n1. exactness: max |achieved - target| over all prefixes (target {TARGET})")
    rng = np.random.default_rng(0)
    names = list(TARGET)
    for by in ("docs", "tokens"):
        s = ReplaySampler(ss, TARGET, by=by, seed=0, on_short="upsample")
        sizes_of = {info.path: key.sizes[i] for key in s.keys for i, info in enumerate(key.shards)} if by == "tokens" else {}
        picks = []
        for key, info, row, _ in s.iter_plan():
            picks.append((key, 1 if by == "docs" else int(sizes_of[info.path][row])))
            if len(picks) == n:
                break
        ours = max_deviation([k for k, _ in picks], [u for _, u in picks], checkpoints)
        # baseline: i.i.d. key draws by weight, sizes drawn from the same keys' documents
        iid_keys = list(rng.choice(names, size=n, p=[TARGET[k] for k in names]))
        pools = {k.name: np.concatenate(k.sizes) if by == "tokens" else np.ones(k.docs, dtype=int) for k in s.keys}
        iid_sizes = [int(rng.choice(pools[k])) for k in iid_keys]
        base = max_deviation(iid_keys, iid_sizes, checkpoints)
        largest = max(int(np.max(p)) for p in pools.values())
        unit = "documents" if by == "docs" else "tokens"
        print(f"   by {by} (largest document {largest} {unit}):")
        print(f"   {'prefix':>8} {'replaymill':>12} {'iid baseline':>14} {'ratio':>8}" +
              ("" if by == "docs" else f" {'/largest doc':>13}"))
        for c in checkpoints:
            extra = "" if by == "docs" else f" {ours[c] / largest:>13.3f}"
            print(f"   {c:>8} {ours[c]:>12.2f} {base[c]:>14.2f} {ours[c] / max(base[c], 1e-9):>8.3f}{extra}")


def dsir_closeness(ss: ShardSet, k: int = 100) -> None:
    docs = list(ss.iter_documents(["id", "text", "lang", "domain"]))
    texts = [d["text"] for d in docs]
    verne = (DATA / "prose" / "de-verne-20000.txt").read_text(encoding="utf-8")
    reference = chunks(verne)[:100]
    ref, pool = dsir.bucket_counts(reference), dsir.bucket_counts(texts)
    t0 = time.perf_counter()
    logw = dsir.log_importance_weights(texts, dsir.log_ratio(ref, pool))
    chosen = dsir.top_by_budget(dsir.gumbel_keys(logw, [d["id"] for d in docs], 0), np.ones(len(docs)), k)
    took = time.perf_counter() - t0
    kl_sel = dsir.hashed_kl(ref, dsir.bucket_counts(texts[i] for i in chosen))
    rng = np.random.default_rng(0)
    kl_uni = float(np.mean([dsir.hashed_kl(ref, dsir.bucket_counts(texts[i] for i in rng.choice(len(docs), k, False)))
                            for _ in range(5)]))
    de = sum(docs[i]["lang"] == "de" for i in chosen) / k
    print(f"\n2. DSIR toward held-out German prose (100 reference docs), pool {len(docs)} docs, select {k}")
    print(f"   KL(ref || selection) {kl_sel:.4f} nats vs KL(ref || uniform sample) {kl_uni:.4f} "
          f"(mean of 5): ratio {kl_sel / kl_uni:.3f}; KL(ref || pool) {dsir.hashed_kl(ref, pool):.4f}")
    print(f"   German share: selection {de:.2f}, pool {sum(d['lang'] == 'de' for d in docs) / len(docs):.2f}; "
          f"scoring {len(docs) / took:,.0f} docs/s")


def throughput(ss: ShardSet, n: int, repeats: int = 3) -> None:
    """Best of `repeats` runs each (the machine is shared), baseline and ours alternating."""
    cols = ["text", "n_tokens"]
    best_base = best_ours = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        base = sum(1 for _ in ShardSet.open(ss.root).iter_documents(cols))
        best_base = max(best_base, base / (time.perf_counter() - t0))
        s = ReplaySampler(ShardSet.open(ss.root), TARGET, seed=0, on_short="upsample", columns=cols)
        t0 = time.perf_counter()
        got = tokens = 0
        for doc in s:
            got += 1
            tokens += doc["n_tokens"]
            if got == n:
                break
        took = time.perf_counter() - t0
        if got / took > best_ours:
            best_ours, best_tokens = got / took, tokens / took
    print(f"\n3. throughput (text + n_tokens, one process, best of {repeats}): ReplaySampler {best_ours:,.0f} docs/s, "
          f"{best_tokens:,.0f} tokens/s ({n} docs, tokens mode, random order) vs sequential "
          f"ShardSet.iter_documents {best_base:,.0f} docs/s: ratio {best_ours / best_base:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefix", type=int, default=10_000, help="longest prefix checked (documents)")
    ap.add_argument("--rows-per-shard", type=int, default=500, help="documents per shard of the bench set")
    args = ap.parse_args()
    docs = load_docs()
    with tempfile.TemporaryDirectory() as tmp:
        ss = write_set(tmp, docs, args.rows_per_shard)
        print(f"shard set: {ss.manifest.total.docs} docs, {ss.manifest.total.tokens:,} tokens, {len(ss.shards)} shards; "
              + ", ".join(f"{d}: {t.docs}" for d, t in ss.manifest.by_domain.items()))
        exactness(ss, args.prefix)
        dsir_closeness(ss)
        throughput(ss, args.prefix)


if __name__ == "__main__":
    main()
