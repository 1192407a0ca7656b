"""Decontamination quality on a labelled set made from real text, and throughput against 10k
evaluation documents, in one run.

    python bench/decontam_quality.py [--books FILE ...] [--web FILE ...] [--evals 200] [--seed 0]
                                     [--throughput-evals 10000] [--throughput-docs 4000] [--beam]

Labelled set (every path a flag; defaults: the shared prose books and Dolma CC / C4 pages):
- evaluation documents: `--evals` chunks of 600-900 words cut from the books at random places;
- positives: for each evaluation document, each passage length L (13 ... 500 words) and each edit
  rate (0, 2%, 5% of words replaced, deleted or duplicated), a contiguous L-word passage of it,
  edited, inserted at a random word boundary into a host text that does not contain it (another
  chunk of the same book, so the same topic and style, or a web page): a longer document;
- negatives: other chunks of the same books (independent texts on the same topics) and web pages,
  none of them a host.
A positive counts as found when the index reports its own evaluation document with at least
`min_ngrams` shared 13-grams; a negative is a false positive when any evaluation document does.
Chunks overlapping an evaluation chunk's span are never used as hosts or negatives. Books repeat
themselves (a messenger reciting a speech, a tale's refrain), so a negative is checked for
independence by a method that shares nothing with the index: no run of `--verify-words` (20)
identical lowercase whitespace tokens with any evaluation document, found with Python tuples. Both
counts are printed: false positives on every negative and on the verified-independent ones.

Throughput: `--throughput-evals` evaluation documents (book chunks of 100-400 words and groups of
lingua sentences, `--sentences` dir) indexed once; `--throughput-docs` web pages (perturbed copies
of the real ones) matched in batches of 256, against hashing the same pages' n-grams alone (the
floor: what any n-gram method pays) in the same run. `--beam` also times `replaymill build` of those
pages with and without the decontaminate stage (DirectRunner, all cores).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from replaymill.schemas.decontam import DecontaminateConfig
from replaymill.transforms.minhash import batch_shingles
from replaymill.transforms.ngram_overlap import OverlapIndex

SHARED = Path(os.environ.get("REPLAYMILL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
BOOKS = ["prose/en-tinyshakespeare.txt", "prose/de-grimm.txt", "prose/de-verne-20000.txt", "prose/fr-Verne-2ans.txt"]
WEB = ["dolma-cc/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz", "olmo-c4/*.json.gz"]
LENGTHS = (13, 20, 30, 50, 100, 200, 500)
EDIT_RATES = (0.0, 0.02, 0.05)
MIN_NGRAMS = (1, 2, 3, 5, 8, 10, 15)
DEFAULTS = DecontaminateConfig()  # the recipe's defaults are what this bench measures
N = DEFAULTS.n


def read_web(patterns: list[str]) -> list[str]:
    texts = []
    for pattern in patterns:
        paths = sorted(SHARED.glob(pattern)) if not Path(pattern).is_absolute() else sorted(Path("/").glob(pattern[1:]))
        for path in paths:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                texts += [json.loads(line).get("text") or "" for line in f]
    return [t for t in texts if len(t.split()) >= 100]


def book_words(paths: list[str]) -> list[list[str]]:
    out = []
    for p in paths:
        path = Path(p) if Path(p).is_absolute() else SHARED / p
        out.append(path.read_text(encoding="utf-8-sig").split())
    return out


def edit(words: list[str], rate: float, vocab: list[str], rng: random.Random) -> list[str]:
    """Light word edits: each word with probability `rate` is replaced, deleted or duplicated."""
    out = []
    for w in words:
        if rng.random() >= rate:
            out.append(w)
            continue
        kind = rng.randrange(3)
        if kind == 0:
            out.append(rng.choice(vocab))
        elif kind == 2:
            out += [w, w]
    return out


def labelled_set(books: list[list[str]], web: list[str], n_evals: int, rng: random.Random):
    """(eval texts, positives [(text, eval index, length, rate)], negatives [(text, kind)])."""
    per_book = max(1, n_evals // len(books))
    evals = []
    chunks_free: list[list[str]] = []  # same-book chunks away from every evaluation chunk
    vocab = sorted({w for b in books for w in b[:20000] if w.isalpha()})
    for words in books:
        size = len(words)
        starts = sorted(rng.sample(range(0, size - 1000, 1000), min(per_book, (size - 1000) // 1000)))
        taken = []
        for s in starts:
            length = rng.randrange(600, 900)
            evals.append(" ".join(words[s:s + length]))
            taken.append((s, s + length))
        # independent chunks of the same book: 400-800 words, not overlapping any evaluation chunk
        pos = 0
        while pos + 800 < size:
            length = rng.randrange(400, 800)
            if not any(lo < pos + length and pos < hi for lo, hi in taken):
                chunks_free.append(words[pos:pos + length])
            pos += length + rng.randrange(50, 400)
    rng.shuffle(chunks_free)
    rng.shuffle(web)
    half = len(chunks_free) // 2
    host_pool = [" ".join(c) for c in chunks_free[:half]] + web[: len(web) // 2]
    negatives = [(" ".join(c), "same-book chunk") for c in chunks_free[half:]] + \
                [(t, "web page") for t in web[len(web) // 2:]]
    positives = []
    for e, text in enumerate(evals):
        words = text.split()
        for length in LENGTHS:
            if length > len(words):
                continue
            for rate in EDIT_RATES:
                start = rng.randrange(0, len(words) - length + 1)
                passage = edit(words[start:start + length], rate, vocab, rng)
                host = rng.choice(host_pool).split()
                cut = rng.randrange(0, len(host) + 1)
                positives.append((" ".join(host[:cut] + passage + host[cut:]), e, length, rate))
    return evals, positives, negatives


def verified_independent(evals: list[str], texts: list[str], run: int) -> list[bool]:
    """Per text: shares no run of `run` identical lowercase whitespace tokens with any evaluation text."""
    seen = set()
    for e in evals:
        w = e.lower().split()
        seen.update(tuple(w[i:i + run]) for i in range(len(w) - run + 1))
    out = []
    for t in texts:
        w = t.lower().split()
        out.append(not any(tuple(w[i:i + run]) in seen for i in range(len(w) - run + 1)))
    return out


def quality(args: argparse.Namespace, rng: random.Random) -> None:
    books = book_words(args.books)
    web = read_web(args.web)
    evals, positives, negatives = labelled_set(books, web, args.evals, rng)
    print(f"labelled set: {len(evals)} evaluation documents (600-900 words, {len(books)} books), "
          f"{len(positives)} documents with a planted passage, {len(negatives)} independent documents "
          f"({sum(k == 'same-book chunk' for _, k in negatives)} same-book chunks, "
          f"{sum(k == 'web page' for _, k in negatives)} web pages)")
    index = OverlapIndex.build(evals, N)
    found_pos = index.match([t for t, *_ in positives])
    found_neg = index.match([t for t, _ in negatives])
    own = [max((o.ngrams for o in f if o.eval_index == e), default=0) for f, (_, e, _, _) in zip(found_pos, positives)]
    worst_neg = [max((o.ngrams for o in f), default=0) for f in found_neg]

    print(f"\nrecall by passage length x edit rate at the default min_ngrams={args.min_ngrams} (word {N}-grams)")
    print("| passage words | " + " | ".join(f"{int(r * 100)}% edits" for r in EDIT_RATES) + " |")
    print("|---:|" + "---:|" * len(EDIT_RATES))
    for length in LENGTHS:
        cells = []
        for rate in EDIT_RATES:
            hits = [o >= args.min_ngrams for o, (_, _, L, r) in zip(own, positives) if L == length and r == rate]
            cells.append(f"{sum(hits) / len(hits):.3f} ({len(hits)})" if hits else "-")
        print(f"| {length} | " + " | ".join(cells) + " |")

    independent = verified_independent(evals, [t for t, _ in negatives], args.verify_words)
    print(f"\nnegatives verified independent (no run of {args.verify_words} identical words with any evaluation "
          f"document): {sum(independent)} of {len(negatives)}; the others repeat an evaluation passage verbatim")
    print("\nby min_ngrams: recall (all edit rates) and false positives (FP)")
    print("| min_ngrams | recall >= 50 words | recall 13-49 words | FP verified independent | FP all negatives |")
    print("|---:|---:|---:|---:|---:|")
    for k in MIN_NGRAMS:
        long_hits = [o >= k for o, (_, _, L, _) in zip(own, positives) if L >= 50]
        short_hits = [o >= k for o, (_, _, L, _) in zip(own, positives) if L < 50]
        fp_ok = sum(w >= k for w, ok in zip(worst_neg, independent) if ok)
        print(f"| {k} | {np.mean(long_hits):.4f} | {np.mean(short_hits):.4f} | {fp_ok} | {sum(w >= k for w in worst_neg)} |")
    top = sorted(((w, ok, kind, t) for w, ok, (t, kind) in zip(worst_neg, independent, negatives) if w), reverse=True)[:3]
    for w, ok, kind, t in top:
        print(f"  most shared n-grams in a negative: {w} ({kind}, {'independent' if ok else 'repeats a passage'}): "
              f"{' '.join(t.split()[:10])} ...")


def throughput(args: argparse.Namespace, rng: random.Random) -> None:
    books = book_words(args.books)
    evals = []
    for words in books:
        pos = 0
        while pos + 400 < len(words) and len(evals) < args.throughput_evals // 2:
            length = rng.randrange(100, 400)
            evals.append(" ".join(words[pos:pos + length]))
            pos += length
    sentence_files = sorted(Path(args.sentences).glob("*.txt"))
    sentences = [line for f in sentence_files for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    for lo in range(0, len(sentences), 8):
        if len(evals) >= args.throughput_evals:
            break
        evals.append(" ".join(sentences[lo:lo + 8]))
    web = read_web(args.web)
    vocab = sorted({w for t in web[:200] for w in t.split() if w.isalpha()})
    pages = [" ".join(edit(rng.choice(web).split(), 0.05, vocab, rng)) for _ in range(args.throughput_docs)]
    words = sum(len(p.split()) for p in pages)

    t0 = time.perf_counter()
    index = OverlapIndex.build(evals, N)
    build_s = time.perf_counter() - t0
    print(f"\nthroughput: {len(evals):,} evaluation documents ({sum(len(e.split()) for e in evals):,} words) "
          f"indexed in {build_s:.1f} s: {index.keys.shape[0]:,} distinct {N}-grams, {index.nbytes / 2**20:.1f} MB")
    batches = [pages[lo:lo + 256] for lo in range(0, len(pages), 256)]
    t0 = time.perf_counter()
    for b in batches:
        batch_shingles(b, N)
    hash_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    flagged = sum(any(o.ngrams >= args.min_ngrams for o in f) for b in batches for f in index.match(b))
    match_s = time.perf_counter() - t0
    print(f"{len(pages):,} web pages ({words / len(pages):,.0f} words each), batches of 256, one process:")
    print(f"  hashing their {N}-grams only (floor): {len(pages) / hash_s:,.0f} docs/s")
    print(f"  matching against the index:          {len(pages) / match_s:,.0f} docs/s "
          f"({hash_s / match_s:.2f}x of the floor); {flagged} pages flagged")
    print(f"  peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    if args.beam:
        beam_throughput(pages, evals)


def beam_throughput(pages: list[str], evals: list[str]) -> None:
    """`replaymill build` (minimal recipe) of the pages with and without decontaminate, same run."""
    import shutil

    from replaymill.pipeline.jobs import build

    work = Path(tempfile.mkdtemp(prefix="replaymill-decontam-bench-"))
    try:
        with gzip.open(work / "pages.jsonl.gz", "wt", encoding="utf-8") as f:
            for i, t in enumerate(pages):
                f.write(json.dumps({"id": f"p{i}", "text": t, "source": "bench"}) + "\n")
        with open(work / "evals.jsonl", "w", encoding="utf-8") as f:
            for i, t in enumerate(evals):
                f.write(json.dumps({"id": f"e{i}", "text": t}) + "\n")
        times = {}
        for name, deco in (("without", None), ("with", [str(work / "evals.jsonl")]),
                           ("without again", None)):
            t0 = time.perf_counter()
            build([str(work / "pages.jsonl.gz")], str(work / name.replace(" ", "-")), "minimal", decontaminate=deco)
            times[name] = time.perf_counter() - t0
        base = min(times["without"], times["without again"])
        print(f"  Beam build (minimal recipe, all cores) of the {len(pages):,} pages: without decontaminate "
              f"{len(pages) / base:,.0f} docs/s, with {len(pages) / times['with']:,.0f} docs/s "
              f"(ratio {base / times['with']:.2f}; index built inside the pipeline)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--books", nargs="+", default=BOOKS, help="plain-text books (relative to shared data or absolute)")
    ap.add_argument("--web", nargs="+", default=WEB, help="JSONL.gz web pages with a text field (globs)")
    ap.add_argument("--sentences", default=str(SHARED / "lingua-sentences"), help="dir of one-sentence-a-line files")
    ap.add_argument("--evals", type=int, default=200, help="evaluation documents in the labelled set")
    ap.add_argument("--min-ngrams", type=int, default=DEFAULTS.min_ngrams,
                    help="the setting whose recall table is printed (default: the recipe's)")
    ap.add_argument("--verify-words", type=int, default=20, help="identical-word run that makes a negative a copy")
    ap.add_argument("--throughput-evals", type=int, default=10_000)
    ap.add_argument("--throughput-docs", type=int, default=4000)
    ap.add_argument("--beam", action="store_true", help="also time the Beam build with and without the stage")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores")
    quality(args, random.Random(args.seed))
    throughput(args, random.Random(args.seed + 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
