"""The document schema version is checked when shard sets and shards are read."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest

from replaymill.pipeline.cli import main
from replaymill.schemas.document import DOC_SCHEMA, new_document, to_record_batch
from replaymill.schemas.manifest import MANIFEST_NAME
from replaymill.shards.io import SchemaVersionError, encode_table
from replaymill.shards.reader import ShardSet

DOCS = {"web": [new_document(f"d{i}", f"document number {i} with some words", "test") for i in range(5)]}


def _set_manifest_version(root, version: str) -> None:
    path = f"{root}/{MANIFEST_NAME}"
    manifest = json.loads(open(path).read())
    manifest["schema_version"] = version
    open(path, "w").write(json.dumps(manifest))


def test_a_set_of_another_version_is_refused_with_a_clear_error(tmp_path, make_shard_set, capsys):
    root = make_shard_set(tmp_path / "old", DOCS)
    _set_manifest_version(root, "0")
    with pytest.raises(SchemaVersionError, match="schema version 0, this replaymill reads versions 1, 2"):
        ShardSet.open(root)
    assert main(["audit", root, "--quiet", "--no-distinct"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "schema version 0" in err[0] and err[0].startswith("replaymill audit: error:")


def test_a_shard_file_without_the_version_is_refused(tmp_path, make_shard_set):
    root = make_shard_set(tmp_path / "set", DOCS)
    shardset = ShardSet.open(root)
    info = shardset.shards[0]
    # Same columns, but the file's schema metadata lost its version (written by another tool).
    table = pa.Table.from_batches([to_record_batch(DOCS["web"])]).replace_schema_metadata(None)
    (tmp_path / "set" / info.path).write_bytes(encode_table(table, DOC_SCHEMA.remove_metadata()))
    unverified = ShardSet.open(root, verify=False)
    with pytest.raises(SchemaVersionError, match="no replaymill schema version"):
        unverified.read_table(info)
    with pytest.raises(SchemaVersionError):
        list(unverified.iter_documents())
    with pytest.raises(SchemaVersionError):
        unverified.read_index_columns(info, ["n_tokens"])


def test_a_set_with_fewer_signals_is_the_same_version_and_reads(tmp_path, make_shard_set):
    """A set built before a rule set was added lacks those `signals` fields; columns are read by name."""
    root = make_shard_set(tmp_path / "set", DOCS)
    shardset = ShardSet.open(root)
    info = shardset.shards[0]
    table = shardset.read_table(info)
    signals = table.column("signals").combine_chunks()
    fewer = pa.StructArray.from_arrays(signals.flatten()[:3], fields=list(signals.type)[:3])
    old_schema = DOC_SCHEMA.set(DOC_SCHEMA.get_field_index("signals"), pa.field("signals", fewer.type))
    old = table.set_column(table.schema.get_field_index("signals"), "signals", fewer).cast(old_schema)
    (tmp_path / "set" / info.path).write_bytes(encode_table(old, old_schema))
    docs = list(ShardSet.open(root, verify=False).iter_documents(["id", "text", "signals"]))
    assert [d["id"] for d in docs] == [d["id"] for d in DOCS["web"]]
    assert len(docs[0]["signals"]) == 3


def test_a_version_1_set_reads_with_lang_model_null(tmp_path, make_shard_set):
    """Version 2 added `lang_model` and `contamination`; a version-1 set still reads, whole or projected."""
    root = make_shard_set(tmp_path / "set", DOCS)
    _set_manifest_version(root, "1")
    info = ShardSet.open(root).shards[0]
    v1_schema = pa.schema([f for f in DOC_SCHEMA if f.name not in ("lang_model", "contamination")],
                          metadata={b"replaymill.schema_version": b"1"})
    v1 = pa.Table.from_batches([to_record_batch(DOCS["web"])]).drop_columns(["lang_model", "contamination"]).cast(v1_schema)
    (tmp_path / "set" / info.path).write_bytes(encode_table(v1, v1_schema))
    shardset = ShardSet.open(root, verify=False)
    table = shardset.read_table(info)
    assert table.column_names == list(DOC_SCHEMA.names) and table.column("lang_model").null_count == len(DOCS["web"])
    assert table.column("contamination").null_count == len(DOCS["web"])
    assert shardset.read_index_columns(info, ["quality", "lang_model"]).column_names == ["quality", "lang_model"]
    assert shardset.read_index_columns(info, ["n_tokens"]).column("n_tokens").to_pylist() == [None] * 5
    assert [d["lang_model"] for d in shardset.iter_documents(["id", "lang_model"])] == [None] * 5
