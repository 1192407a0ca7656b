"""The public API (`replaymill.build`, `sample`, `audit_report`, `ShardSet`) and the commands built on it:
same results from the library and the CLI, `--version`, one input-flag name across commands."""
from __future__ import annotations

import pytest

import replaymill
from replaymill.pipeline.cli import main, make_parser


@pytest.fixture(scope="module")
def built(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "c4"
    manifest = replaymill.build([str(shared_data / "olmo-c4" / "c4-sample.0*.json.gz")], str(out), in_memory=True)
    return out, manifest


def test_build_returns_the_manifest_it_wrote(built):
    out, manifest = built
    assert manifest == replaymill.read_manifest(str(out))
    assert manifest.funnel.kept == manifest.total.docs > 0
    shards = replaymill.ShardSet.open(str(out))
    assert sum(1 for _ in shards.iter_documents(["id"])) == manifest.total.docs


def test_sample_and_audit_as_library_calls(built, tmp_path):
    out, manifest = built
    domains = sorted(manifest.by_domain)
    weights = tmp_path / "w.yaml"
    weights.write_text("by: docs\nweights: {" + ", ".join(f"{d}: 1" for d in domains) + "}\n")
    replay = replaymill.sample(str(out), str(tmp_path / "replay"), target=str(weights), docs=10,
                               on_short="upsample", in_memory=True)
    assert replay.total.docs == 10 and replay.kind == "sample"
    report = replaymill.audit_report([str(tmp_path / "replay")], target=str(weights), fail_if="min_docs=10")
    assert report["totals"]["docs"] == 10 and report["gates"]["passed"]
    assert report["target"]["total_variation"] < 0.2


def test_library_errors_are_input_errors_and_one_cli_line(built, shared_data, tmp_path, capsys):
    out, _ = built
    with pytest.raises(replaymill.InputError, match="matches no file"):
        replaymill.build([str(tmp_path / "nothing-*.jsonl")], str(tmp_path / "o"))
    with pytest.raises(replaymill.InputError, match="already holds a finished shard set"):
        replaymill.build([str(shared_data / "olmo-c4" / "c4-sample.01.json.gz")], str(out))
    with pytest.raises(replaymill.InputError, match="exactly one budget"):
        replaymill.sample(str(out), str(tmp_path / "x"), target="llama1")
    assert main(["audit", "--input", str(tmp_path / "missing-*.jsonl"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("replaymill audit: error:")


def test_version_and_one_input_flag_name(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"replaymill {replaymill.__version__}"
    parser = make_parser()
    for argv in (["build", "--input", "a", "--output", "o"], ["reshard", "--input", "a", "--output", "o"],
                 ["sample", "--input", "a", "--target", "llama1", "--docs", "1", "--output", "o"],
                 ["sample", "--shards", "a", "--target", "llama1", "--docs", "1", "--output", "o"],  # old name
                 ["audit", "--input", "a"], ["audit", "a"]):
        args = parser.parse_args(argv)
        assert args.input in ("a", ["a"]) or args.paths == ["a"], argv
