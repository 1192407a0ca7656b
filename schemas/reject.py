"""The one shape of a dropped record: every stage that drops something emits a `Reject`.

A reject is a dead letter, not an error: the run goes on, the reason is counted (a Beam counter
named after the reason in the `replaymill.rejects` namespace, see `pipeline.rejects`) and summed
into the manifest's funnel, and with `output.write_rejects` the record itself lands in `_rejects/`.
Inside Beam it travels as a plain dict (cheap to pickle, JSON as is), typed by `Reject`.

Reasons are unique across stages (`malformed_json`, `too_short`, `gopher_quality:stop_words`,
`exact_duplicate`, ...), so the reason alone says why; `stage` says where.
"""
from __future__ import annotations

from typing import Any, TypedDict

SAMPLE_CHARS = 200


class Reject(TypedDict):
    """A dropped record: why (`reason`), where (`stage`), what (`id`, `source`, a text `sample`),
    a human `detail`, for duplicates the id of the document that was kept (`matched_id`), and the
    dropped document's token estimate (`n_tokens`: None for reader rejects, which have no text),
    so the funnel says how many tokens each reason removed."""

    reason: str
    stage: str
    id: str | None
    source: str | None
    detail: str
    sample: str
    matched_id: str | None
    n_tokens: int | None


REJECT_FIELDS: tuple[str, ...] = tuple(Reject.__annotations__)


def make_reject(
    reason: str,
    *,
    stage: str = "read",
    id: str | None = None,
    source: str | None = None,
    detail: str = "",
    sample: str | bytes = "",
    matched_id: str | None = None,
    n_tokens: int | None = None,
) -> Reject:
    """A Reject with its sample cut to 200 characters (bytes decoded leniently; surrogates replaced).

    `stage` defaults to "read": most rejects are records that never became documents. A reject
    often quotes the bad input it names (an id with a lone surrogate, an undecodable file name),
    so `id`, `source` and `detail` are made encodable too: the record must always be writable.
    """
    if isinstance(sample, (bytes, bytearray)):
        sample = bytes(sample[: SAMPLE_CHARS * 4]).decode("utf-8", errors="replace")
    sample = sample[:SAMPLE_CHARS].encode("utf-8", errors="replace").decode("utf-8")
    return Reject(reason=reason, stage=stage, id=_encodable_or_none(id), source=_encodable_or_none(source),
                  detail=encodable(detail), sample=sample, matched_id=_encodable_or_none(matched_id),
                  n_tokens=None if n_tokens is None else int(n_tokens))


def is_encodable(text: str) -> bool:
    """Whether UTF-8 (so Arrow, and any file we write) can hold `text`: no lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def encodable(text: str) -> str:
    """`text` itself when UTF-8 can hold it, else with each lone surrogate written as `\\udXXX`."""
    return text if is_encodable(text) else text.encode("utf-8", errors="backslashreplace").decode("utf-8")


def _encodable_or_none(text: str | None) -> str | None:
    return None if text is None else encodable(text)


def reject_document(
    doc: dict[str, Any], reason: str, *, stage: str, detail: str = "", matched_id: str | None = None,
    n_tokens: int | None = None,
) -> Reject:
    """The Reject of a document (an in-flight document dict): its id, source, a text sample and
    its token count (`n_tokens`, else the document's own `n_tokens`)."""
    text = doc.get("text")
    return make_reject(reason, stage=stage, id=doc.get("id"), source=doc.get("source"), detail=detail,
                       sample=text if isinstance(text, str) else "", matched_id=matched_id,
                       n_tokens=doc.get("n_tokens") if n_tokens is None else n_tokens)
