"""A demo corpus assembled on the spot from real text that every Python installation carries.

Why: `replaymill build` with no `--input` must show the whole pipeline on real data without any
network. The standard library's `.py` files are real code; the README/description, licence and
METADATA files of installed packages are real prose, and identical licence texts shipped by many
packages are real exact duplicates (near-identical ones, with a different copyright line, are
real near duplicates). Documents are written as Dolma-shaped JSONL (`id, text, source, metadata`)
with `source` naming the kind of file, so the readers, annotators and dedup stages all do their
ordinary work.

Deterministic for a given installation: files are taken in sorted path order, code, docs and
licences in turn, until the byte budget is spent; ids are paths relative to their root, so they do not
depend on where the virtual environment lives.
"""
from __future__ import annotations

import gzip
import json
import sysconfig
from itertools import zip_longest
from pathlib import Path
from typing import Iterator

DEFAULT_MB = 8
# A demo wants ordinary documents: no generated giants (unicode tables), no near-empty __init__.py.
MIN_DOC_BYTES = 200
MAX_DOC_BYTES = 200_000
PROSE_PATTERNS = ("*.md", "*.rst", "*.txt", "LICENSE*", "LICENCE*", "COPYING*", "METADATA")
FILES_PER_SHARD = 4


def _candidates(root: Path, patterns: tuple[str, ...], max_depth: int | None = None) -> list[Path]:
    """Files under `root` matching `patterns`, at most `max_depth` directories deep, in path order."""
    if max_depth is None:
        found = {p for pattern in patterns for p in root.rglob(pattern) if p.is_file()}
    else:
        found = {p for depth in range(max_depth + 1) for pattern in patterns
                 for p in root.glob("*/" * depth + pattern) if p.is_file()}
    return sorted(found)


def _documents(root: Path, paths: list[Path], source: str, prefix: str) -> Iterator[dict]:
    for path in paths:
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        if not MIN_DOC_BYTES <= len(raw.strip()) <= MAX_DOC_BYTES:
            continue
        text = raw.decode("utf-8", errors="replace")
        rel = path.relative_to(root).as_posix()
        kind = "code" if path.suffix == ".py" else ("license" if _is_licence(path) else "docs")
        yield {
            "id": f"{prefix}/{rel}",
            "text": text,
            "source": f"{source}-{kind}",
            "metadata": {"path": rel, "kind": kind, "origin": source},
        }


def _is_licence(path: Path) -> bool:
    return path.name.upper().startswith(("LICEN", "COPYING"))


def demo_documents(max_bytes: int) -> Iterator[dict]:
    """Standard-library code, package docs and package licences, in turn, up to `max_bytes` of text
    (licences get their own turn so even a small demo holds the identical ones)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    site = Path(sysconfig.get_paths()["purelib"])
    code_paths = [p for p in _candidates(stdlib, ("*.py",)) if "site-packages" not in p.parts]
    # Distribution metadata and licences live at most 3 levels down (pkg.dist-info/licenses/LICENSE);
    # deeper files are package internals (and walking all of torch would take seconds).
    prose_paths = _candidates(site, PROSE_PATTERNS, max_depth=3)
    code = _documents(stdlib, code_paths, "python-stdlib", "stdlib")
    docs = _documents(site, [p for p in prose_paths if not _is_licence(p)], "site-packages", "site")
    licences = _documents(site, [p for p in prose_paths if _is_licence(p)], "site-packages", "site")
    used = 0
    for turn in zip_longest(code, docs, licences):
        for doc in turn:
            if doc is None:
                continue
            size = len(doc["text"].encode("utf-8"))
            if used + size > max_bytes:
                return
            used += size
            yield doc


def write_demo_corpus(dest: str | Path, mb: float = DEFAULT_MB) -> list[str]:
    """Write the demo corpus as gzipped Dolma-shaped JSONL files under `dest`; returns their paths."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    docs = list(demo_documents(int(mb * 1024 * 1024)))
    paths = []
    for i in range(FILES_PER_SHARD):
        path = dest / f"demo-{i:02d}.jsonl.gz"
        with gzip.open(path, "wt", encoding="utf-8") as f:
            for doc in docs[i::FILES_PER_SHARD]:
                f.write(json.dumps(doc, ensure_ascii=False) + "\n")
        paths.append(str(path))
    return paths


def write_demo_task(dest: str | Path) -> str:
    """A fine-tuning task for the demo, also from this Python installation: the Python reference
    documentation's topics (`pydoc_data.topics`, what `help("if")` shows), real English prose
    about code, as a plain-text file `train` splits on blank lines. Returns the path."""
    from pydoc_data.topics import topics

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("\n\n".join(topics[name].strip() for name in sorted(topics)) + "\n", encoding="utf-8")
    return str(dest)


if __name__ == "__main__":  # `python -m replaymill.pipeline.demo_corpus --task out/demo/task.txt` (make demo)
    import argparse

    parser = argparse.ArgumentParser(description="write the demo's fine-tuning task text")
    parser.add_argument("--task", required=True, metavar="PATH", help="where to write the task .txt")
    print(f"task text (Python reference topics) written to {write_demo_task(parser.parse_args().task)}")
