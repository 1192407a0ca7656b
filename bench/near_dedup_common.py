"""Shared by the near-dedup benchmarks: real documents, realistic edits, and a file-based stage runner.

The documents are the real Common Crawl (Dolma) and C4 samples in ../shared/data; the edits mimic
how near-duplicates arise on the web (site chrome added or stripped, paragraphs moved, a few words
changed by templating or re-edits, truncated copies).
"""
from __future__ import annotations

import gzip
import json
import os
import random
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("REPLAYMILL_SHARED_DATA", REPO.parent / "shared" / "data"))

BOILERPLATE = [
    "Home About Us Contact Us Privacy Policy Terms of Service Sitemap",
    "This website uses cookies to improve your experience. We'll assume you're ok with this, "
    "but you can opt-out if you wish. Accept Read More",
    "Share this: Click to share on Facebook (Opens in new window) Click to share on Twitter "
    "(Opens in new window) Click to email this to a friend (Opens in new window)",
    "Copyright 2019 All rights reserved. Powered by WordPress. Theme by ThemeGrill.",
    "Subscribe to our newsletter to get the latest updates and offers delivered to your inbox. "
    "Enter your email address Subscribe",
    "Related Posts You May Also Like Leave a Reply Cancel reply Your email address will not be published.",
]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_real_docs(root: Path = SHARED_DATA) -> list[dict[str, Any]]:
    """Dolma CC (697) and C4 (40) documents as {id, text, host}; host is the URL's site when known."""
    docs = []
    for r in _jsonl(root / "dolma-cc" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"):
        url = (r.get("metadata") or {}).get("warc_url") or ""
        docs.append({"id": r["id"], "text": r["text"], "host": urlparse(url).netloc or None})
    for path in sorted((root / "olmo-c4").glob("*.json*.gz")):
        for i, r in enumerate(_jsonl(path)):
            docs.append({"id": f"{path.name}:{i}", "text": r["text"], "host": urlparse(r.get("url") or "").netloc or None})
    return docs


def _lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.strip()]


def add_boilerplate(text: str, rng: random.Random) -> str:
    head = rng.sample(BOILERPLATE, rng.randint(0, 2))
    tail = rng.sample(BOILERPLATE, rng.randint(1, 2))
    return "\n".join(head + [text] + tail)


def remove_boilerplate(text: str, rng: random.Random) -> str:
    """Strip the site chrome a mirror would drop: short leading/trailing lines (at least one each end)."""
    lines = _lines(text)
    lo, hi = 1, len(lines) - 1
    while lo < hi and len(lines[lo].split()) < 8:
        lo += 1
    while hi > lo and len(lines[hi - 1].split()) < 8:
        hi -= 1
    return "\n".join(lines[lo:hi])


def reorder_paragraphs(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    rng.shuffle(lines)
    return "\n".join(lines)


def change_words(fraction: float) -> Callable[[str, random.Random], str]:
    def edit(text: str, rng: random.Random) -> str:
        words = text.split(" ")
        vocab = [w for w in words if w.isalpha()] or ["the"]
        for i in rng.sample(range(len(words)), max(1, int(len(words) * fraction))):
            words[i] = rng.choice(vocab)
        return " ".join(words)

    return edit


def truncate(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    return " ".join(words[: int(len(words) * rng.uniform(0.6, 0.9))])


EDITS: dict[str, Callable[[str, random.Random], str]] = {
    "boilerplate_added": add_boilerplate,
    "boilerplate_removed": remove_boilerplate,
    "paragraphs_reordered": reorder_paragraphs,
    "words_changed_5pct": change_words(0.05),
    "words_changed_10pct": change_words(0.10),
    "words_changed_20pct": change_words(0.20),
    "truncated_60_90pct": truncate,
}


def eligible(doc: dict[str, Any]) -> bool:
    """Long enough for every edit to leave a meaningful document (5+ lines, 150+ words)."""
    return len(_lines(doc["text"])) >= 5 and len(doc["text"].split()) >= 150


def scaled_corpus(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` documents: the real ones first, then edited copies of them (random edits), for throughput runs."""
    rng = random.Random(seed)
    base = load_real_docs()
    docs = [{"id": d["id"], "text": d["text"]} for d in base][:n]
    kinds = list(EDITS)
    k = 0
    while len(docs) < n:
        src = base[k % len(base)]
        kind = kinds[rng.randrange(len(kinds))]
        docs.append({"id": f"{src['id']}~{kind}~{k}", "text": EDITS[kind](src["text"], rng) or src["text"]})
        k += 1
    return docs


def write_jsonl(docs: list[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"id": d["id"], "text": d["text"]}) + "\n")
    return path


def run_stage(input_path: Path, cfg: Any, out_dir: Path, **options: Any) -> dict[str, str]:
    """Run NearDedup (DirectRunner) from a jsonl file; returns {doc id: id of its component's centre}.

    Kept and rejected documents are written as jsonl files (not collected in driver memory).
    """
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from replaymill.pipeline.near_dedup import NearDedup
    from replaymill.schemas.document import new_document

    def to_doc(line: str) -> dict[str, Any]:
        r = json.loads(line)
        return new_document(r["id"], r["text"], "bench")

    out_dir.mkdir(parents=True, exist_ok=True)
    with beam.Pipeline(options=PipelineOptions(flags=[], **options)) as p:
        kept, rejects = p | "Read" >> beam.io.ReadFromText(str(input_path)) | "Parse" >> beam.Map(to_doc) | NearDedup(cfg)
        kept | "KeptIds" >> beam.Map(lambda d: json.dumps([d["id"], d["id"]])) | "WriteKept" >> beam.io.WriteToText(
            str(out_dir / "kept"), shard_name_template=""
        )
        rejects | "RejIds" >> beam.Map(lambda r: json.dumps([r["id"], r["matched_id"]])) | "WriteRej" >> beam.io.WriteToText(
            str(out_dir / "rejects"), shard_name_template=""
        )
    centre = {}
    for name in ("kept", "rejects"):
        for line in (out_dir / name).read_text().splitlines():
            doc_id, c = json.loads(line)
            centre[doc_id] = c
    return centre
