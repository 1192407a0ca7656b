"""The Annotate stage: language ID, quality signals, domain and token count, then the recipe's filters.

Language ID is `transforms.langid_cascade.LanguageCascade`: fastText, and lingua where fastText is
weak when the recipe's `langid.cascade` is on; `lang_model` says which decided, and Beam counters
`fasttext` / `lingua` (namespace "langid") count the decisions.

`kept, rejects = docs | "Annotate" >> Annotate(recipe)`. Documents travel in batches
(`beam.BatchElements`) so fastText predicts a whole batch in one C++ call and Beam's per-element
cost is paid once per batch; the fastText model is loaded once per worker in `setup()`. Every
document leaves either on `kept` with lang, lang_score, signals, quality, domain, n_tokens and
n_chars filled, or on `rejects` with a reason, counted by a Beam counter of the same name
(namespace "replaymill.rejects"). Each document's result depends only on that document, so the output does
not depend on batching, worker count or order.

Filters, in order (the first that fails names the reason):
  too_short / too_long        text length outside quality.min_chars..max_chars
  lang_not_kept               language not in langid.keep (when a keep-list is given)
  lang_score_low              the deciding model's score below langid.min_score
  <rule set>:<signal>         the first failing rule of an enabled quality rule set
  annotate_error              an unexpected exception on this one document (never seen; never a crash)
"""
from __future__ import annotations

from typing import Any, Iterator

import apache_beam as beam

from replaymill.pipeline import progress
from replaymill.pipeline.rejects import REJECTS_TAG, RejectEmitter
from replaymill.schemas.recipe import Recipe
from replaymill.transforms.domains import tag_domain
from replaymill.transforms.langid_cascade import LangResult, LanguageCascade
from replaymill.transforms.quality import Rule, compute_signals, first_failing, quality_score
from replaymill.transforms.quality.languages import read_stop_word_file
from replaymill.transforms.tokens import count_tokens, estimate_tokens, load_tokenizer

STAGE = "annotate"
REJECTS = REJECTS_TAG
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
LANG_NOT_KEPT = "lang_not_kept"
LANG_SCORE_LOW = "lang_score_low"
ANNOTATE_ERROR = "annotate_error"

MIN_BATCH = 16
MAX_BATCH = 512


class AnnotateBatchFn(beam.DoFn):
    """A batch of documents in; annotated documents (main output) and reject records (`rejects`) out."""

    def __init__(self, recipe: Recipe, tokenizer: str | None = None):
        self.tokenizer_path = tokenizer  # a real tokenizer counts n_tokens (one batched call) instead of the estimate
        self.langid = recipe.langid
        self.quality = recipe.quality
        self._keep = frozenset(recipe.langid.keep) if recipe.langid.keep is not None else None
        # Fails at pipeline construction, on the driver, if the model path is wrong.
        self._identifier = LanguageCascade(recipe.langid)
        self._progress = progress.reporter()
        # Stop-word files a recipe names, read here on the driver (a bad file fails before the run).
        self._stop_words = {lang: read_stop_word_file(path) for lang, path in recipe.quality.stop_words.items()}

    def setup(self) -> None:
        self._identifier.load()
        self._rejects = RejectEmitter(STAGE, REJECTS)
        self._tokenizer = load_tokenizer(self.tokenizer_path) if self.tokenizer_path else None
        self._decided = {model: beam.metrics.Metrics.counter("langid", model) for model in ("fasttext", "lingua")}
        # The recipe's rules per language: they depend only on the (fixed) quality config and the
        # language, and deriving them builds pydantic threshold models, so not once per document.
        self._rules: dict[str, list[tuple[str, Rule]]] = {}

    def _rules_for(self, lang: str) -> list[tuple[str, Rule]]:
        rules = self._rules.get(lang)
        if rules is None:
            rules = self._rules[lang] = self.quality.enabled_rules(lang)
        return rules

    def _length_reason(self, n_chars: int) -> tuple[str, str] | None:
        if n_chars < self.quality.min_chars:
            return TOO_SHORT, f"{n_chars} chars < min_chars {self.quality.min_chars}"
        if n_chars > self.quality.max_chars:
            return TOO_LONG, f"{n_chars} chars > max_chars {self.quality.max_chars}"
        return None

    def _lang_reason(self, lang: str, score: float) -> tuple[str, str] | None:
        if self._keep is not None and lang not in self._keep:
            return LANG_NOT_KEPT, f"lang {lang} ({score:.3f}) not in keep list"
        if score < self.langid.min_score:
            return LANG_SCORE_LOW, f"lang {lang} score {score:.3f} < min_score {self.langid.min_score}"
        return None

    def _finish(self, doc: dict[str, Any], language: LangResult) -> dict[str, Any] | tuple[str, str]:
        """The annotated copy of `doc`, or (reason, detail) when a filter drops it."""
        lang, score = language.lang, language.score
        reason = self._lang_reason(lang, score)
        if reason is not None:
            return reason
        text = doc["text"]
        signals = compute_signals(text, lang, self._stop_words)
        failed = first_failing(signals, self._rules_for(lang))
        if failed is not None:
            rule_set, signal = failed.split(":", 1)
            return failed, f"{signal}={signals[signal]:.4g} fails {rule_set}"
        out = dict(doc)
        out.update(
            lang=lang,
            lang_score=score,
            lang_model=language.model,
            signals=signals,
            quality=quality_score(signals, lang),
            domain=tag_domain(doc),
            n_chars=len(text),
            n_tokens=None if self.tokenizer_path else estimate_tokens(text),
        )
        return out

    def process(self, batch: list[dict[str, Any]]) -> Iterator[Any]:
        candidates = []
        for doc in batch:
            reason = self._length_reason(len(doc["text"]))
            if reason is None:
                candidates.append(doc)
            else:
                yield self._rejects.document(doc, *reason)
        predictions = self._identifier.predict_batch([d["text"] for d in candidates])
        self._progress.add("annotate.docs", len(batch))
        kept = []
        for doc, language in zip(candidates, predictions):
            self._decided[language.model].inc()
            try:
                result = self._finish(doc, language)
            except Exception as e:  # one bad document must not end the run: dead-letter it
                yield self._rejects.document(doc, ANNOTATE_ERROR, f"{type(e).__name__}: {e}")
                continue
            if isinstance(result, tuple):
                yield self._rejects.document(doc, *result)
            else:
                self._progress.add("annotate.kept")
                kept.append(result)
        if self._tokenizer is not None and kept:
            for doc, n in zip(kept, count_tokens([d["text"] for d in kept], self._tokenizer)):
                doc["n_tokens"] = n
        yield from kept

    def finish_bundle(self) -> None:
        self._progress.flush()


class Annotate(beam.PTransform):
    """`kept, rejects = docs | Annotate(recipe)`: annotate every document and apply the recipe's filters.

    With `tokenizer` (a tokenizer.json or HF tokenizer directory), n_tokens is that tokenizer's
    exact count, so a token budget downstream means the base model's tokens.
    """

    def __init__(self, recipe: Recipe, tokenizer: str | None = None):
        super().__init__()
        self.recipe = recipe
        self.tokenizer = tokenizer

    def expand(self, docs: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        results = (
            docs
            | "Batch" >> beam.BatchElements(min_batch_size=MIN_BATCH, max_batch_size=MAX_BATCH)
            | "AnnotateBatch" >> beam.ParDo(AnnotateBatchFn(self.recipe, self.tokenizer)).with_outputs(REJECTS, main="kept")
        )
        return results.kept, results[REJECTS]
