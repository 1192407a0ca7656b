"""The integrity gate (issue 16): every invariant broken on purpose, alone, must stop the seal.

Unit level: `gate` and `check_parts` on a real shard set with one thing wrong at a time.
End to end: a build whose funnel does not balance exits 3 with the gate's one line and publishes
nothing; a pipeline on worker processes carries the same line back through the runner.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import apache_beam as beam
import pytest

from replaymill.pipeline import funnel as funnel_module
from replaymill.pipeline.cli import main
from replaymill.pipeline.integrity import IntegrityError, check_parts, count_part, gate, gate_line, shard_problem
from replaymill.pipeline.options import make_options
from replaymill.pipeline.sink import WriteManifest, WriteShards
from replaymill.schemas.document import new_document
from replaymill.schemas.manifest import MANIFEST_NAME


def docs(n: int, domain: str = "web") -> list[dict]:
    return [dict(new_document(f"doc-{i:03d}", f"document number {i} with some words", "test"), domain=domain,
                 lang="en") for i in range(n)]


@pytest.fixture()
def shard_set(tmp_path, make_shard_set):
    """A real set (3 shards, 50 rows) without its manifest, as the gate sees it: infos, checks, funnel."""
    root = make_shard_set(tmp_path / "set", {"web": docs(30), "code": docs(20, "code")}, rows_per_shard=16)
    manifest = json.loads((Path(root) / MANIFEST_NAME).read_text())
    (Path(root) / MANIFEST_NAME).unlink()
    infos = manifest["shards"]
    return Path(root), infos, [shard_problem(root, i) for i in infos], {"read": 55, "dropped": {"too_short": 5}, "kept": 50}


def test_a_whole_set_passes(shard_set):
    root, infos, checks, funnel = shard_set
    gate(str(root), infos, checks, funnel)


def test_unknown_drop_reason_fails(shard_set):
    root, infos, checks, _ = shard_set
    with pytest.raises(IntegrityError, match="funnel: 10 document.*unknown reason"):
        gate(str(root), infos, checks, {"read": 60, "dropped": {"unknown": 10}, "kept": 50})


def test_unbalanced_funnel_fails(shard_set):
    root, infos, checks, _ = shard_set
    with pytest.raises(IntegrityError, match=r"funnel: read 20 != kept 50 \+ dropped 0"):
        gate(str(root), infos, checks, {"read": 20, "dropped": {}, "kept": 50})


def test_shard_listed_twice_fails(shard_set):
    root, infos, checks, funnel = shard_set
    with pytest.raises(IntegrityError, match="listing: .* is listed 2 times"):
        gate(str(root), infos + infos[:1], checks, funnel)


def test_unlisted_shard_on_disk_fails(shard_set):
    root, infos, checks, funnel = shard_set
    extra = root / "domain=web/lang=en/part-00099.arrow"
    shutil.copy(root / infos[0]["path"], extra)
    with pytest.raises(IntegrityError, match="listing: domain=web/lang=en/part-00099.arrow is in the set but not listed"):
        gate(str(root), infos, checks, funnel)


def test_temp_debris_is_not_part_of_the_set(shard_set):
    root, infos, checks, funnel = shard_set
    (root / "domain=web/lang=en/part-00000.arrow.tmp-0123456789abcdef0123456789abcdef").write_bytes(b"half")
    gate(str(root), infos, checks, funnel)


def test_missing_shard_fails(shard_set):
    root, infos, _, funnel = shard_set
    (root / infos[1]["path"]).unlink()
    with pytest.raises(IntegrityError, match="checksums: .*listed but missing"):
        gate(str(root), infos, [shard_problem(str(root), i) for i in infos], funnel)


def test_changed_shard_fails_its_sha256(shard_set):
    root, infos, _, funnel = shard_set
    path = root / infos[0]["path"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="checksums: .*sha256"):
        gate(str(root), infos, [shard_problem(str(root), i) for i in infos], funnel)


def test_truncated_shard_fails_its_size(shard_set):
    root, infos, _, funnel = shard_set
    path = root / infos[0]["path"]
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(IntegrityError, match=r"checksums: .*bytes, listed"):
        gate(str(root), infos, [shard_problem(str(root), i) for i in infos], funnel)


def test_listed_rows_differ_from_file_rows(shard_set):
    root, infos, checks, funnel = shard_set
    lying = [dict(infos[0], rows=infos[0]["rows"] + 1), *infos[1:]]
    with pytest.raises(IntegrityError, match="rows: the shard files hold 50 rows, the manifest lists 51"):
        gate(str(root), lying, checks, {**funnel, "read": 56, "kept": 51})


def test_rows_differ_from_funnel_kept(shard_set):
    root, infos, checks, _ = shard_set
    with pytest.raises(IntegrityError, match="rows: the shards hold 50 rows, the funnel kept 52"):
        gate(str(root), infos, checks, {"read": 52, "dropped": {}, "kept": 52})


def write_part(root: Path, name: str, lines: int) -> None:
    import zstandard

    (root / name).write_bytes(zstandard.ZstdCompressor().compress(b"".join(b'{"text": "x"}\n' for _ in range(lines))))


def test_reshard_gate(tmp_path):
    names = ["part-00000-of-00002.jsonl.zst", "part-00001-of-00002.jsonl.zst"]
    for name, n in zip(names, (3, 4)):
        write_part(tmp_path, name, n)
    counted = [count_part(str(tmp_path), n) for n in names]
    check_parts(str(tmp_path), names, counted, 7, "part")
    with pytest.raises(IntegrityError, match="rows: the parts hold 7 lines, the reader kept 8"):
        check_parts(str(tmp_path), names, counted, 8, "part")
    with pytest.raises(IntegrityError, match="listing: .* is listed 2 times"):
        check_parts(str(tmp_path), names + names[:1], counted, 7, "part")
    write_part(tmp_path, "part-00002-of-00002.jsonl.zst", 1)
    with pytest.raises(IntegrityError, match="listing: part-00002-of-00002.jsonl.zst is in the set but not listed"):
        check_parts(str(tmp_path), names, counted, 7, "part")
    (tmp_path / "part-00002-of-00002.jsonl.zst").unlink()
    (tmp_path / names[1]).unlink()
    with pytest.raises(IntegrityError, match="checksums: part-00001-of-00002.jsonl.zst: listed but missing"):
        check_parts(str(tmp_path), names, [count_part(str(tmp_path), n) for n in names], 7, "part")


def test_build_with_unbalanced_funnel_publishes_nothing(shared_data, tmp_path, monkeypatch, capsys):
    """The CLI end to end: the gate fires inside the pipeline, the command prints its one line, exit 3."""
    assemble = funnel_module._assemble
    monkeypatch.setattr(funnel_module, "_assemble", lambda *a, **k: {**assemble(*a, **k), "dropped": {"unknown": 3}})
    out = tmp_path / "out"
    rc = main(["build", "--input", str(shared_data / "olmo-c4" / "c4-sample.01.json.gz"), "--output", str(out),
               "--in-memory"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 3
    assert err[-1] == "replaymill build: error: integrity gate failed: funnel: 3 document(s) dropped for an unknown reason"
    assert not any("Traceback" in line for line in err)
    assert sorted(p.name for p in out.iterdir()) == ["_replaymill.lock"]  # no manifest, no shard, no staging


def test_gate_line_comes_back_from_worker_processes(tmp_path, capfd):
    """On worker processes the runner wraps the worker's traceback; the gate's line is found in it,
    and the workers do not print that traceback themselves (Beam's harness would, to stderr)."""
    out = str(tmp_path / "out")
    with pytest.raises(Exception) as info:
        with beam.Pipeline(options=make_options(workers=2)) as p:
            infos = p | beam.Create(docs(10)) | WriteShards(out, 1 << 20)
            funnel = p | "Funnel" >> beam.Create([{"read": 10, "dropped": {"too_short": 1}, "kept": 9}])
            infos | WriteManifest(out, funnel, None, inputs=[], recipe={}, package_versions={}, tool_version="t")
    assert gate_line(info.value) == "integrity gate failed: rows: the shards hold 10 rows, the funnel kept 9"
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()
    assert "Traceback" not in capfd.readouterr().err
