"""Emitting rejects from a Beam stage: build the one `Reject` shape, count its reason, tag it.

Every stage that drops records holds a `RejectEmitter`; each emitted reject increments the Beam
counter `replaymill.rejects/<reason>`, so the job's metrics show the same per-reason counts as
the manifest's funnel while the job runs (as TFDS C4 keeps a counter per rule).
"""
from __future__ import annotations

from typing import Any

import apache_beam as beam

from replaymill.schemas.reject import Reject, reject_document
from replaymill.transforms.tokens import estimate_tokens

NAMESPACE = "replaymill.rejects"
REJECTS_TAG = "rejects"


class RejectEmitter:
    """`emit = RejectEmitter(stage)`; inside `process`: `yield emit.document(doc, reason, detail)`.

    Counters are created per reason on first use (Beam counters are cheap handles, resolved
    against the running bundle at `inc()` time), so a DoFn may build its emitter in `__init__`.
    """

    def __init__(self, stage: str, tag: str = REJECTS_TAG):
        self.stage = stage
        self.tag = tag
        self._counters: dict[str, Any] = {}

    def emit(self, reject: Reject) -> beam.pvalue.TaggedOutput:
        """Count `reject`'s reason and tag it for the rejects output."""
        reason = reject["reason"]
        counter = self._counters.get(reason)
        if counter is None:
            counter = self._counters[reason] = beam.metrics.Metrics.counter(NAMESPACE, reason)
        counter.inc()
        return beam.pvalue.TaggedOutput(self.tag, reject)

    def document(self, doc: dict[str, Any], reason: str, detail: str = "",
                 matched_id: str | None = None) -> beam.pvalue.TaggedOutput:
        """Reject a document of this stage (id, source, text sample and token count taken from it; a
        document not yet annotated gets the same token estimate the build stores for kept ones)."""
        tokens = doc.get("n_tokens")
        if tokens is None and isinstance(doc.get("text"), str):
            tokens = estimate_tokens(doc["text"])
        return self.emit(reject_document(doc, reason, stage=self.stage, detail=detail, matched_id=matched_id,
                                         n_tokens=tokens))
