"""Throughput of `replaymill build` against a plain single-process loop over the same transforms,
where the loop's time goes, and exact-dedup agreement with Dolma's expected output.

    python bench/build_throughput.py --mb 200            # the figure in the README
    python bench/build_throughput.py --mb 20 --workers 2 # quicker

1. Scale-up: the real documents of ../shared/data (Dolma CC and C4 samples) are repeated with
   perturbations until the corpus reaches `--mb` MB of text: a copy is either exact (so exact dedup
   has work) or has a random share (1-20%) of its words replaced by other words of the corpus (so
   near dedup sees pairs on both sides of its threshold). Written as Dolma-shaped .jsonl.gz files.
2. The full Beam build (`pipeline.build.build`, recipe `--recipe`) on the DirectRunner with
   `--workers` processes, timed end to end (pipeline construction, worker start, shards, manifest).
3. The plain loop: the same readers, annotators, dedup and shard encoder called directly in one
   Python process, stage by stage: its wall time is the baseline of the ratio (Beam's cost or
   gain), its per-stage times say where time goes, and it must agree with the Beam build on kept
   documents and every drop reason. cProfile then runs the loop over the first files for the top
   functions (separately, as profiling slows the loop).
4. Dolma agreement (`--dolma-only` runs just this): on dolma-provided-documents-000.json.gz, our
   ExactDedup keyed by URL against Dolma's `bff_duplicate_url`, and our ExactDedup applied to
   paragraphs (Dolma's definition: newline-separated spans) against `bff_duplicate_paragraph_spans`,
   once with Dolma's exact-bytes identity and once with our normalized-text identity.
"""
from __future__ import annotations

import argparse
import cProfile
import gzip
import io
import json
import os
import pstats
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("REPLAYMILL_SHARED_DATA", REPO.parent / "shared" / "data"))
SOURCES = ["dolma-cc/*.jsonl.gz", "dolma-cc/dolma-provided-documents-000.json.gz", "olmo-c4/*.json*.gz"]
FILE_MB = 8
PROFILE_FILES = 3


# ----------------------------------------------------------------------------- 1. scale-up
def base_documents() -> list[dict]:
    docs = []
    for pattern in SOURCES:
        for path in sorted(SHARED.glob(pattern)):
            with gzip.open(path, "rt", encoding="utf-8") as f:
                for i, line in enumerate(f):
                    rec = json.loads(line)
                    if isinstance(rec.get("text"), str) and rec["text"].strip():
                        url = rec.get("url") or (rec.get("metadata") or {}).get("url")
                        docs.append({"id": rec.get("id") or f"{path.name}:{i}", "text": rec["text"], "url": url})
    return docs


def perturb(text: str, rate: float, vocab: list[str], rng: random.Random) -> str:
    """Replace about `rate` of the words (whitespace kept) with random corpus words."""
    parts = re.split(r"(\s+)", text)
    for i in range(0, len(parts), 2):
        if parts[i] and rng.random() < rate:
            parts[i] = rng.choice(vocab)
    return "".join(parts)


def scale_corpus(dest: Path, target_mb: float, seed: int = 0) -> tuple[list[str], int, int]:
    """Write the scaled corpus; returns (paths, documents, bytes of text)."""
    rng = random.Random(seed)
    base = base_documents()
    vocab = sorted({w for d in base[:200] for w in d["text"].split() if w.isalpha()})
    dest.mkdir(parents=True, exist_ok=True)
    target = int(target_mb * 1024 * 1024)
    paths, n_docs, n_bytes, copy, out_bytes = [], 0, 0, 0, 0
    out = None
    while n_bytes < target:
        for d in base:
            if n_bytes >= target:
                break
            if out is None or out_bytes >= FILE_MB * 1024 * 1024:
                if out:
                    out.close()
                paths.append(str(dest / f"scaled-{len(paths):04d}.jsonl.gz"))
                out, out_bytes = gzip.open(paths[-1], "wt", encoding="utf-8", compresslevel=1), 0
            if copy == 0 or rng.random() < 0.15:
                text = d["text"]
            else:
                text = perturb(d["text"], rng.uniform(0.01, 0.2), vocab, rng)
            rec = {"id": f"{d['id']}#{copy}", "text": text, "source": "bench", "metadata": {"url": d["url"]}}
            line = json.dumps(rec, ensure_ascii=False) + "\n"
            out.write(line)
            size = len(text.encode("utf-8"))
            n_docs, n_bytes, out_bytes = n_docs + 1, n_bytes + size, out_bytes + len(line)
        copy += 1
    out.close()
    return paths, n_docs, n_bytes


