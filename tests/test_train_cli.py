"""`replaymill train` as a user meets it: one-line errors with exit 2, no run directory left by a
failed start, every config key a flag, resume that extends a finished run, --replay-on-short."""
from __future__ import annotations

import json

import pytest
import yaml

from replaymill.pipeline.cli import main
from replaymill.schemas.document import new_document
from replaymill.trainer.config import TrainConfig

SMALL = ["--model", "tiny-llama", "--seq-len", "32", "--batch-size", "2", "--eval-tokens", "256", "--warmup", "1",
         "--no-plot"]


@pytest.fixture(scope="module")
def task_file(shared_data) -> str:
    return str(shared_data / "prose" / "de-verne-20000.txt")


@pytest.fixture(scope="module")
def web_only_replay(tmp_path_factory, make_shard_set, shared_data) -> str:
    """A replay set holding only English web-like paragraphs: short of most preset domains."""
    text = (shared_data / "prose" / "en-tinyshakespeare.txt").read_text(encoding="utf-8")
    paras = [p for p in text.split("\n\n") if p.strip()][:200]
    docs = [new_document(f"en:{i}", p, "prose") for i, p in enumerate(paras)]
    return make_shard_set(tmp_path_factory.mktemp("web"), {"web": docs}, rows_per_shard=50)


