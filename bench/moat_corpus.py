"""The data of the data-moat experiment: a closed pre-training corpus and a disjoint open pool.

Documents come from three origins (web pages, code files, book text) plus distractors. Every
document belongs to a *unit* (the web site, the top-level Python module, a ~32 KB section of a
book); units, not documents, are dealt to the closed or the open side by a hash, so the open pool
shares no site, module or book section with the closed corpus: replay built from it is text the
base model never saw. Long texts are cut into documents of about `doc_chars` characters on line
boundaries, the same rule on both sides.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ORIGINS = ("web", "code", "books")
DOC_PREFIX = {"web": "web", "code": "code", "books": "books", "distractor": "dis"}
BOOK_SECTION_CHARS = 32_000


@dataclass
class Doc:
    """One document: its origin, the unit that decides its side, and the record written to the pool."""

    id: str
    text: str
    origin: str  # web | code | books | distractor
    unit: str
    record: dict = field(default_factory=dict)  # extra fields for the pool's JSONL (url, source, metadata)


def side_of(origin: str, unit: str, closed_fraction: float, salt: str) -> str:
    """"closed" or "open" for a unit: a stable hash, so the split is the same on every run and machine."""
    h = int.from_bytes(hashlib.blake2b(f"{salt}\0{origin}\0{unit}".encode(), digest_size=8).digest(), "big")
    return "closed" if h / 2**64 < closed_fraction else "open"


def chunk_lines(text: str, size: int) -> list[str]:
    """Consecutive lines packed into pieces of about `size` characters (a line longer than `size` is
    cut); blank lines inside a piece are kept, empty pieces dropped."""
    pieces, cur, n = [], [], 0
    for line in text.splitlines():
        while len(line) > size:
            if cur:
                pieces.append("\n".join(cur))
                cur, n = [], 0
            pieces.append(line[:size])
            line = line[size:]
        cur.append(line)
        n += len(line) + 1
        if n >= size:
            pieces.append("\n".join(cur))
            cur, n = [], 0
    if cur:
        pieces.append("\n".join(cur))
    return [p.strip("\n") for p in pieces if p.strip()]


def _jsonl_records(path: Path) -> Iterator[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and isinstance(rec.get("text"), str) and rec["text"].strip():
                    yield rec


def _url(rec: dict) -> str | None:
    meta = rec.get("metadata") if isinstance(rec.get("metadata"), dict) else {}
    for value in (rec.get("url"), meta.get("url"), meta.get("warc_url"), rec.get("subdomain")):
        if isinstance(value, str) and value:
            return value
    return None


def _host(url: str) -> str:
    try:
        host = urlsplit(url if "://" in url else "http://" + url).hostname or url
    except ValueError:
        host = url
    host = host.lower()
    return host[4:] if host.startswith("www.") else host


def expand(paths: list[str], suffixes: tuple[str, ...]) -> list[Path]:
    """Files named, or files with one of `suffixes` below named directories, sorted; each must exist."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file() and q.name.endswith(suffixes)))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p} does not exist")
    return out


def web_docs(paths: list[str], doc_chars: int, max_chars: float = float("inf")) -> list[Doc]:
    """Web pages from JSONL files (Dolma, C4, ... any record with `text`); unit = the site (URL host).
    Reading stops after `max_chars` characters."""
    docs, used = [], 0
    for path in expand(paths, (".jsonl", ".jsonl.gz", ".json.gz", ".json")):
        for i, rec in enumerate(_jsonl_records(path)):
            if used >= max_chars:
                break
            used += len(rec["text"])
            url = _url(rec)
            unit = _host(url) if url else f"{path.name}#{i // 50}"
            base = str(rec.get("id") or f"{path.name}:{i}")
            keep = {k: v for k, v in rec.items() if k not in ("id", "text")}
            for k, piece in enumerate(chunk_lines(rec["text"], doc_chars)):
                docs.append(Doc(f"web:{base}#c{k}", piece, "web", unit, keep))
    return docs


