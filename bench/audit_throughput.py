"""Audit throughput (documents/s) on shard sets and on raw input, and peak memory at two input sizes.

    python bench/audit_throughput.py                        # the figures in the README
    python bench/audit_throughput.py --shard-docs 5000 --raw-docs 1000   # quicker

Inputs are the real documents of ../shared/data (Dolma CC + C4), repeated with a few words changed
per copy (so texts stay distinct) up to the requested sizes: a shard set (domain/lang/quality tags
assigned deterministically: the audit's cost does not depend on tag values) and Dolma-shaped
.jsonl.gz files. Every measurement runs in a fresh child process, so its peak RSS (VmHWM) is
its own; each is run `--repeat` times and the fastest run counts (the machine may be shared). Baselines, measured in the same run:

- shards: a pyarrow.dataset scan of the same columns with group_by aggregations (what a direct
  count costs); the audit's rate is printed as a ratio to it, for the counting columns alone
  (`--no-distinct`), with distinct-count sketches on exact text, and on normalized text;
- raw: the same Beam pipeline without the audit (Read -> Annotate -> Count), so the ratio is what
  the audit's accumulation adds on top of tagging.
Memory is flat when the ratio of peak RSS at the larger input to the smaller one stays near 1.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("REPLAYMILL_SHARED_DATA", REPO.parent / "shared" / "data"))
DOMAINS = ("web", "news", "wiki", "forum", "code")
LANGS = ("en", "en", "en", "de", "fr", "es")


def base_records() -> list[dict]:
    out = []
    for path in [SHARED / "dolma-cc" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz",
                 *sorted((SHARED / "olmo-c4").glob("*.json*.gz"))]:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                if isinstance(r.get("text"), str) and r["text"].strip():
                    out.append({"text": r["text"], "url": r.get("url") or (r.get("metadata") or {}).get("url")})
    return out


def scaled(records: list[dict], n: int, seed: int = 0) -> list[dict]:
    """n records: copies of the base records, each with a few words replaced so texts differ."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        r = records[i % len(records)]
        words = r["text"].split(" ")
        for _ in range(3):
            words[rng.randrange(len(words))] = f"w{rng.randrange(10**9)}"
        out.append({"id": f"doc-{i}", "text": " ".join(words), "url": f"{r['url'] or 'http://x.example/'}?c={i}"})
    return out


