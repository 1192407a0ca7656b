"""S3 for real: a moto S3 server on loopback, the corpus read from s3://, shards and manifest written
back to s3:// by external SDK workers, the manifest read back and every checksum verified.

Beam's S3 filesystem takes its endpoint and keys from pipeline options (`--s3_endpoint_url`,
`--s3_access_key_id`, ...): the driver gets them from `beam.Pipeline(options=...)` (or an explicit
`FileSystems.set_options`), the workers from the job's options when they boot.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.options.value_provider import RuntimeValueProvider

from replaymill.deploy.local_cluster import free_port
from replaymill.pipeline.build import build
from replaymill.pipeline.cli import main
from replaymill.schemas.recipe import resolve_recipe
from replaymill.shards.io import CorruptShardError, read_manifest, read_shard_bytes, write_bytes_atomic

BUCKET = "replaymill-test"
# A small real corpus (60 English web documents: Dolma CC heads and C4) and small shards, so the
# set has several shards per partition while the test stays fast: every S3 call in Beam builds a
# fresh boto3 client (~0.1 s), which is nothing per 256 MB shard on a cluster but adds up here.
CORPUS = (("dolma-cc", "cc_en_head-*.jsonl.gz"), ("olmo-c4", "*.gz"))
MAX_SHARD_BYTES = 64 << 10
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


def forget_filesystem_options() -> None:
    """The state of a fresh `replaymill` process: no filesystem options. (An in-process DirectRunner
    run leaves its options in RuntimeValueProvider, which Beam's filesystems fall back to.)"""
    FileSystems.set_options(None)
    RuntimeValueProvider.set_runtime_options(None)


@pytest.fixture(scope="module")
def s3(shared_data: Path):
    """A moto S3 server on loopback holding the corpus under s3://BUCKET/corpus/; yields its options."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    # Anything that escapes to real AWS must fail at once, not wait on instance-metadata timeouts.
    patch = pytest.MonkeyPatch()
    patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        patch.delenv(var, raising=False)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, **KEYS)
    client.create_bucket(Bucket=BUCKET)
    for folder, pattern in CORPUS:
        for path in sorted((shared_data / folder).glob(pattern)):
            client.upload_file(str(path), BUCKET, f"corpus/{folder}/{path.name}")
    args = [f"--s3_endpoint_url={endpoint}", f"--s3_access_key_id={KEYS['aws_access_key_id']}",
            f"--s3_secret_access_key={KEYS['aws_secret_access_key']}", f"--s3_region_name={KEYS['region_name']}"]
    try:
        yield {"args": args, "client": client,
               "inputs": [f"s3://{BUCKET}/corpus/{folder}/{pattern}" for folder, pattern in CORPUS],
               "local": [str(shared_data / folder / pattern) for folder, pattern in CORPUS]}
    finally:
        server.stop()
        forget_filesystem_options()
        patch.undo()


@pytest.fixture(scope="module")
def s3_build(s3, portable_cluster) -> str:
    """The build run on 2 external workers, reading and writing s3:// only."""
    out = f"s3://{BUCKET}/replay"
    options = PipelineOptions(portable_cluster.pipeline_args() + s3["args"])
    with beam.Pipeline(options=options) as p:
        recipe = resolve_recipe("minimal")
        build(p, s3["inputs"], out, recipe.model_copy(update={"output": recipe.output.model_copy(
            update={"max_shard_bytes": MAX_SHARD_BYTES})}))
    return out


def test_build_reads_and_writes_s3_and_every_checksum_verifies(s3, s3_build: str, tmp_path: Path):
    FileSystems.set_options(PipelineOptions(s3["args"]))
    manifest = read_manifest(s3_build)
    assert manifest.total.docs == 60 and len(manifest.shards) >= 4
    keys = {o["Key"] for page in s3["client"].get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="replay/")
            for o in page.get("Contents", [])}
    assert keys == {f"replay/{s.path}" for s in manifest.shards} | {"replay/_manifest.json"}
    for info in manifest.shards:
        read_shard_bytes(s3_build, info)  # raises CorruptShardError on any size or sha256 mismatch

    # The same input read from local disk builds the same shards, byte for byte.
    assert main(["build", "--input", *s3["local"], "--output", str(tmp_path / "local"), "--in-memory",
                 "--max-shard-mb", str(MAX_SHARD_BYTES / 2**20)]) == 0
    local = json.loads((tmp_path / "local" / "_manifest.json").read_text())
    assert [s.model_dump() for s in manifest.shards] == local["shards"]
    assert manifest.funnel.model_dump() == local["funnel"]


