"""HTML to main text for WARC response records.

Boilerplate (scripts, styles, navigation, headers, footers, forms) is removed and block elements
become line breaks, so that the line-level quality rules (Gopher, C4, FineWeb) see the page's
paragraphs as lines, the way Common Crawl's WET extraction presents them. Inline markup joins
into its paragraph; whitespace from source formatting is collapsed (inside `<pre>` too, except
that its line breaks are kept, so code stays one statement per line).
"""
from __future__ import annotations

import codecs
import re

from selectolax.lexbor import LexborHTMLParser

# Not main content: code, styling, embedded media, and page furniture.
DROP_TAGS = (
    "script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "embed",
    "head", "nav", "header", "footer", "aside", "form", "button", "select", "menu",
)
# Elements that start a new line: paragraphs, headings, list items, table rows and cells, breaks.
BLOCK_TAGS = (
    "p", "div", "section", "article", "main", "blockquote", "address", "figure", "figcaption",
    "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd", "table", "tr", "td", "th",
    "caption", "br", "hr", "details", "summary",
)
_BREAK = "\ue000"  # private-use marker: a block boundary, kept apart from source whitespace
_SPACES = re.compile(r"\s+")
_DROP_SELECTOR = ",".join(DROP_TAGS)
_BLOCK_SELECTOR = ",".join(BLOCK_TAGS)
# Declared charsets that browsers read as a wider superset (a page labelled gb2312 is decoded as GB18030).
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "iso-8859-1": "cp1252", "latin-1": "cp1252", "ascii": "cp1252"}


def decode_html(payload: bytes, charset: str | None) -> str | bytes:
    """Decode with the HTTP header's charset when Python knows it; else return the bytes so the
    parser detects the encoding from a BOM or `<meta charset>` (defaulting to UTF-8)."""
    if charset:
        name = _SUPERSETS.get(charset.strip().strip("\"'").lower(), charset.strip().strip("\"'"))
        try:
            codecs.lookup(name)
        except LookupError:
            return payload
        return payload.decode(name, errors="replace")
    return payload


def html_to_text(html: str | bytes) -> str:
    """The visible main text of an HTML page, one block element per line, blank lines removed."""
    tree = LexborHTMLParser(html, encoding=isinstance(html, bytes))
    for node in tree.css(_DROP_SELECTOR):
        node.decompose()
    root = tree.body or tree.root
    if root is None:
        return ""
    for node in root.css("pre"):  # preformatted text (code) keeps its line breaks
        node.replace_with(_BREAK + node.text(deep=True).replace("\n", _BREAK) + _BREAK)
    for node in root.css(_BLOCK_SELECTOR):
        node.insert_before(_BREAK)
        node.insert_after(_BREAK)
    raw = root.text(deep=True, separator="")
    lines = (_SPACES.sub(" ", part).strip() for part in raw.split(_BREAK))
    return "\n".join(line for line in lines if line)


def charset_of(content_type: str | None) -> str | None:
    """The `charset=` parameter of a Content-Type header value, if any."""
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip()
    return None