# ----------------------------------------------------------------------------- 2. Beam build
def beam_build(paths: list[str], out: Path, recipe, workers: int) -> float:
    import apache_beam as beam

    from replaymill.pipeline.build import build
    from replaymill.pipeline.options import make_options

    start = time.perf_counter()
    with beam.Pipeline(options=make_options(workers=workers)) as p:
        build(p, paths, str(out), recipe)
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- 3. plain loop
def plain_build(paths: list[str], out: Path, recipe) -> tuple[float, dict[str, float], int, Counter]:
    """The same transforms without Beam, stage by stage; returns (seconds, seconds per stage, kept, drops)."""
    from replaymill.pipeline.annotate import MAX_BATCH, AnnotateBatchFn
    from replaymill.pipeline.exact_dedup import dedup_key, doc_rank
    from replaymill.pipeline.near_dedup import node_key
    from replaymill.pipeline.readers import read_item
    from replaymill.pipeline.sink import finalize_row, split_by_size
    from replaymill.pipeline.sources import match_inputs, plan_reads
    from replaymill.schemas.document import to_record_batch
    from replaymill.shards.io import encode_table, write_bytes_atomic
    from replaymill.transforms.components import star_edges, union_find_components
    from replaymill.transforms.lsh import band_hashes, band_key
    from replaymill.transforms.minhash import Permutations, batch_signatures

    import pyarrow as pa
    from apache_beam.pvalue import TaggedOutput

    stages: dict[str, float] = {}
    dropped: Counter = Counter()
    t0 = time.perf_counter()
    docs = []
    for spec in match_inputs(paths):
        for item in plan_reads(spec, 64 << 20):
            for parsed in read_item(item, 32 << 20):
                if parsed.doc is not None:
                    docs.append(parsed.doc)
                else:
                    dropped[parsed.reject["reason"]] += 1
    t1 = time.perf_counter()
    stages["read"] = t1 - t0

    annotate = AnnotateBatchFn(recipe)  # the stage's own DoFn, called directly: same code, no runner
    annotate.setup()
    annotated = []
    for i in range(0, len(docs), MAX_BATCH):
        for r in annotate.process(docs[i:i + MAX_BATCH]):
            if isinstance(r, TaggedOutput):
                dropped[r.value["reason"]] += 1
            else:
                annotated.append(r)
    docs = annotated
    t2 = time.perf_counter()
    stages["annotate"] = t2 - t1

    clusters: dict = {}
    for d in docs:
        k = dedup_key(d)
        best = clusters.get(k)
        if best is None:
            clusters[k] = [d, 1]
        else:
            best[1] += 1
            if doc_rank(d) < doc_rank(best[0]):
                best[0] = d
    dropped["exact_duplicate"] += len(docs) - len(clusters)
    docs = [{**d, "dup_exact_count": n} for d, n in clusters.values()]
    t3 = time.perf_counter()
    stages["exact_dedup"] = t3 - t2

    if recipe.near_dedup.enabled:
        cfg = recipe.near_dedup
        bands, rows = cfg.banding()
        perms = Permutations.create(bands * rows, cfg.seed)
        buckets: dict = defaultdict(list)
        for i in range(0, len(docs), cfg.batch_size):
            batch = docs[i:i + cfg.batch_size]
            sig, has = batch_signatures([d["text"] for d in batch], cfg.ngram, perms)
            keep = [d for d, h in zip(batch, has) if h]
            for d, row in zip(keep, band_hashes(sig[has], bands, rows).tolist()):
                for b, h in enumerate(row):
                    buckets[band_key(b, h)].append(node_key(d))
        edges = [e for members in buckets.values() if len(members) > 1 for e in star_edges(members)]
        roots = union_find_components(edges)
        sizes: dict = defaultdict(int)
        for root in roots.values():
            sizes[root] += 1
        n_before = len(docs)
        docs = [{**d, "dup_near_count": sizes.get(node_key(d), 1)} for d in docs if roots.get(node_key(d), node_key(d)) == node_key(d)]
        dropped["near_duplicate"] += n_before - len(docs)
    t4 = time.perf_counter()
    stages["near_dedup"] = t4 - t3

    parts: dict = defaultdict(list)
    for d in docs:
        row = finalize_row(d)
        parts[(row["domain"], row["lang"])].append(row)
    for (domain, lang), rows_ in parts.items():
        rows_.sort(key=lambda r: r["id"])
        for j, chunk in enumerate(split_by_size(rows_, recipe.output.max_shard_bytes)):
            path = out / f"domain={domain}" / f"lang={lang}" / f"part-{j:05d}.arrow"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(str(path), encode_table(pa.Table.from_batches([to_record_batch(chunk)])))
    t5 = time.perf_counter()
    stages["write"] = t5 - t4
    return t5 - t0, stages, len(docs), +dropped  # unary + drops zero counts, as the Beam funnel has none