def write_shards(root: str, records: list[dict], rows_per_shard: int = 500) -> None:
    """A shard set of `records`; shards are full-size (`rows_per_shard`) at both bench sizes, so peak
    memory compares like with like (it scales with one shard, not with the number of shards)."""
    import pyarrow as pa

    from replaymill.schemas.document import SCHEMA_VERSION, new_document, to_record_batch
    from replaymill.schemas.manifest import Manifest, totals_from_shards
    from replaymill.shards.io import write_manifest, write_shard

    rng = random.Random(1)
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        d = new_document(r["id"], r["text"], "bench", url=r["url"])
        d.update(domain=rng.choice(DOMAINS), lang=rng.choice(LANGS), quality=rng.random(),
                 n_tokens=len(r["text"]) // 4, dup_exact_count=rng.choice((1, 1, 2)))
        groups.setdefault((d["domain"], d["lang"]), []).append(d)
    infos = []
    for (dom, lang), docs in sorted(groups.items()):
        for part, start in enumerate(range(0, len(docs), rows_per_shard)):
            table = pa.Table.from_batches([to_record_batch(docs[start:start + rows_per_shard])])
            infos.append(write_shard(root, f"domain={dom}/lang={lang}/part-{part:05d}.arrow", table, dom, lang))
    by_domain, by_lang, total = totals_from_shards(infos)
    write_manifest(root, Manifest(schema_version=SCHEMA_VERSION, created_at="bench", tool_version="bench",
                                  shards=infos, by_domain=by_domain, by_lang=by_lang, total=total))


def write_raw(directory: str, records: list[dict], per_file: int = 2000) -> str:
    os.makedirs(directory, exist_ok=True)
    for k, start in enumerate(range(0, len(records), per_file)):
        with gzip.open(os.path.join(directory, f"part-{k:04d}.jsonl.gz"), "wt", encoding="utf-8") as f:
            for r in records[start:start + per_file]:
                f.write(json.dumps({"id": r["id"], "text": r["text"], "source": "bench", "metadata": {"url": r["url"]}}) + "\n")
    return os.path.join(directory, "*.jsonl.gz")


# ---------------------------------------------------------------------------- child measurements
def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). Not ru_maxrss: Linux carries that over fork+exec,
    so a child would report its parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(mode: str, path: str) -> dict:
    """One measurement in this (fresh) process: {"docs", "seconds", "peak_rss_mb"}; imports are not timed."""
    import apache_beam as beam
    import pyarrow.dataset as ds

    from replaymill.audit.report import build_report
    from replaymill.audit.shardset import audit_shard_sets
    from replaymill.pipeline.annotate import Annotate
    from replaymill.pipeline.audit import audit_recipe, read_result, run_audit
    from replaymill.pipeline.options import make_options
    from replaymill.pipeline.sources import ReadCorpus

    start = time.perf_counter()
    if mode == "pyarrow":
        table = ds.dataset(path, format="arrow", partitioning="hive").to_table(
            columns=["domain", "lang", "n_chars", "n_tokens", "quality", "dup_exact_count", "dup_near_count"])
        table.group_by(["domain", "lang"]).aggregate([("n_chars", "count"), ("n_chars", "sum"), ("n_tokens", "sum")])
        table.group_by("domain").aggregate([("quality", "mean"), ("dup_exact_count", "sum"), ("dup_near_count", "sum")])
        docs = table.num_rows
    elif mode.startswith("shards"):
        identity = mode.split("-", 1)[1]
        stats, _, funnel = audit_shard_sets([path], distinct=identity != "nodistinct",
                                            text_identity=identity if identity != "nodistinct" else "exact")
        docs = build_report(stats, inputs=[path], input_kind="shards", funnel=funnel)["totals"]["docs"]
    elif mode in ("raw", "raw-baseline"):
        options = make_options(workers=1, running_mode="in_memory")
        out = os.path.join(tempfile.mkdtemp(), "result.json")
        if mode == "raw":
            run_audit([path], out, options)
            docs = read_result(out)[0].docs
        else:
            with beam.Pipeline(options=options) as p:
                docs_pc, _ = p | ReadCorpus([path])
                kept, _ = docs_pc | Annotate(audit_recipe())
                kept | beam.combiners.Count.Globally() | beam.Map(lambda n: open(out, "w").write(str(n)))
            docs = int(open(out).read())
    else:
        raise ValueError(mode)
    seconds = time.perf_counter() - start
    return {"docs": docs, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


REPEAT = 2


def in_process_costs(records: list[dict], batch: int = 256) -> None:
    """ms per document of Annotate's DoFn and of the audit's accumulation on the annotated documents,
    each the fastest of 3 passes: a steadier split of the raw audit's cost than end-to-end runs."""
    from replaymill.pipeline.annotate import AnnotateBatchFn
    from replaymill.pipeline.audit import AccumulateBatch, PartialSpec, audit_recipe
    from replaymill.schemas.document import new_document

    docs = [new_document(r["id"], r["text"], "bench", url=r["url"]) for r in records]
    annotate = AnnotateBatchFn(audit_recipe())
    annotate.setup()

    def run_annotate() -> list[dict]:
        return [d for i in range(0, len(docs), batch) for d in annotate.process(docs[i:i + batch]) if isinstance(d, dict)]

    def best(fn) -> float:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times) / len(docs) * 1e3

    tagged = run_annotate()
    assert len(tagged) == len(docs)
    base_ms = best(run_annotate)
    print(f"{'stage':<34} {'ms/doc':>8} {'x annotate':>10}")
    print(f"{'annotate (langid, signals, domain)':<34} {base_ms:>8.3f} {1.0:>10.2f}")
    for label, spec in (("audit, no distinct counts", PartialSpec(distinct=False)),
                        ("audit, distinct exact texts", PartialSpec(text_identity="exact")),
                        ("audit, distinct normalized texts", PartialSpec(text_identity="normalized"))):
        fn = AccumulateBatch(spec, None)
        ms = best(lambda fn=fn: [next(iter(fn.process(tagged[i:i + batch]))) for i in range(0, len(tagged), batch)])
        print(f"{label:<34} {ms:>8.3f} {ms / base_ms:>10.2f}")


