"""Evaluation text in a corpus (benchmark contamination), two ways.

- `NgramEvalIndex` (the default): shared word 13-grams (`transforms.ngram_overlap`), as GPT-3,
  Llama 2 and OLMo decontaminate. It finds a benchmark passage quoted inside a longer page, which
  a whole-document similarity cannot: a 200-word passage in a 500-word page has Jaccard ~0.3.
- `EvalIndex`: MinHash LSH near duplicates (the dedup code's normalization, shingles, permutations
  and banding), for "is this whole item, lightly edited, in the corpus?". The banding is chosen
  from `min_jaccard` (`transforms.lsh.banding_for_recall`) so a pair at the reported threshold is
  a candidate with probability >= 0.95, instead of a fixed 14x8 whose threshold is ~0.72.

Either index is small (an evaluation set) and travels to the workers with the DoFn; the corpus
streams past it in batches, so the cost is linear in the corpus and memory is bounded by the index
plus the listed overlaps. `ContaminationStats` tallies matches mergeably: evaluation documents hit,
corpus documents hit, the best `max_matches` pairs, and per evaluation document the number of
corpus documents that overlap it with the best `per_eval` of them (id, overlap, a text sample).
"""
from __future__ import annotations

import heapq
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from apache_beam.io.filesystems import FileSystems

from replaymill.schemas.dedup import NearDedupConfig
from replaymill.transforms.lsh import band_hashes, banding_for_recall, catch_probability, threshold_of
from replaymill.transforms.minhash import Permutations, batch_signatures
from replaymill.transforms.ngram_overlap import DEFAULT_N, OverlapIndex, sample_around

DEFAULT_MIN_JACCARD = 0.5
DEFAULT_MIN_NGRAMS = 3
MINHASH_NUM_PERM = 128
MINHASH_RECALL = 0.95
MAX_MATCHES = 1000
PER_EVAL = 5
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


def load_eval_docs(patterns: Sequence[str]) -> tuple[list[str], list[EvalDoc]]:
    """(files, evaluation documents) of files or globs. FileNotFoundError for a pattern matching
    nothing; ValueError for an unparsable file or one holding no text (an empty evaluation file
    would silently check nothing)."""
    from replaymill.pipeline.sources import expand_inputs

    files = expand_inputs(list(patterns))
    docs: list[EvalDoc] = []
    for path in files:
        found = read_eval_file(path)
        if not found:
            raise ValueError(f"{path}: no evaluation text (empty file, or records without string fields)")
        docs += found
    return files, docs


@dataclass
class EvalIndex:
    """MinHash signatures of the evaluation items and their LSH band buckets (near duplicates)."""

    config: NearDedupConfig
    docs: list[EvalDoc]
    perms: Permutations
    signatures: np.ndarray                                  # (n_eval, bands*rows) uint64
    buckets: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    min_jaccard: float = DEFAULT_MIN_JACCARD
    skipped: int = 0                                        # items too short to have one shingle
    method = "minhash"

    @classmethod
    def build(cls, docs: Sequence[EvalDoc], config: NearDedupConfig | None = None,
              min_jaccard: float = DEFAULT_MIN_JACCARD) -> "EvalIndex":
        """Index `docs`; without a `config`, the banding is chosen so pairs at `min_jaccard` are caught."""
        if config is None:
            bands, rows = banding_for_recall(min_jaccard, MINHASH_NUM_PERM, MINHASH_RECALL)
            config = NearDedupConfig(bands=bands, rows=rows)
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
                                "score": round(float(s), 4), "jaccard": round(float(s), 4),
                                "sample": texts[i][:SAMPLE_CHARS]})
        return out

    def describe(self) -> dict[str, Any]:
        """The method's settings for the report: the banding and what it catches at the threshold."""
        bands, rows = self.config.banding()
        return {"method": self.method, "threshold": self.min_jaccard,
                "lsh_threshold": round(threshold_of(bands, rows), 4),
                "lsh_recall_at_threshold": round(float(catch_probability(self.min_jaccard, bands, rows)), 4),
                "ngram": self.config.ngram, "bands": bands, "rows": rows, "num_perm": bands * rows}


