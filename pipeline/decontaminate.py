"""The Decontaminate stage: drop (or flag) documents that share word n-grams with evaluation files.

`kept, rejects = docs | "Decontaminate" >> Decontaminate(recipe.decontaminate)`.

The evaluation side is built inside the pipeline, so it scales like the rest: the files are read
by the workers (`ReadEval`), their n-grams hashed in batches (`EvalNgrams`), and the partial
indexes combined into one `transforms.ngram_overlap.OverlapIndex` (`Index`, a CombineGlobally)
that reaches every worker as a side input (`beam.pvalue.AsSingleton`): sorted 64-bit hashes plus
owner lists, about 12 bytes per distinct evaluation n-gram (60 MB for 10k documents of 500 words).
The corpus streams past it in batches (`BatchElements`), one vectorized lookup per batch.

Each document's outcome depends only on the document and the evaluation set, so the output does
not depend on batching, worker count or order. A contaminated document goes to `rejects` with
reason `contaminated` (counted in the funnel) and a detail naming the evaluation document, or,
with `action: flag`, stays with its `contamination` column filled.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

import apache_beam as beam
import numpy as np

from replaymill.pipeline.rejects import REJECTS_TAG, RejectEmitter
from replaymill.schemas.decontam import CONTAMINATED, DecontaminateConfig
from replaymill.transforms.ngram_overlap import OverlapIndex, document_ngrams

STAGE = "decontaminate"
MIN_BATCH, MAX_BATCH = 16, 512


class EvalSet:
    """The combined evaluation side: document ids and files (by index position) and the n-gram index."""

    def __init__(self, ids: list[str], files: list[str], index: OverlapIndex):
        self.ids, self.files, self.index = ids, files, index


def _eval_records(path: str) -> list[tuple[str, str, str]]:
    from replaymill.audit.contamination import read_eval_file

    return [(d.file, d.id, d.text) for d in read_eval_file(path)]


def _partial(batch: list[tuple[str, str, str]], n: int) -> dict[str, Any]:
    """The n-gram hashes of a batch of evaluation documents, distinct per document (local indexes)."""
    hashes, docs, counts = document_ngrams([text for _, _, text in batch], n)
    return {"keys": [(f, i) for f, i, _ in batch], "hashes": hashes, "docs": docs, "counts": counts}


class CombineIndex(beam.CombineFn):
    """Partials (see `_partial`) -> one EvalSet; documents are ordered by (file, id), so the result
    does not depend on how the runner split or merged the partials."""

    def __init__(self, n: int):
        self.n = n

    def create_accumulator(self) -> list[dict[str, Any]]:
        return []

    def add_input(self, acc: list[dict[str, Any]], partial: dict[str, Any]) -> list[dict[str, Any]]:
        acc.append(partial)
        return acc

    def merge_accumulators(self, accs: Iterable[list[dict[str, Any]]]) -> list[dict[str, Any]]:
        return [p for acc in accs for p in acc]

    def extract_output(self, acc: list[dict[str, Any]]) -> EvalSet:
        keys = [k for p in acc for k in p["keys"]]
        order = sorted(range(len(keys)), key=keys.__getitem__)
        new_pos = np.empty(len(keys), dtype=np.int64)
        new_pos[order] = np.arange(len(keys))
        hashes, docs, counts, base = [], [], np.zeros(len(keys), dtype=np.int32), 0
        for p in acc:
            hashes.append(p["hashes"])
            docs.append(new_pos[p["docs"] + base])
            counts[new_pos[base : base + len(p["keys"])]] = p["counts"]
            base += len(p["keys"])
        index = OverlapIndex.from_pairs(
            self.n,
            np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64),
            np.concatenate(docs).astype(np.int32) if docs else np.zeros(0, dtype=np.int32),
            counts,
        )
        return EvalSet([keys[i][1] for i in order], [keys[i][0] for i in order], index)


class DecontaminateBatchFn(beam.DoFn):
    """A batch of documents and the EvalSet side input in; clean (or flagged) documents and rejects out."""

    def __init__(self, config: DecontaminateConfig):
        self.config = config

    def setup(self) -> None:
        self._rejects = RejectEmitter(STAGE, REJECTS_TAG)
        self._checked = beam.metrics.Metrics.counter(STAGE, "checked")
        self._flagged = beam.metrics.Metrics.counter(STAGE, "contaminated")

    def process(self, batch: list[dict[str, Any]], evals: EvalSet) -> Iterator[Any]:
        cfg = self.config
        found = evals.index.counted([d["text"] for d in batch], cfg.min_ngrams, cfg.min_overlap)
        self._checked.inc(len(batch))
        for doc, hits in zip(batch, found):
            if not hits:
                yield doc
                continue
            self._flagged.inc()
            best = max(hits, key=lambda o: (o.ngrams, o.overlap, -o.eval_index))
            eval_id, eval_file = evals.ids[best.eval_index], evals.files[best.eval_index]
            if cfg.action == "drop":
                more = f" (+{len(hits) - 1} more evaluation documents)" if len(hits) > 1 else ""
                yield self._rejects.document(
                    doc, CONTAMINATED,
                    f"shares {best.ngrams} word {cfg.n}-grams ({best.overlap:.1%} of its n-grams) with "
                    f"evaluation document {eval_id} in {eval_file}{more}")
            else:
                yield dict(doc, contamination={"eval_id": eval_id, "eval_file": eval_file, "ngrams": best.ngrams,
                                               "overlap": float(best.overlap), "eval_docs": len(hits)})


class Decontaminate(beam.PTransform):
    """`kept, rejects = docs | Decontaminate(config)`; the evaluation files were checked at pre-flight."""

    def __init__(self, config: DecontaminateConfig, eval_files: list[str]):
        super().__init__()
        self.config = config
        self.eval_files = list(eval_files)

    def expand(self, docs: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        n = self.config.n
        evals = (
            docs.pipeline
            | "EvalFiles" >> beam.Create(self.eval_files)
            | "ReadEval" >> beam.FlatMap(_eval_records)
            | "BatchEval" >> beam.BatchElements(min_batch_size=MIN_BATCH, max_batch_size=MAX_BATCH)
            | "EvalNgrams" >> beam.Map(_partial, n)
            | "Index" >> beam.CombineGlobally(CombineIndex(n))
        )
        results = (
            docs
            | "Batch" >> beam.BatchElements(min_batch_size=MIN_BATCH, max_batch_size=MAX_BATCH)
            | "Check" >> beam.ParDo(DecontaminateBatchFn(self.config), beam.pvalue.AsSingleton(evals))
            .with_outputs(REJECTS_TAG, main="kept")
        )
        return results.kept, results[REJECTS_TAG]
