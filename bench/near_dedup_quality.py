"""Precision and recall of NearDedup on a labelled near-duplicate set built from real web documents.

Run from the repository root:  python -m bench.near_dedup_quality

Positives: each eligible real document (Dolma CC, C4) gets ONE edited copy, the edit type assigned
round-robin, so a copy can only be found through its own pair (no transitive help from sibling
copies). Negatives, true non-duplicates on the same topics: (a) pairs of different documents from
the same site, (b) for every document its most similar other document by word-set overlap (same
topic, shared vocabulary), both restricted to pairs whose exact 5-gram Jaccard is below 0.3.
Everything goes through the real Beam stage at once; a pair is "predicted duplicate" when both
documents end in the same component. Printed: recall per edit type (with the mean exact 5-gram
Jaccard of that type, which explains it), false positives per negative type, and overall precision.
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.near_dedup_common import EDITS, eligible, load_real_docs, run_stage, write_jsonl
from replaymill.schemas.dedup import NearDedupConfig
from replaymill.transforms.components import jaccard
from replaymill.transforms.minhash import batch_shingles


def build_labelled_set(seed: int = 0):
    rng = random.Random(seed)
    real = load_real_docs()
    shingles = batch_shingles([d["text"] for d in real], 5)
    sets = [shingles.unique_of(i) for i in range(len(real))]
    words = [set(d["text"].lower().split()) for d in real]

    # Negatives first, among the real documents only.
    negatives: dict[str, set[tuple[int, int]]] = {"same_site": set(), "same_topic": set()}
    by_host = defaultdict(list)
    for i, d in enumerate(real):
        if d["host"]:
            by_host[d["host"]].append(i)
    for members in by_host.values():
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                negatives["same_site"].add((members[x], members[y]))
    for i in range(len(real)):
        if len(words[i]) < 50:
            continue
        best, best_j = None, 0.0
        for k in range(len(real)):
            if k != i and len(words[k]) >= 50:
                j = len(words[i] & words[k]) / len(words[i] | words[k])
                if j > best_j:
                    best, best_j = k, j
        if best is not None:
            negatives["same_topic"].add((min(i, best), max(i, best)))
    for kind in negatives:
        negatives[kind] = {(a, b) for a, b in negatives[kind] if jaccard(sets[a], sets[b]) < 0.3}

    # Positives: one edited copy per eligible document, edit types round-robin.
    kinds = list(EDITS)
    docs = [{"id": d["id"], "text": d["text"]} for d in real]
    positives: list[tuple[str, int, int]] = []
    for n, i in enumerate(i for i, d in enumerate(real) if eligible(d)):
        kind = kinds[n % len(kinds)]
        docs.append({"id": f"{real[i]['id']}~{kind}", "text": EDITS[kind](real[i]["text"], rng)})
        positives.append((kind, i, len(docs) - 1))
    return docs, positives, negatives


def evaluate(docs, positives, negatives, cfg: NearDedupConfig, workdir: Path) -> dict:
    inp = write_jsonl(docs, workdir / "input.jsonl")
    t0 = time.perf_counter()
    centre = run_stage(inp, cfg, workdir / "out")
    seconds = time.perf_counter() - t0
    same = lambda a, b: centre[docs[a]["id"]] == centre[docs[b]["id"]]  # noqa: E731
    recall = {}
    for kind in EDITS:
        pairs = [(a, b) for k, a, b in positives if k == kind]
        recall[kind] = (sum(same(a, b) for a, b in pairs), len(pairs))
    fps = {kind: (sum(same(a, b) for a, b in pairs), len(pairs)) for kind, pairs in negatives.items()}
    tp = sum(v[0] for v in recall.values())
    fp = sum(v[0] for v in fps.values())
    return {"recall": recall, "fp": fps, "tp": tp, "fp_total": fp, "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    docs, positives, negatives = build_labelled_set(args.seed)
    sh = batch_shingles([d["text"] for d in docs], 5)
    mean_j = {
        kind: float(np.mean([jaccard(sh.unique_of(a), sh.unique_of(b)) for k, a, b in positives if k == kind]))
        for kind in EDITS
    }
    settings = {
        "default": NearDedupConfig(enabled=True),
        "default + verify 0.7": NearDedupConfig(enabled=True, verify_jaccard=0.7),
        "threshold 0.5": NearDedupConfig(enabled=True, threshold=0.5, num_perm=128),
        "threshold 0.5 + verify 0.5": NearDedupConfig(enabled=True, threshold=0.5, num_perm=128, verify_jaccard=0.5),
    }
    print(f"labelled set: {len(docs)} documents, {len(positives)} positive pairs, "
          + ", ".join(f"{len(v)} {k} negative pairs" for k, v in negatives.items()))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n, (name, cfg) in enumerate(settings.items()):
            results[name] = evaluate(docs, positives, negatives, cfg, Path(tmp) / str(n))
    names = list(settings)
    print("\nrecall by edit type (caught / pairs), mean exact 5-gram Jaccard of the pairs")
    print("| edit | J | " + " | ".join(f"{n} ({'x'.join(map(str, settings[n].banding()))})" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for kind in EDITS:
        cells = [f"{r['recall'][kind][0] / r['recall'][kind][1]:.2f} ({r['recall'][kind][0]}/{r['recall'][kind][1]})"
                 for r in (results[n] for n in names)]
        print(f"| {kind} | {mean_j[kind]:.2f} | " + " | ".join(cells) + " |")
    for kind in negatives:
        cells = [f"{results[n]['fp'][kind][0]} FP / {results[n]['fp'][kind][1]}" for n in names]
        print(f"| non-dup: {kind} | - | " + " | ".join(cells) + " |")
    overall_r = [results[n]["tp"] / len(positives) for n in names]
    overall_p = [results[n]["tp"] / max(1, results[n]["tp"] + results[n]["fp_total"]) for n in names]
    print("| **overall recall** | | " + " | ".join(f"{x:.3f}" for x in overall_r) + " |")
    print("| **precision** | | " + " | ".join(f"{x:.3f}" for x in overall_p) + " |")
    print("| stage seconds (DirectRunner) | | " + " | ".join(f"{results[n]['seconds']:.1f}" for n in names) + " |")


if __name__ == "__main__":
    main()