def _fails(capsys, argv: list[str], *expected: str) -> str:
    """Run the CLI, expect exit 2 and exactly one stderr line containing every `expected` piece."""
    rc = main(["train", *argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("replaymill train: error: ")
    for piece in expected:
        assert piece in lines[0], lines[0]
    return lines[0]


def test_config_errors_are_one_line_and_leave_nothing(tmp_path, capsys, task_file):
    out = tmp_path / "run"
    _fails(capsys, ["--model", "tiny-llama", "--output", str(out)], "--task is required")
    _fails(capsys, [*SMALL, "--task", task_file, "--replay-ratio", "0.1", "--output", str(out)],
           "needs a replay shard set", "--replay")
    _fails(capsys, [*SMALL, "--task", task_file, "--lr", "-1", "--output", str(out)], "--lr", "greater than 0")
    (tmp_path / "bad.yaml").write_text("model: tiny-llama\n  task: [\n")
    _fails(capsys, ["--config", str(tmp_path / "bad.yaml"), "--output", str(out)], "bad.yaml", "not valid YAML", "line 2")
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump({"model": "tiny-llama", "task": task_file, "replay_ration": 0.1}))
    _fails(capsys, ["--config", str(tmp_path / "typo.yaml"), "--output", str(out)], "replay_ration", "replay_ratio")
    _fails(capsys, ["--config", str(tmp_path / "missing.yaml"), "--output", str(out)], "does not exist")
    _fails(capsys, [*SMALL, "--task", str(tmp_path / "nope.txt"), "--output", str(out)], "nope.txt", "does not exist")
    _fails(capsys, [*SMALL, "--task", task_file, "--replay", str(tmp_path), "--replay-ratio", "0.1",
                    "--output", str(out)], "_manifest.json")
    _fails(capsys, [*SMALL, "--task", task_file, "--model-overrides", "{hidden_size: 96, hiden_layers: 3}",
                    "--output", str(out)], "hiden_layers", "LlamaConfig")
    _fails(capsys, ["--model", "no-such-org/no-such-model", "--task", task_file, "--output", str(out)],
           "not in the local HF cache", "never downloads")
    _fails(capsys, ["--model", str(tmp_path), "--task", task_file, "--output", str(out)], "no config.json")
    assert not out.exists()  # no failed start left a run directory behind


def test_output_in_the_way_and_resume_changes(tmp_path, capsys, task_file):
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--task", task_file, "--steps", "2", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"run directory {out.resolve()}" in printed.splitlines()[0]  # where the outputs go, first
    assert "step 2/2 loss" in printed and "tok/s" in printed and "ETA" in printed and "lr " in printed
    _fails(capsys, [*SMALL, "--task", task_file, "--steps", "2", "--output", str(out)], "previous run", "--resume")
    _fails(capsys, [*SMALL, "--task", task_file, "--steps", "2", "--output", str(out), "--resume"],
           "at step 2 already", "--steps")
    _fails(capsys, [*SMALL, "--task", task_file, "--steps", "4", "--seed", "7", "--output", str(out), "--resume"],
           "config changed", "seed 0 -> 7")
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("not a run")
    _fails(capsys, [*SMALL, "--task", task_file, "--output", str(other)], "not a replaymill run")
    assert (other / "mine.txt").read_text() == "not a run" and len(list(other.iterdir())) == 1


def test_resume_with_more_steps_extends_a_finished_run(tmp_path, capsys, task_file):
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--task", task_file, "--steps", "3", "--warmup", "1", "--output", str(out)]) == 0
    capsys.readouterr()
    assert main(["train", *SMALL, "--task", task_file, "--steps", "5", "--warmup", "1", "--resume", "--output",
                 str(out)]) == 0
    printed = capsys.readouterr().out
    assert "schedule changed on resume: steps 3 -> 5" in printed
    records = [json.loads(ln) for ln in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4, 5]
    (change,) = [r for r in records if r["kind"] == "schedule"]
    assert change["step"] == 3 and change["steps_from"] == 3 and change["steps_to"] == 5
    # the LR of step 4 is the new 5-step cosine's, not the finished 3-step schedule's floor
    from replaymill.trainer.optim import lr_lambda

    lr4 = next(r["lr"] for r in records if r["kind"] == "train" and r["step"] == 4)
    assert lr4 == pytest.approx(3e-4 * lr_lambda(1, 5, 0.1)(3))
    assert (out / "checkpoints" / "step-0000005").is_dir()


def test_every_config_key_is_a_flag_with_its_default_in_help(capsys):
    from replaymill.pipeline.cli import make_parser

    with pytest.raises(SystemExit):
        make_parser().parse_args(["train", "--help"])
    text = capsys.readouterr().out
    for name in TrainConfig.model_fields:
        assert "--" + name.replace("_", "-") in text, name
    assert "(default: 0.02)" in text and "examples:" in text and "--replay-on-short" in text
    args = make_parser().parse_args(["train", "--model-overrides", "{hidden_size: 96}", "--lora-dropout", "0.1",
                                     "--betas", "0.9,0.99", "--report-to", "tensorboard", "--no-plot", "--compile"])
    assert args.model_overrides == {"hidden_size": 96} and args.lora_dropout == 0.1 and args.betas == [0.9, 0.99]
    assert args.report_to == ["tensorboard"] and args.plot is False and args.compile is True


def test_replay_on_short_for_a_domain_the_set_lacks(tmp_path, capsys, task_file, web_only_replay):
    base = [*SMALL, "--task", task_file, "--replay", web_only_replay, "--replay-target", "llama1",
            "--replay-ratio", "0.25", "--steps", "2"]
    _fails(capsys, [*base, "--output", str(tmp_path / "a")], "no documents for", "--replay-on-short renormalize")
    assert not (tmp_path / "a").exists()
    assert main(["train", *base, "--replay-on-short", "renormalize", "--output", str(tmp_path / "b")]) == 0
    printed = capsys.readouterr().out
    assert "their weight is shared" in printed
    records = [json.loads(ln) for ln in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["replay_tokens"] for r in records if r["kind"] == "train"] == [16, 32]  # 25% of 2 x 32, every step


def test_ctrl_c_is_one_line_pointing_at_resume(tmp_path, capsys, monkeypatch, task_file):
    import replaymill.trainer.loop

    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(replaymill.trainer.loop, "train", interrupted)
    assert main(["train", *SMALL, "--task", task_file, "--output", str(tmp_path / "run")]) == 130
    assert capsys.readouterr().err.strip() == ("replaymill train: interrupted; rerun with --resume to continue from "
                                               "the newest checkpoint")
