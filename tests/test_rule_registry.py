"""The quality rule-set registry: what derives from it, what it refuses, and the documented one-file example."""
from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from replaymill.schemas.document import DOC_SCHEMA
from replaymill.schemas.filters import QualityConfig
from replaymill.transforms.quality import RULE_SET_NAMES, RULE_SETS, SIGNAL_NAMES, RuleSet, TextView, Thresholds
from replaymill.transforms.quality.registry import SCORE_RULES, validate

REPO = Path(__file__).resolve().parents[1]
TEXTS = ["", "one", "The cat sat on the mat.\n\nThe cat sat on the mat.\n- a list item\n{code}",
         "BUY NOW!!! " * 20 + "\n" + "lorem ipsum dolor sit amet, consectetur. " * 5]


def test_the_published_rule_sets_are_registered_in_order():
    assert RULE_SET_NAMES[:4] == ("gopher_quality", "gopher_repetition", "c4", "fineweb")
    assert len(SIGNAL_NAMES) == 31 and len(SCORE_RULES) == 30
    assert all(rs.citation for rs in RULE_SETS)


@pytest.mark.parametrize("rule_set", RULE_SETS, ids=lambda rs: rs.name)
def test_each_rule_set_computes_exactly_its_signals(rule_set: RuleSet):
    for text in TEXTS:
        out = rule_set.compute(TextView(text))
        assert tuple(out) == rule_set.signals
        assert all(type(v) is float and math.isfinite(v) for v in out.values())
    for field, _, _ in rule_set.thresholds.TABLE:
        assert field in rule_set.thresholds.model_fields


def test_schema_recipe_and_signals_derive_from_the_registry():
    assert SIGNAL_NAMES == tuple(s for rs in RULE_SETS for s in rs.signals)
    assert tuple(DOC_SCHEMA.field("signals").type.names) == SIGNAL_NAMES
    assert tuple(QualityConfig.model_fields) == (*RULE_SET_NAMES, "min_chars", "max_chars", "per_language", "stop_words")
    config = QualityConfig.model_validate({name: True for name in RULE_SET_NAMES})
    assert [name for name, _ in config.enabled_rules()] == [
        rs.name for rs in RULE_SETS for _ in rs.thresholds().rules()]


def _rule_set(name: str, signals: tuple[str, ...], rule_signal: str) -> RuleSet:
    class T(Thresholds):
        limit: float | None = 1.0
        TABLE = (("limit", rule_signal, "le"),)

    return RuleSet(name=name, signals=signals, compute=lambda v: {s: 0.0 for s in signals}, thresholds=T,
                   citation="test")


@pytest.mark.parametrize("sets,message", [
    ([_rule_set("a", ("x",), "x"), _rule_set("a", ("y",), "y")], "not a free identifier"),
    ([_rule_set("min_chars", ("x",), "x")], "not a free identifier"),
    ([_rule_set("a", ("x",), "x"), _rule_set("b", ("x",), "x")], "computed by both a and b"),
    ([_rule_set("a", ("x",), "y")], "signals it does not compute"),
])
def test_an_inconsistent_registry_is_refused(sets, message):
    with pytest.raises(ValueError, match=message):
        validate(sets)


def _documented_files() -> dict[str, str]:
    """`<!-- file: PATH -->` + fenced block pairs of docs/annotate.md."""
    doc = (REPO / "docs" / "annotate.md").read_text(encoding="utf-8")
    return dict(re.findall(r"<!-- file: (\S+) -->\n```python\n(.*?)```", doc, flags=re.S))


def test_the_documented_example_needs_one_file_and_one_test(tmp_path):
    """The worked example in docs/annotate.md, dropped into a copy of the package: its own test passes,
    and the built-in Annotate stage rejects by the new rule's name from a recipe key alone."""
    files = _documented_files()
    assert sorted(files) == ["tests/test_shouting.py", "transforms/quality/shouting.py"]
    package = tmp_path / "replaymill"
    shutil.copytree(REPO, package, ignore=shutil.ignore_patterns(
        ".git", ".venv", "venv", "out", "tests", "bench", "docs", "__pycache__", "*.egg-info", ".*_cache"))
    (package / "transforms" / "quality" / "shouting.py").write_text(files["transforms/quality/shouting.py"])
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_shouting.py").write_text(files["tests/test_shouting.py"])
    (tests / "test_annotate_uses_it.py").write_text(textwrap.dedent('''
        import yaml
        from replaymill.pipeline.annotate import AnnotateBatchFn
        from replaymill.schemas.document import new_document
        from replaymill.schemas.recipe import Recipe

        def test_annotate_rejects_by_the_new_rule():
            recipe = Recipe.model_validate(yaml.safe_load("quality: {shouting: true}"))
            fn = AnnotateBatchFn(recipe)
            fn.setup()
            docs = [new_document("calm", "The cat sat on the mat and looked at the door.", "t"),
                    new_document("loud", "BUY NOW AND SAVE BIG ON EVERY ORDER TODAY", "t")]
            out = list(fn.process(docs))
            kept = [o for o in out if isinstance(o, dict)]
            rejects = [o.value for o in out if not isinstance(o, dict)]
            assert [d["id"] for d in kept] == ["calm"] and "caps_word_frac" in kept[0]["signals"]
            assert [(r["id"], r["reason"]) for r in rejects] == [("loud", "shouting:caps_word_frac")]
    '''))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
                         cwd=tmp_path, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "2 passed" in run.stdout
