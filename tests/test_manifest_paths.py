"""Issue 10 item 2: partition values and paths read from a manifest are validated in the contract,
so no reader can be led to write outside its output (before: `sample` wrote `part-*.arrow` files
wherever a manifest's `lang: ../../../../tmp/x` pointed)."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest
from pydantic import ValidationError

from replaymill.pipeline.cli import main
from replaymill.pipeline.sink import partition_value
from replaymill.schemas.document import new_document, to_record_batch
from replaymill.schemas.manifest import MANIFEST_NAME, ShardInfo
from replaymill.shards.io import InvalidManifestError, read_manifest, write_shard

GOOD = dict(path="domain=web/lang=en/part-00000.arrow", domain="web", lang="en", rows=1, bytes=1, tokens=1,
            chars=1, sha256="0" * 64)


@pytest.mark.parametrize("bad", [
    {"lang": "../../../../tmp/x", "path": "domain=web/lang=../../../../tmp/x/part-00000.arrow"},
    {"domain": "..", "path": "domain=../lang=en/part-00000.arrow"},
    {"domain": "a/b", "path": "domain=a/b/lang=en/part-00000.arrow"},
    {"lang": "en us"},
    {"path": "domain=web/lang=en/../../x.arrow"},
    {"path": "/etc/passwd"},
    {"path": "domain=web/lang=en/sub/part-00000.arrow"},
    {"path": "domain=news/lang=en/part-00000.arrow"},  # not under its own partition
    {"path": "domain=web\\lang=en\\part-00000.arrow"},
])
def test_shard_info_refuses_paths_that_leave_the_set(bad):
    with pytest.raises(ValidationError):
        ShardInfo(**{**GOOD, **bad})


def test_every_value_the_build_writes_is_valid():
    for raw in ("en", "zh-Hans", "..", ".", "a/b", "x y", "=", "über", None, ""):
        value = partition_value(raw, "und")
        ShardInfo(**{**GOOD, "lang": value, "path": f"domain=web/lang={value}/part-00000.arrow"})


def test_write_shard_stays_under_its_root(tmp_path):
    table = pa.Table.from_batches([to_record_batch([new_document("a", "text", "t")])])
    with pytest.raises(ValueError, match="does not stay inside"):
        write_shard(str(tmp_path / "out"), "../escaped/part-00000.arrow", table, "web", "en")
    assert not (tmp_path / "escaped").exists()


def test_sample_refuses_a_manifest_that_points_outside(tmp_path, make_shard_set, capsys):
    root = make_shard_set(tmp_path / "set", {"web": [new_document(f"d{i}", f"words of doc {i}", "t") for i in range(20)]})
    path = tmp_path / "set" / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    manifest["shards"][0]["lang"] = "../../../../tmp/x"
    path.write_text(json.dumps(manifest))
    with pytest.raises(InvalidManifestError, match="shards.0.lang"):
        read_manifest(root)
    weights = tmp_path / "w.yaml"
    weights.write_text("weights: {web: 1.0}\n")
    rc = main(["sample", "--shards", root, "--target", str(weights), "--docs", "5", "--output",
               str(tmp_path / "out" / "replay"), "--in-memory"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "invalid manifest: shards.0.lang: lang '../../../../tmp/x'" in err[0]
    assert not list(tmp_path.rglob("tmp/x")) and not (tmp_path / "out").exists()