def test_a_tampered_shard_on_s3_is_detected(s3, s3_build: str):
    FileSystems.set_options(PipelineOptions(s3["args"]))
    manifest = read_manifest(s3_build)
    victim = manifest.shards[0]
    original = read_shard_bytes(s3_build, victim)
    try:
        write_bytes_atomic(f"{s3_build}/{victim.path}", original[:-1] + bytes([original[-1] ^ 1]))
        with pytest.raises(CorruptShardError, match="sha256"):
            read_shard_bytes(s3_build, victim)
    finally:
        write_bytes_atomic(f"{s3_build}/{victim.path}", original)


def test_cli_build_with_s3_input_and_output(s3, tmp_path: Path):
    forget_filesystem_options()
    # The command a user types, in a process with no filesystem options yet (C4 files only: fast).
    rc = main(["build", "--input", s3["inputs"][1], "--output", f"s3://{BUCKET}/cli", "--in-memory", "--", *s3["args"]])
    assert rc == 0
    FileSystems.set_options(PipelineOptions(s3["args"]))
    manifest = read_manifest(f"s3://{BUCKET}/cli")
    assert manifest.funnel.read == 40 and manifest.total.docs > 0
    for info in manifest.shards:
        read_shard_bytes(f"s3://{BUCKET}/cli", info)


def test_cli_reshard_from_and_to_s3(s3):
    """reshard sets the filesystem options before its pre-flight, so s3:// works from the command line."""
    forget_filesystem_options()
    out = f"s3://{BUCKET}/resharded"
    assert main(["reshard", "--input", s3["inputs"][1], "--output", out, "--parts", "2", "--in-memory",
                 "--", *s3["args"]]) == 0
    FileSystems.set_options(PipelineOptions(s3["args"]))
    with FileSystems.open(f"{out}/_reshard.json") as f:
        summary = json.loads(f.read())
    assert summary["lines"] == 40 and len(summary["parts"]) == 2 and summary["dropped"] == {}  # 4 C4 files x 10


def s3_keys(client, prefix: str) -> set[str]:
    return {o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
            for o in page.get("Contents", [])}


def test_cli_overwrite_on_s3_swaps_the_whole_set(s3):
    """--overwrite through Beam's S3 filesystem: staged under the output, swapped in, nothing left over."""
    forget_filesystem_options()
    out = f"s3://{BUCKET}/swap"
    assert main(["build", "--input", s3["inputs"][1], "--output", out, "--in-memory", "--", *s3["args"]]) == 0
    assert main(["build", "--input", s3["inputs"][0], "--output", out, "--in-memory", "--overwrite",
                 "--", *s3["args"]]) == 0
    FileSystems.set_options(PipelineOptions(s3["args"]))
    manifest = read_manifest(out)
    assert manifest.funnel.read == 20  # the two Dolma CC heads, not the C4 files of the first build
    assert s3_keys(s3["client"], "swap/") == {f"swap/{s.path}" for s in manifest.shards} | {"swap/_manifest.json"}
    for info in manifest.shards:
        read_shard_bytes(out, info)


def test_a_live_lease_on_s3_refuses_a_second_run(s3, capsys):
    """Object stores have no locks: a lease renewed by the running build; a fresh one refuses, a stale one not."""
    import time

    forget_filesystem_options()
    FileSystems.set_options(PipelineOptions(s3["args"]))
    out = f"s3://{BUCKET}/leased"
    lease = f"{out}/_replaymill.lock"
    write_bytes_atomic(lease, json.dumps({"token": "other-host:1:x", "renewed_at": time.time()}).encode())
    cmd = ["build", "--input", s3["inputs"][1], "--output", out, "--in-memory", "--", *s3["args"]]
    assert main(cmd) == 2
    assert "another replaymill run is writing to" in capsys.readouterr().err
    write_bytes_atomic(lease, json.dumps({"token": "other-host:1:x", "renewed_at": time.time() - 3600}).encode())
    assert main(cmd) == 0  # a lease nobody renewed for an hour belongs to a dead run
    FileSystems.set_options(PipelineOptions(s3["args"]))
    assert "leased/_replaymill.lock" not in s3_keys(s3["client"], "leased/")
