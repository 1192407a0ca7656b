"""Plain text to documents: the one rule `build` and `train` share for `.txt` files.

A plain-text file has no record boundaries, so documents are made from its lines: blank lines
separate documents, and a run of non-blank lines is cut on a line boundary once it reaches
~TEXT_DOC_CHARS characters (a book with one paragraph per line would otherwise be one giant
document). So a book becomes many documents that can be deduplicated, split, shuffled and held out,
and a task file means the same documents to the trainer as to a build.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

TEXT_DOC_CHARS = 2000


class TextDocuments:
    """Feed lines (with their end-of-line) in order; get (offset of the first line, document) back.

    `add` returns a finished document or None; `flush` ends the last one (or the current one early,
    e.g. before a line that cannot be used). Offsets are whatever the caller numbers lines by
    (a byte offset makes a stable document id)."""

    def __init__(self, max_chars: int = TEXT_DOC_CHARS):
        self.max_chars = max_chars
        self._lines: list[str] = []
        self._size = 0
        self._start = 0

    def add(self, offset: int, line: str) -> tuple[int, str] | None:
        if not line.strip():
            return self.flush()
        if not self._lines:
            self._start = offset
        self._lines.append(line.rstrip("\r\n"))
        self._size += len(line)
        return self.flush() if self._size >= self.max_chars else None

    def flush(self) -> tuple[int, str] | None:
        if not self._lines:
            return None
        done = (self._start, "\n".join(self._lines))
        self._lines, self._size = [], 0
        return done


def text_documents(lines: Iterable[tuple[int, str]], max_chars: int = TEXT_DOC_CHARS) -> Iterator[tuple[int, str]]:
    """(offset of its first line, document) for every document of the numbered `lines`."""
    docs = TextDocuments(max_chars)
    for offset, line in lines:
        done = docs.add(offset, line)
        if done is not None:
            yield done
    last = docs.flush()
    if last is not None:
        yield last
