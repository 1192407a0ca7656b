"""Near-duplicate overlap between a corpus and evaluation files (benchmark contamination).

Why MinHash LSH with the dedup code: "is this benchmark item in the corpus?" is the same question
as "is this document a near duplicate of that one?", so it uses the same normalization, word
n-gram shingles, permutations and banding (`transforms.minhash`, `transforms.lsh`) as near dedup.
The evaluation set is small, so it becomes an in-memory band index (a Beam side input); the corpus
streams past it in batches and only band collisions are compared, so the cost is linear in the
corpus and memory is bounded by the evaluation set plus `max_matches` listed overlaps.
"""
from __future__ import annotations

import heapq
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from apache_beam.io.filesystems import FileSystems

from replaymill.schemas.dedup import NearDedupConfig
from replaymill.transforms.lsh import band_hashes, threshold_of
from replaymill.transforms.minhash import Permutations, batch_signatures

DEFAULT_MIN_JACCARD = 0.5
MAX_MATCHES = 1000
SAMPLE_CHARS = 200
EVAL_TEXT_KEYS = ("text", "question", "prompt", "input", "context", "passage", "sentence", "query")
"""JSON fields whose string values form an evaluation item's text, in this order; a record with
none of them contributes all its top-level string values (so any benchmark JSONL works)."""


@dataclass(frozen=True)
class EvalDoc:
    id: str
    file: str
    text: str


def _record_text(record: Any) -> str | None:
    """The text of one evaluation record (see EVAL_TEXT_KEYS); None when it has no string content."""
    if isinstance(record, str):
        return record
    if not isinstance(record, dict):
        return None
    parts = [record[k] for k in EVAL_TEXT_KEYS if isinstance(record.get(k), str)]
    if not parts:
        parts = [v for v in record.values() if isinstance(v, str)]
    for key in ("choices", "options", "endings"):
        if isinstance(record.get(key), list):
            parts += [c for c in record[key] if isinstance(c, str)]
    text = "\n".join(p for p in parts if p.strip())
    return text or None