# ----------------------------------------------------------------------------- 4. Dolma agreement
def _run_collect(docs: list[dict], key) -> list[dict]:
    """Rejects of ExactDedup(key) over `docs`, in one in-memory pipeline."""
    import apache_beam as beam

    from replaymill.pipeline.exact_dedup import ExactDedup
    from replaymill.pipeline.options import make_options

    found: list[dict] = []
    tmp = Path(tempfile.mkdtemp())
    with beam.Pipeline(options=make_options(running_mode="in_memory", workers=1)) as p:
        _, rejects = p | beam.Create(docs, reshuffle=False) | ExactDedup(key=key)
        rejects | beam.Map(json.dumps) | beam.io.WriteToText(str(tmp / "r"))
    for f in tmp.glob("r-*"):
        found.extend(json.loads(l) for l in f.open())
    shutil.rmtree(tmp)
    return found


def paragraphs(doc_id: str, text: str) -> list[dict]:
    """Dolma's paragraphs: non-blank newline-separated lines, span [start, start + len + 1) (Dolma counts
    a newline after every paragraph, the last one included)."""
    out = []
    for m in re.finditer(r"[^\n]+", text):
        if m.group().strip():
            out.append({"id": f"{doc_id}\x00{m.start():09d}", "text": m.group(), "span": [m.start(), m.end() + 1]})
    return out


def dolma_agreement() -> dict:
    from replaymill.transforms.normalize import normalize_for_dedup, text_hash

    with gzip.open(SHARED / "dolma-cc" / "dolma-provided-documents-000.json.gz", "rt") as f:
        recs = [json.loads(l) for l in f]
    with gzip.open(SHARED / "dolma-cc" / "expected" / "dedupe-by-url.json.gz", "rt") as f:
        url_expected = {r["id"] for r in map(json.loads, f) if r["attributes"].get("bff_duplicate_url")}
    with gzip.open(SHARED / "dolma-cc" / "expected" / "dedupe-paragraphs.json.gz", "rt") as f:
        para_expected = {(r["id"], s[0], s[1]) for r in map(json.loads, f) for s in r["attributes"]["bff_duplicate_paragraph_spans"]}

    docs = [{"id": r["id"], "text": r["text"], "source": "dolma", "url": r["metadata"]["url"]} for r in recs]
    url_ours = {r["id"] for r in _run_collect(docs, key=lambda d: d["url"])}
    text_ours = {r["id"] for r in _run_collect(docs, key=lambda d: text_hash(normalize_for_dedup(d["text"])))}

    paras = [dict(p, source="dolma", url=None) for r in recs for p in paragraphs(r["id"], r["text"])]
    span_of = {p["id"]: (p["id"].split("\x00")[0], *p["span"]) for p in paras}
    raw = {span_of[r["id"]] for r in _run_collect(paras, key=lambda d: d["text"])}
    norm = {span_of[r["id"]] for r in _run_collect(paras, key=lambda d: text_hash(normalize_for_dedup(d["text"])))}
    return {
        "documents": len(docs),
        "url": {"dolma": sorted(url_expected), "ours": sorted(url_ours), "identical": url_expected == url_ours},
        "document_text_duplicates_ours": sorted(text_ours),
        "paragraphs": len(paras),
        "paragraph_raw": _agreement(para_expected, raw),
        "paragraph_normalized": _agreement(para_expected, norm),
    }


