"""Domain tagging: a document's corpus label, file path, URL or (last) content to one taxonomy name.

The order, and why: a corpus's own label is the most reliable evidence (a Pile `FreeLaw` document
is legal whatever its text says), except labels that only say "web", which URL rules refine; a
path in the metadata says what a file is; URL rules sort untagged web pages; a cheap line-shape
check catches code among untagged files. Tables live in `schemas.domains`.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from replaymill.schemas.domains import CODE_EXTENSIONS, LABEL_TO_DOMAIN, LABEL_WORDS, URL_RULES

_LABEL_SPLIT = re.compile(r"[-_./\s]+")
_HOST_SPLIT = re.compile(r"[.\-]")
# A path-like value under a key that names a file, inside the metadata JSON text (no full parse).
_META_PATH = re.compile(
    r'"(?:path|file_path|filepath|filename|file_name|max_stars_repo_path|repo_path)"\s*:\s*"([^"]{1,1000})"'
)
_CODE_LINE = re.compile(
    r"^\s*(?:def |class |import |from [\w.]+ import |#include|#define |#!|return\b|raise |try:|except\b|elif |"
    r"public |private |protected |static |function\b|var |let |const |fn |package |using |@\w+|//|/\*|\*/|\}|"
    r"(?:if|for|while|else|with|elif|except|finally)\b.*:\s*$|[\w.\[\]'\"]+\s*[-+*/|&]?=\s*\S)|[;{}]\s*$"
)
CODE_MIN_LINES = 5
CODE_LINE_FRAC = 0.3
CODE_SCAN_LINES = 200


def domain_from_label(label: str | None) -> str | None:
    """A corpus label (Pile set, RedPajama set, Dolma source, ...) to a domain, or None if unknown."""
    if not label:
        return None
    key = label.strip().lower()
    if key in LABEL_TO_DOMAIN:
        return LABEL_TO_DOMAIN[key]
    for word in _LABEL_SPLIT.split(key):
        if word in LABEL_WORDS:
            return LABEL_WORDS[word]
    return None


def domain_from_path(metadata: str | None) -> str | None:
    """"code" when the metadata JSON names a file whose extension is a programming language's."""
    if not metadata:
        return None
    match = _META_PATH.search(metadata)
    if match is None:
        return None
    name = match.group(1).rsplit("/", 1)[-1].lower()
    ext = name.rsplit(".", 1)[-1] if "." in name else name
    return "code" if ext in CODE_EXTENSIONS else None


def domain_from_url(url: str | None) -> str | None:
    """The first URL rule (host suffix, host word or path substring) that matches, or None."""
    if not url:
        return None
    try:
        parts = urlsplit(url if "://" in url else "http://" + url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    host = host[4:] if host.startswith("www.") else host
    words = set(_HOST_SPLIT.split(host))
    path = parts.path.lower()
    for domain, suffixes, host_words, path_parts in URL_RULES:
        if any(host == s or host.endswith("." + s) for s in suffixes):
            return domain
        if not words.isdisjoint(host_words):
            return domain
        if any(p in path for p in path_parts):
            return domain
    return None


def looks_like_code(text: str) -> bool:
    """At least 30% of the first 200 non-blank lines (and 5 or more) have the shape of code."""
    lines = [line for line in text.split("\n", CODE_SCAN_LINES * 2)[: CODE_SCAN_LINES * 2] if line.strip()]
    lines = lines[:CODE_SCAN_LINES]
    if len(lines) < CODE_MIN_LINES:
        return False
    return sum(_CODE_LINE.search(line) is not None for line in lines) >= CODE_LINE_FRAC * len(lines)


def tag_domain(doc: dict[str, Any]) -> str:
    """The domain of one in-flight document (reads source_label, metadata, url, text)."""
    label_domain = domain_from_label(doc.get("source_label"))
    if label_domain is not None and label_domain != "web":
        return label_domain
    path_domain = domain_from_path(doc.get("metadata"))
    if path_domain is not None:
        return path_domain
    url = doc.get("url")
    url_domain = domain_from_url(url)
    if url_domain is not None:
        return url_domain
    if label_domain is not None or url:
        return "web"
    return "code" if looks_like_code(doc.get("text") or "") else "other"