def read_eval_file(path: str) -> list[EvalDoc]:
    """Evaluation items of one file: JSON Lines (`.jsonl`/`.json`, optionally .gz/.zst/.bz2), a JSON
    array, or plain text with one item per blank-line-separated paragraph. Compression is detected
    from the name; any Beam filesystem works. Unparsable lines raise a ValueError naming file and line."""
    with FileSystems.open(path) as f:
        raw = f.read().decode("utf-8", errors="replace")
    name = path.rsplit("/", 1)[-1]
    stem = name
    for ext in (".gz", ".zst", ".bz2", ".xz"):
        stem = stem.removesuffix(ext)
    docs: list[EvalDoc] = []
    if stem.endswith((".jsonl", ".json", ".ndjson")):
        stripped = raw.lstrip()
        if stripped.startswith("["):
            records = list(enumerate(json.loads(stripped), 1))
        else:
            records = []
            for lineno, line in enumerate(raw.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    records.append((lineno, json.loads(line)))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{lineno}: not JSON ({e.msg})") from None
        for n, rec in records:
            text = _record_text(rec)
            if text:
                rid = rec.get("id") if isinstance(rec, dict) else None
                docs.append(EvalDoc(str(rid) if rid is not None else f"{name}:{n}", name, text))
    else:
        for n, para in enumerate((p.strip() for p in raw.split("\n\n")), 1):
            if para:
                docs.append(EvalDoc(f"{name}:{n}", name, para))
    return docs


@dataclass
class EvalIndex:
    """MinHash signatures of the evaluation items and their LSH band buckets."""

    config: NearDedupConfig
    docs: list[EvalDoc]
    perms: Permutations
    signatures: np.ndarray                                  # (n_eval, bands*rows) uint64
    buckets: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    min_jaccard: float = DEFAULT_MIN_JACCARD
    skipped: int = 0                                        # items too short to have one shingle

    @classmethod
    def build(cls, docs: Sequence[EvalDoc], config: NearDedupConfig | None = None,
              min_jaccard: float = DEFAULT_MIN_JACCARD) -> "EvalIndex":
        config = config or NearDedupConfig()
        bands, rows = config.banding()
        perms = Permutations.create(bands * rows, config.seed)
        sigs, has = batch_signatures([d.text for d in docs], config.ngram, perms) if docs else (
            np.zeros((0, bands * rows), dtype=np.uint64), np.zeros(0, dtype=bool))
        index = cls(config=config, docs=list(docs), perms=perms, signatures=sigs, min_jaccard=min_jaccard,
                    skipped=int((~has).sum()))
        bh = band_hashes(sigs, bands, rows)
        for i in np.flatnonzero(has):
            for b in range(bands):
                index.buckets.setdefault((b, int(bh[i, b])), []).append(int(i))
        return index

    def query(self, ids: Sequence[str], texts: Sequence[str]) -> list[dict[str, Any]]:
        """Matches of a batch of corpus documents: one dict per (corpus doc, eval item) pair whose
        bands collide and whose estimated Jaccard reaches `min_jaccard`."""
        if not self.buckets or not texts:
            return []
        bands, rows = self.config.banding()
        sigs, has = batch_signatures(list(texts), self.config.ngram, self.perms)
        bh = band_hashes(sigs, bands, rows)
        out = []
        for i in np.flatnonzero(has):
            cands: set[int] = set()
            for b in range(bands):
                hit = self.buckets.get((b, int(bh[i, b])))
                if hit:
                    cands.update(hit)
            if not cands:
                continue
            cand = np.fromiter(sorted(cands), dtype=np.int64)
            jac = (self.signatures[cand] == sigs[i][None, :]).mean(axis=1)
            for j, s in zip(cand.tolist(), jac.tolist()):
                if s >= self.min_jaccard:
                    ev = self.docs[j]
                    out.append({"corpus_id": str(ids[i]), "eval_id": ev.id, "eval_file": ev.file, "eval_index": j,
                                "jaccard": round(float(s), 4), "sample": texts[i][:SAMPLE_CHARS]})
        return out


class ContaminationStats:
    """Mergeable tally of matches: eval items hit, corpus documents hit, the best `max_matches` pairs."""

    def __init__(self, max_matches: int = MAX_MATCHES):
        self.max_matches = max_matches
        self.eval_hit: set[int] = set()
        self.corpus_docs_matched = 0
        self.pairs = 0
        self._top: list[tuple[float, str, str, dict[str, Any]]] = []  # min-heap on jaccard

    def add(self, matches: list[dict[str, Any]]) -> "ContaminationStats":
        """Tally the matches of one batch of corpus documents (as `EvalIndex.query` returns them)."""
        self.corpus_docs_matched += len({m["corpus_id"] for m in matches})
        self.pairs += len(matches)
        for m in matches:
            self.eval_hit.add(m["eval_index"])
            self._keep(m)
        return self

    def _keep(self, m: dict[str, Any]) -> None:
        """Keep `m` among the `max_matches` highest-Jaccard pairs (ties broken by ids: deterministic)."""
        item = (m["jaccard"], m["corpus_id"], m["eval_id"], m)
        if len(self._top) < self.max_matches:
            heapq.heappush(self._top, item)
        elif item[:3] > self._top[0][:3]:
            heapq.heapreplace(self._top, item)

    def merge(self, other: "ContaminationStats") -> "ContaminationStats":
        self.eval_hit |= other.eval_hit
        self.corpus_docs_matched += other.corpus_docs_matched
        self.pairs += other.pairs
        for *_, m in other._top:
            self._keep(m)
        return self

    def report(self, index: EvalIndex, eval_files: list[str]) -> dict[str, Any]:
        bands, rows = index.config.banding()
        matches = [m for *_, m in sorted(self._top, key=lambda t: (-t[0], t[1], t[2]))]
        return {
            "eval_files": eval_files,
            "eval_docs": len(index.docs),
            "eval_docs_too_short": index.skipped,
            "eval_docs_matched": len(self.eval_hit),
            "eval_rate": len(self.eval_hit) / len(index.docs) if index.docs else 0.0,
            "corpus_docs_matched": self.corpus_docs_matched,
            "pairs": self.pairs,
            "threshold": index.min_jaccard,
            "lsh_threshold": round(threshold_of(bands, rows), 4),
            "ngram": index.config.ngram, "bands": bands, "rows": rows, "num_perm": bands * rows,
            "matches_listed": len(matches),
            "matches": [{k: v for k, v in m.items() if k != "eval_index"} for m in matches],
        }

    def to_dict(self) -> dict[str, Any]:
        return {"max_matches": self.max_matches, "eval_hit": sorted(self.eval_hit),
                "corpus_docs_matched": self.corpus_docs_matched, "pairs": self.pairs,
                "top": [m for *_, m in self._top]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ContaminationStats":
        out = cls(d["max_matches"])
        for m in d["top"]:
            out._keep(m)
        out.eval_hit = set(d["eval_hit"])
        out.corpus_docs_matched = d["corpus_docs_matched"]
        out.pairs = d["pairs"]
        return out