@dataclass
class NgramEvalIndex:
    """Hashed word n-grams of the evaluation items (`transforms.ngram_overlap.OverlapIndex`)."""

    docs: list[EvalDoc]
    index: OverlapIndex
    min_ngrams: int = DEFAULT_MIN_NGRAMS
    min_overlap: float = 0.0
    method = "ngram"

    @classmethod
    def build(cls, docs: Sequence[EvalDoc], n: int = DEFAULT_N, min_ngrams: int = DEFAULT_MIN_NGRAMS,
              min_overlap: float = 0.0) -> "NgramEvalIndex":
        return cls(list(docs), OverlapIndex.build([d.text for d in docs], n), min_ngrams, min_overlap)

    @property
    def skipped(self) -> int:
        """Evaluation items with fewer words than n (no n-gram: they can never match)."""
        return int((self.index.eval_ngrams == 0).sum())

    def query(self, ids: Sequence[str], texts: Sequence[str]) -> list[dict[str, Any]]:
        """One dict per (corpus doc, eval item) pair that counts, with a sample of the shared text."""
        out = []
        for doc_id, text, found in zip(ids, texts, self.index.counted(texts, self.min_ngrams, self.min_overlap)):
            for o in found:
                ev = self.docs[o.eval_index]
                out.append({"corpus_id": str(doc_id), "eval_id": ev.id, "eval_file": ev.file,
                            "eval_index": o.eval_index, "score": o.ngrams, "ngrams": o.ngrams,
                            "overlap": round(o.overlap, 4),
                            "sample": sample_around(text, o.first_word, self.index.n, limit=SAMPLE_CHARS)})
        return out

    def describe(self) -> dict[str, Any]:
        return {"method": self.method, "ngram": self.index.n, "min_ngrams": self.min_ngrams,
                "min_overlap": self.min_overlap, "index_bytes": self.index.nbytes}


ContaminationIndex = EvalIndex | NgramEvalIndex


class ContaminationStats:
    """Mergeable tally of matches: eval items hit, corpus documents hit, the best `max_matches`
    pairs, and per eval item the number of overlapping corpus documents and the best `per_eval`."""

    def __init__(self, max_matches: int = MAX_MATCHES, per_eval: int = PER_EVAL):
        self.max_matches = max_matches
        self.per_eval = per_eval
        self.corpus_docs_matched = 0
        self.pairs = 0
        self._top: list[tuple[float, str, str, dict[str, Any]]] = []  # min-heap on score
        self._by_eval: dict[int, list[Any]] = {}  # eval index -> [corpus docs, min-heap of its best]

    def add(self, matches: list[dict[str, Any]]) -> "ContaminationStats":
        """Tally the matches of one batch of corpus documents (as an index's `query` returns them)."""
        self.corpus_docs_matched += len({m["corpus_id"] for m in matches})
        self.pairs += len(matches)
        for m in matches:
            entry = self._by_eval.setdefault(m["eval_index"], [0, []])
            entry[0] += 1
            self._keep(entry[1], self.per_eval, m)
            self._keep(self._top, self.max_matches, m)
        return self

    @staticmethod
    def _keep(heap: list, size: int, m: dict[str, Any]) -> None:
        """Keep `m` among the `size` highest-score pairs (ties broken by ids: deterministic)."""
        item = (m["score"], m["corpus_id"], m["eval_id"], m)
        if len(heap) < size:
            heapq.heappush(heap, item)
        elif item[:3] > heap[0][:3]:
            heapq.heapreplace(heap, item)

    def merge(self, other: "ContaminationStats") -> "ContaminationStats":
        self.corpus_docs_matched += other.corpus_docs_matched
        self.pairs += other.pairs
        for *_, m in other._top:
            self._keep(self._top, self.max_matches, m)
        for e, (count, heap) in other._by_eval.items():
            entry = self._by_eval.setdefault(e, [0, []])
            entry[0] += count
            for *_, m in heap:
                self._keep(entry[1], self.per_eval, m)
        return self

    @staticmethod
    def _ranked(heap: list) -> list[dict[str, Any]]:
        return [{k: v for k, v in m.items() if k not in ("eval_index", "score")}
                for *_, m in sorted(heap, key=lambda t: (-t[0], t[1], t[2]))]

    def report(self, index: ContaminationIndex, eval_files: list[str]) -> dict[str, Any]:
        matches = self._ranked(self._top)
        by_eval = [{"eval_id": index.docs[e].id, "eval_file": index.docs[e].file, "corpus_docs": count,
                    "matches": self._ranked(heap)} for e, (count, heap) in self._by_eval.items()]
        by_eval.sort(key=lambda r: (-r["corpus_docs"], r["eval_id"]))
        return {
            "eval_files": eval_files,
            "eval_docs": len(index.docs),
            "eval_docs_too_short": index.skipped,
            "eval_docs_matched": len(self._by_eval),
            "eval_rate": len(self._by_eval) / len(index.docs) if index.docs else 0.0,
            "corpus_docs_matched": self.corpus_docs_matched,
            "pairs": self.pairs,
            **index.describe(),
            "matches_listed": len(matches),
            "matches": matches,
            "by_eval": by_eval,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"max_matches": self.max_matches, "per_eval": self.per_eval,
                "corpus_docs_matched": self.corpus_docs_matched, "pairs": self.pairs,
                "top": [m for *_, m in self._top],
                "by_eval": [[e, count, [m for *_, m in heap]] for e, (count, heap) in self._by_eval.items()]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ContaminationStats":
        out = cls(d["max_matches"], d["per_eval"])
        for m in d["top"]:
            out._keep(out._top, out.max_matches, m)
        for e, count, ms in d["by_eval"]:
            entry = out._by_eval[int(e)] = [int(count), []]
            for m in ms:
                out._keep(entry[1], out.per_eval, m)
        out.corpus_docs_matched = d["corpus_docs_matched"]
        out.pairs = d["pairs"]
        return out