def code_docs(roots: list[str], doc_chars: int, max_chars: dict[str, int], closed_fraction: float,
              salt: str, min_bytes: int = 200, max_bytes: int = 200_000) -> list[Doc]:
    """Python files below `roots` (site-packages excluded); unit = top-level module or package.

    Files are read in a hashed order until each side holds `max_chars[side]` characters, so a
    large installation costs only what the experiment uses."""
    files = []
    for root in map(Path, roots):
        if not root.is_dir():
            raise FileNotFoundError(f"code root {root} is not a directory")
        for p in root.rglob("*.py"):
            rel = p.relative_to(root)
            if "site-packages" in rel.parts or "__pycache__" in rel.parts:
                continue
            files.append((root, rel))
    files.sort(key=lambda f: hashlib.blake2b(f"{salt}{f[1]}".encode(), digest_size=8).digest())
    used = {"closed": 0, "open": 0}
    docs = []
    for root, rel in files:
        unit = rel.parts[0].removesuffix(".py")
        side = side_of("code", unit, closed_fraction, salt)
        if used[side] >= max_chars[side]:
            if all(used[s] >= max_chars[s] for s in used):
                break
            continue
        try:
            raw = (root / rel).read_bytes()
        except OSError:
            continue
        if not min_bytes <= len(raw.strip()) <= max_bytes:
            continue
        text = raw.decode("utf-8", errors="replace")
        for k, piece in enumerate(chunk_lines(text, doc_chars)):
            docs.append(Doc(f"code:{rel.as_posix()}#c{k}", piece, "code", unit,
                            {"source": "python-stdlib-code", "metadata": {"path": rel.as_posix()}}))
            used[side] += len(piece)
    return docs


def book_docs(paths: list[str], doc_chars: int, max_chars: float = float("inf")) -> list[Doc]:
    """Plain-text books cut into documents. With several books the unit is the book (the open pool's
    books are other books); a single book can only be split by its ~32 KB sections (a few scenes or
    chapters), so the pool then holds other parts of the same book. At most `max_chars` characters
    of each book."""
    docs = []
    books = expand(paths, (".txt",))
    for path in books:
        text = path.read_text(encoding="utf-8", errors="replace")[:int(min(max_chars, 1 << 62))]
        offset = 0
        for k, piece in enumerate(chunk_lines(text, doc_chars)):
            unit = path.name if len(books) > 1 else f"{path.name}#{offset // BOOK_SECTION_CHARS}"
            offset += len(piece)
            docs.append(Doc(f"books:{path.stem}#c{k}", piece, "books", unit, {"source": "gutenberg"}))
    return docs


def distractor_docs(paths: list[str], doc_chars: int, max_chars: int) -> list[Doc]:
    """Other languages and other domains for the pool: text files (lines grouped into documents,
    labelled with the file name), JSONL files (their own fields), and .md/.rst documentation files
    below directories (at most 3 levels deep, licences skipped) up to `max_chars` per path."""
    docs = []
    for spec in map(Path, paths):
        if spec.is_dir():
            files = sorted(p for depth in range(4) for pat in ("*.md", "*.rst") for p in spec.glob("*/" * depth + pat)
                           if p.is_file() and not p.name.upper().startswith(("LICEN", "COPYING")))
        elif spec.is_file():
            files = [spec]
        else:
            raise FileNotFoundError(f"distractor {spec} does not exist")
        used = 0
        for path in files:
            if used >= max_chars:
                break
            if path.name.endswith((".jsonl", ".jsonl.gz", ".json.gz")):
                items = [(str(r.get("id") or f"{path.name}:{i}"), r["text"], {k: v for k, v in r.items()
                                                                               if k not in ("id", "text")})
                         for i, r in enumerate(_jsonl_records(path))]
            else:
                label = "site-packages-docs" if spec.is_dir() else path.stem
                items = [(path.name, path.read_text(encoding="utf-8", errors="replace"), {"source": label})]
            for base, text, rec in items:
                for k, piece in enumerate(chunk_lines(text, doc_chars)):
                    if used >= max_chars:
                        break
                    docs.append(Doc(f"dis:{base}#c{k}", piece, "distractor", str(path), rec))
                    used += len(piece)
    return docs


def stdlib_root() -> str:
    return sysconfig.get_paths()["stdlib"]


def purelib_root() -> str:
    return sysconfig.get_paths()["purelib"]


def write_pool_jsonl(docs: list[Doc], directory: Path, per_file: int = 2000) -> list[str]:
    """The open pool as Dolma-shaped JSONL.gz files (id, text and each document's own fields), so
    `replaymill build` reads, tags and counts it like any corpus."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, start in enumerate(range(0, len(docs), per_file)):
        path = directory / f"pool-{n:04d}.jsonl.gz"
        with gzip.open(path, "wt", encoding="utf-8") as f:
            for d in docs[start:start + per_file]:
                f.write(json.dumps({**d.record, "id": d.id, "text": d.text}, ensure_ascii=False) + "\n")
        paths.append(str(path))
    return paths


def write_text_jsonl(texts: list[tuple[str, str]], path: Path) -> str:
    """(id, text) pairs as JSONL with `id` and `text` (the trainer's task and eval format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for doc_id, text in texts:
            f.write(json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n")
    return str(path)