def measure(mode: str, path: str, repeat: int = REPEAT) -> dict:
    """Fastest of `repeat` fresh-process runs (the machine is shared: the minimum is the least disturbed),
    with the largest peak RSS of those runs."""
    runs = []
    for _ in range(max(1, repeat)):
        res = subprocess.run([sys.executable, __file__, "--child", mode, path], capture_output=True, text=True, check=True)
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shard-docs", type=int, default=20000, help="documents of the smaller shard set (larger: 4x)")
    ap.add_argument("--raw-docs", type=int, default=1000, help="documents of the smaller raw input (larger: 4x)")
    ap.add_argument("--repeat", type=int, default=REPEAT, help="runs per measurement; the fastest counts (default 2)")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return

    base = base_records()
    tmp = tempfile.mkdtemp(prefix="audit-bench-")
    print(f"base: {len(base)} real documents (Dolma CC + C4); work dir {tmp}")
    print("\n== shard sets ==")
    print(f"{'docs':>8} {'mode':<18} {'docs/s':>10} {'x pyarrow':>9} {'peak RSS MB':>11}")
    rss: dict[str, list[float]] = {}
    for n in (args.shard_docs, 4 * args.shard_docs):
        root = os.path.join(tmp, f"shards-{n}")
        write_shards(root, scaled(base, n))
        ref = measure("pyarrow", root, args.repeat)
        ref_rate = ref["docs"] / ref["seconds"]
        print(f"{n:>8} {'pyarrow group_by':<18} {ref_rate:>10,.0f} {1.0:>9.2f} {ref['peak_rss_mb']:>11.0f}")
        rss.setdefault("pyarrow group_by", []).append(ref["peak_rss_mb"])
        for mode in ("shards-nodistinct", "shards-exact", "shards-normalized"):
            r = measure(mode, root, args.repeat)
            assert r["docs"] == n == ref["docs"], (r, n)
            rate = r["docs"] / r["seconds"]
            print(f"{n:>8} {mode:<18} {rate:>10,.0f} {rate / ref_rate:>9.2f} {r['peak_rss_mb']:>11.0f}")
            rss.setdefault(mode, []).append(r["peak_rss_mb"])
    print("\n== raw input (Beam DirectRunner, 1 worker, in-memory) ==")
    print(f"{'docs':>8} {'mode':<18} {'docs/s':>10} {'x tag only':>10} {'peak RSS MB':>11}")
    for n in (args.raw_docs, 4 * args.raw_docs):
        pattern = write_raw(os.path.join(tmp, f"raw-{n}"), scaled(base, n, seed=2))
        ref = measure("raw-baseline", pattern, args.repeat)
        ref_rate = ref["docs"] / ref["seconds"]
        print(f"{n:>8} {'read+annotate':<18} {ref_rate:>10,.0f} {1.0:>10.2f} {ref['peak_rss_mb']:>11.0f}")
        rss.setdefault("read+annotate", []).append(ref["peak_rss_mb"])
        r = measure("raw", pattern, args.repeat)
        assert r["docs"] == n == ref["docs"], (r, n)
        rate = r["docs"] / r["seconds"]
        print(f"{n:>8} {'audit (raw)':<18} {rate:>10,.0f} {rate / ref_rate:>10.2f} {r['peak_rss_mb']:>11.0f}")
        rss.setdefault("audit (raw)", []).append(r["peak_rss_mb"])
    print("\n== raw input, per document in one process (no Beam): what the audit adds to tagging ==")
    in_process_costs(scaled(base, args.raw_docs, seed=3))
    print("\n== memory: peak RSS at 4x input / peak RSS at 1x input (1.00 = flat) ==")
    for mode, (small, large) in rss.items():
        print(f"{mode:<18} {large / small:.2f}  ({small:.0f} -> {large:.0f} MB)")


if __name__ == "__main__":
    main()