def _agreement(expected: set, ours: set) -> dict:
    both = expected & ours
    return {"dolma": len(expected), "ours": len(ours), "both": len(both),
            "only_dolma": sorted(expected - ours)[:5], "only_ours": sorted(ours - expected)[:5],
            "identical": expected == ours}


def print_agreement(a: dict) -> None:
    print(f"\nDolma agreement on dolma-provided-documents-000.json.gz ({a['documents']} documents)")
    print(f"  URL dedup: Dolma flags {a['url']['dolma']}, ours {a['url']['ours']}: "
          f"{'identical' if a['url']['identical'] else 'DIFFERENT'}")
    print(f"  document-level normalized-text duplicates (ours; Dolma has no such pass): {len(a['document_text_duplicates_ours'])}")
    for name in ("paragraph_raw", "paragraph_normalized"):
        p = a[name]
        print(f"  {name} ({a['paragraphs']} paragraphs): Dolma {p['dolma']} spans, ours {p['ours']}, both {p['both']}"
              f" -> {'identical' if p['identical'] else 'differs'}; only Dolma {p['only_dolma'][:2]}, only ours {p['only_ours'][:2]}")


# ----------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=200.0, help="size of the scaled corpus in MB of text")
    ap.add_argument("--workers", type=int, default=0, help="Beam worker processes (0 = all cores)")
    ap.add_argument("--recipe", default="fineweb-en")
    ap.add_argument("--work", default=None, help="scratch directory (default: a temp dir, removed)")
    ap.add_argument("--dolma-only", action="store_true")
    args = ap.parse_args()

    print_agreement(dolma_agreement())
    if args.dolma_only:
        return 0

    from replaymill.schemas.recipe import resolve_recipe
    from replaymill.shards.io import read_manifest

    recipe = resolve_recipe(args.recipe)
    work = Path(args.work or tempfile.mkdtemp(prefix="replaymill-bench-"))
    try:
        t = time.perf_counter()
        paths, n_docs, n_bytes = scale_corpus(work / "input", args.mb)
        mb = n_bytes / 1024 / 1024
        print(f"\nscaled corpus: {n_docs:,} documents, {mb:.1f} MB of text in {len(paths)} files "
              f"({time.perf_counter() - t:.0f} s to write)")

        beam_s = beam_build(paths, work / "beam", recipe, args.workers)
        m = read_manifest(str(work / "beam"))
        print(f"Beam build ({args.recipe}, workers={args.workers or os.cpu_count()}): {beam_s:.1f} s, "
              f"{n_docs / beam_s:,.0f} docs/s, {mb / beam_s:.2f} MB/s; kept {m.funnel.kept:,}, dropped {m.funnel.dropped}")

        plain_s, stages, kept, dropped = plain_build(paths, work / "plain", recipe)
        print(f"plain loop (1 process): {plain_s:.1f} s, {n_docs / plain_s:,.0f} docs/s, "
              f"{mb / plain_s:.2f} MB/s; kept {kept:,}")
        same = kept == m.funnel.kept and dict(dropped) == m.funnel.dropped
        print(f"plain loop and Beam build agree on kept and every drop reason: {same}"
              + ("" if same else f"; plain dropped {dict(sorted(dropped.items()))}"))
        print(f"ratio Beam / plain throughput: {plain_s / beam_s:.2f}x  (over 1 means Beam is faster)")
        print("where the plain loop's time goes:")
        for name, s in sorted(stages.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<12} {s:7.1f} s  {100 * s / plain_s:5.1f}%")
        # Function-level profile on the first files only: cProfile slows the loop, so it is kept
        # out of the timed run above.
        prof = cProfile.Profile()
        prof.enable()
        plain_build(paths[:PROFILE_FILES], work / "profiled", recipe)
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(12)
        print(f"top functions by own time (cProfile, plain loop over the first {PROFILE_FILES} files):")
        print("\n".join(l for l in buf.getvalue().splitlines() if l.strip())[-1800:])
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
