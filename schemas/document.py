"""The Arrow document schema: one row per document, the contract between build, sample, train and audit.

Shards are Arrow IPC files (zstd buffers), Hive-partitioned by `domain` and `lang`; the two
partition columns are also stored inside each file so that a single file opened with
`datasets.load_dataset("arrow", ...)` still carries them.

Inside Beam a document travels as a plain dict whose keys are the column names below (fast to
pickle, no class to import on workers); keys starting with "_" are in-flight scratch and are
dropped by the sink.
"""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from replaymill.transforms.quality.registry import SIGNAL_NAMES

# Checked on read (shards.io.check_schema_version). Bump it when a column is added, removed, renamed or
# changes meaning; new `signals` fields (a new quality rule set) are additive: readers select by name.
# Version 2 added `lang_model` (which language-ID model decided) and `contamination` (evaluation
# overlap flagged by the decontaminate stage); version-1 shards still read, both null (`upgrade_table`).
SCHEMA_VERSION = "2"
SCHEMA_VERSION_KEY = b"replaymill.schema_version"
# Versions this code reads; columns added since a version are filled with nulls on read.
READABLE_SCHEMA_VERSIONS: tuple[str, ...] = ("1", "2")
ADDED_COLUMNS: dict[str, str] = {"lang_model": "2", "contamination": "2"}  # column -> version that added it

# The evaluation document a flagged row overlaps most (schemas.decontam; null: clean or not checked).
CONTAMINATION_TYPE = pa.struct([
    pa.field("eval_id", pa.string()),
    pa.field("eval_file", pa.string()),
    pa.field("ngrams", pa.int32()),      # distinct evaluation n-grams found in this document
    pa.field("overlap", pa.float32()),   # their share of the evaluation document's n-grams
    pa.field("eval_docs", pa.int32()),   # evaluation documents this row overlaps in all
])
SIGNALS_TYPE = pa.struct([pa.field(name, pa.float32()) for name in SIGNAL_NAMES])

DOC_FIELDS: list[pa.Field] = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("source", pa.string()),          # corpus / file family the document came from
    pa.field("source_label", pa.string()),    # the corpus's own label (pile_set_name, redpajama_set_name, Dolma source)
    pa.field("domain", pa.string()),          # replaymill taxonomy, see schemas.domains
    pa.field("lang", pa.string()),            # ISO 639-1/3 code, "und" if unknown
    pa.field("lang_score", pa.float32()),     # the deciding model's probability / confidence
    pa.field("lang_model", pa.string()),      # which model decided: "fasttext" or "lingua" (transforms.langid_cascade)
    pa.field("quality", pa.float32()),        # 0..1, see transforms.quality
    pa.field("signals", SIGNALS_TYPE),
    pa.field("dup_exact_count", pa.int32()),  # size of the exact-duplicate cluster this row represents (1 = unique)
    pa.field("dup_near_count", pa.int32()),   # size of the near-duplicate component this row represents (1 = unique)
    pa.field("url", pa.string()),
    pa.field("n_chars", pa.int64()),
    pa.field("n_tokens", pa.int64()),
    pa.field("metadata", pa.string()),        # original metadata as JSON text
    pa.field("contamination", CONTAMINATION_TYPE),
]

DOC_SCHEMA = pa.schema(DOC_FIELDS, metadata={SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode()})
COLUMN_NAMES: tuple[str, ...] = tuple(f.name for f in DOC_FIELDS)


def upgrade_table(table: pa.Table, columns: list[str] | None = None) -> pa.Table:
    """A table read from an older shard with the columns added since (ADDED_COLUMNS) as nulls.

    Only the columns the caller asked for (`columns`, None = all) are added, each inserted where
    DOC_SCHEMA puts it relative to the columns present, so a whole old shard reads as a whole new one.
    """
    for name in ADDED_COLUMNS:
        if name in table.column_names or (columns is not None and name not in columns):
            continue
        field = DOC_SCHEMA.field(name)
        before = set(COLUMN_NAMES[: COLUMN_NAMES.index(name)])
        position = sum(1 for c in table.column_names if c in before)
        table = table.add_column(position, field, pa.nulls(table.num_rows, field.type))
    return table


def empty_signals() -> dict[str, float]:
    """Signals of a document that was not scored (all zero), so every row fits the struct."""
    return {name: 0.0 for name in SIGNAL_NAMES}


def new_document(
    id: str,
    text: str,
    source: str,
    *,
    source_label: str | None = None,
    url: str | None = None,
    metadata: str = "{}",
) -> dict[str, Any]:
    """A freshly read document with every column present and the derived ones at neutral values."""
    return {
        "id": id,
        "text": text,
        "source": source,
        "source_label": source_label,
        "domain": None,
        "lang": None,
        "lang_score": None,
        "lang_model": None,
        "quality": None,
        "signals": empty_signals(),
        "dup_exact_count": 1,
        "dup_near_count": 1,
        "url": url,
        "n_chars": len(text),
        "n_tokens": None,
        "metadata": metadata,
        "contamination": None,
    }


def to_record_batch(docs: list[dict[str, Any]]) -> pa.RecordBatch:
    """Rows (in-flight dicts) to one RecordBatch of DOC_SCHEMA; scratch keys are ignored."""
    columns = {name: [d.get(name) for d in docs] for name in COLUMN_NAMES}
    return pa.RecordBatch.from_pydict(columns, schema=DOC_SCHEMA)
