"""Where annotation time goes: each transform of the Annotate stage timed over the same real pages.

    python -m bench.annotate_costs [--data DIR] [--repeat N]

Runs language ID (one batch), quality signals, quality score, domain tagging and the token
estimate over every document of DIR's JSONL files (default ../shared/data/dolma-cc), and prints per-document cost, MB/s and
each part's share of the total, plus the ratio against the cheapest baseline measured in the same
run (normalize_for_dedup, the exact-dedup key's cost).
"""
from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

from replaymill.schemas.document import new_document
from replaymill.transforms.domains import tag_domain
from replaymill.transforms.langid import LanguageIdentifier
from replaymill.transforms.normalize import normalize_for_dedup
from replaymill.transforms.quality import compute_signals, quality_score
from replaymill.transforms.tokens import estimate_tokens

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dolma-cc"


def load(data: Path) -> list[dict]:
    docs = []
    for path in sorted(data.glob("*.json*.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                meta = r.get("metadata") or {}
                docs.append(new_document(str(r["id"]), r["text"], "dolma", source_label=r.get("source"),
                                         url=meta.get("warc_url") or meta.get("url"), metadata=json.dumps(meta)))
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder of gzipped JSONL documents (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the data (best pass is reported)")
    args = parser.parse_args()
    docs = load(args.data)
    texts = [d["text"] for d in docs]
    lid = LanguageIdentifier()
    lid.load()
    signals = [compute_signals(t) for t in texts]
    parts = {
        "baseline: normalize_for_dedup": lambda: [normalize_for_dedup(t) for t in texts],
        "language ID (one batch)": lambda: lid.predict_batch(texts),
        "quality signals": lambda: [compute_signals(t) for t in texts],
        "quality score": lambda: [quality_score(s) for s in signals],
        "domain": lambda: [tag_domain(d) for d in docs],
        "token estimate": lambda: [estimate_tokens(t) for t in texts],
    }
    best = {}
    for name, fn in parts.items():
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        best[name] = min(times)
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    base = best["baseline: normalize_for_dedup"]
    total = sum(v for k, v in best.items() if not k.startswith("baseline"))
    print(f"{len(docs)} documents, {mb:.2f} MB\n")
    print("| part | ms/doc | MB/s | share of annotate | x baseline |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds in best.items():
        share = "-" if name.startswith("baseline") else f"{seconds / total:.1%}"
        print(f"| {name} | {1000 * seconds / len(docs):.3f} | {mb / seconds:.1f} | {share} | {seconds / base:.2f} |")
    print(f"| annotate total | {1000 * total / len(docs):.3f} | {mb / total:.1f} | 100% | {total / base:.2f} |")


if __name__ == "__main__":
    main()
