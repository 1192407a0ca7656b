"""Language ID as a cascade: fastText for every text, lingua where fastText is unreliable.

Measured on the shared lingua sentences (bench/langid_accuracy.py), fastText lid.176 is right on
0.80 of sentences (macro over 75 languages) and 0.60 of word pairs, lingua on 0.96 and 0.88, but
lingua is about 30x slower and its short-text models take ~1 GB. So fastText answers first, with
its top-k labels, and lingua decides only where that answer is weak:

1. fastText's text is shorter than `below_chars`, or its probability is below `below_score`;
2. unless fastText names a language lingua does not know (gl, ceb, ...) with probability at least
   `defer_score`: lingua could only answer with a different language there;
3. and, with a keep-list, only if a kept language is plausible: among fastText's `top_k` answers,
   or one fastText cannot name at all. Elsewhere the document is dropped whatever lingua says, so
   asking it would only cost time (this is what keeps an English-only build fast).

Separately, when fastText answers a macrolanguage that lingua splits (`no` -> nb/nn, `sh` ->
bs/hr/sr), lingua chooses the member among those few languages only (cheap, and what keep-lists
name); the score stays fastText's probability for the macrolanguage.

Every answer says which model decided (`LangResult.model`), stored beside `lang` and `lang_score`.
lingua's models load lazily per language and n-gram order: texts of 120+ characters need only
trigram models (~100 MB for all Latin-script languages), shorter ones all orders (~1 GB).
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable, NamedTuple

from replaymill.schemas.langid import LangIdConfig
from replaymill.transforms.langid import UNDETERMINED, LanguageIdentifier, prepare_text

FASTTEXT = "fasttext"
LINGUA = "lingua"

# Macrolanguages fastText (lid.176) answers whose members lingua tells apart.
MACROLANGUAGES: dict[str, tuple[str, ...]] = {"no": ("nb", "nn"), "sh": ("bs", "hr", "sr")}


_CODE = re.compile(r"[a-z]{2,3}")


def unknown_keep_codes(config: LangIdConfig) -> list[str]:
    """Codes in `langid.keep` that no configured model can answer, each with why (for pre-flight).

    With the default lid.176 every code is checked against its labels, plus lingua's when the
    cascade is on (so `zu` without the cascade is refused: no model would ever say it). A custom
    fastText model is not loaded on the driver (it may be GBs): its codes are only checked to look
    like ISO 639 (2-3 lowercase letters). A missing or invalid model file raises as in
    `LanguageIdentifier`.
    """
    cascade = LanguageCascade(config)
    if not config.keep:
        return []
    if config.model_path is not None:
        return [f"{c} (not an ISO 639 code)" for c in config.keep if not _CODE.fullmatch(c)]
    known = cascade.known_codes()
    out = []
    for code in config.keep:
        if code in known:
            continue
        why = "known to lingua: set langid.cascade: true" if code in lingua_codes() else "no model answers it"
        out.append(f"{code} ({why})")
    return out


class LangResult(NamedTuple):
    """One text's language: code, score in [0, 1], and the model that decided ("fasttext"/"lingua")."""

    lang: str
    score: float
    model: str


@lru_cache(maxsize=None)
def lingua_codes() -> frozenset[str]:
    """ISO 639-1 codes of every language lingua knows (75 in lingua-language-detector 2.x)."""
    from lingua import Language

    return frozenset(lang.iso_code_639_1.name.lower() for lang in Language.all())


# lingua sums its n-gram probabilities over Rust hash maps whose iteration order differs between
# processes, so the last bits of a confidence vary from run to run (one text, three processes:
# 0.9403352644450185, ...194, ...191). Rounded to 9 places, a document's lang_score, and so the
# content hash that orders rows and picks among duplicates, is the same on every worker.
SCORE_DIGITS = 9


def _top(values) -> tuple[str, float]:
    """(code, confidence) of lingua's top language, or ("und", 0.0) when it has none."""
    if not values or values[0].value <= 0.0:
        return UNDETERMINED, 0.0
    return values[0].language.iso_code_639_1.name.lower(), round(min(max(values[0].value, 0.0), 1.0), SCORE_DIGITS)


class LinguaIdentifier:
    """lingua's detector over all its languages, built lazily once per process and never pickled.

    `predict` returns lingua's relative confidence of its top language (0-1; the values over all
    candidate languages sum to 1) and "und" for text without letters. Detectors restricted to a
    few languages (for splitting macrolanguages) share the same lazily loaded models.
    """

    def __init__(self, max_chars: int = 500, low_accuracy: bool = False):
        self.max_chars = max_chars
        self.low_accuracy = low_accuracy
        self._detectors: dict[tuple[str, ...] | None, object] = {}

    def __getstate__(self) -> dict:
        return {"max_chars": self.max_chars, "low_accuracy": self.low_accuracy, "_detectors": {}}

    def _detector(self, codes: tuple[str, ...] | None = None):
        detector = self._detectors.get(codes)
        if detector is None:
            from lingua import IsoCode639_1, LanguageDetectorBuilder

            if codes is None:
                builder = LanguageDetectorBuilder.from_all_languages()
            else:
                builder = LanguageDetectorBuilder.from_iso_codes_639_1(
                    *(getattr(IsoCode639_1, c.upper()) for c in codes))
            if self.low_accuracy:
                builder = builder.with_low_accuracy_mode()
            detector = self._detectors[codes] = builder.build()
        return detector

    def predict_many(self, texts: list[str]) -> list[tuple[str, float]]:
        """`predict` for many texts with lingua's own thread pool (all cores): for offline use such as
        benchmarks; a Beam worker is one process per core and calls `predict`."""
        prepared = [prepare_text(t, self.max_chars) for t in texts]
        return [_top(values) for values in self._detector().compute_language_confidence_values_in_parallel(prepared)]

    def predict(self, text: str, among: tuple[str, ...] | None = None) -> tuple[str, float]:
        """(code, confidence) of one text, among all languages or only the codes in `among`."""
        prepared = prepare_text(text, self.max_chars)
        if not prepared:
            return UNDETERMINED, 0.0
        return _top(self._detector(among).compute_language_confidence_values(prepared))


class LanguageCascade:
    """fastText, then lingua where fastText is weak (see the module docstring); built from `langid:`.

    Picklable and cheap to construct: fastText checks its file header on the driver and loads in
    `load()` (a Beam DoFn's `setup`); lingua builds its detector on first use.
    """

    def __init__(self, config: LangIdConfig):
        self.config = config
        self.fasttext = LanguageIdentifier(config.model_path)
        self.lingua = LinguaIdentifier(config.cascade.max_chars, config.cascade.low_accuracy) \
            if config.cascade.enabled else None
        self.keep = frozenset(config.keep) if config.keep is not None else None
        self._blind: frozenset[str] | None = None  # languages lingua knows and fastText cannot name

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_blind": None}

    def load(self) -> LanguageCascade:
        """Load fastText now and, with lingua on (the only user), derive which lingua languages
        fastText cannot name: that reads the whole model file and imports lingua (idempotent)."""
        self.fasttext.load()
        if self._blind is None and self.lingua is not None:
            named = set(self.fasttext.labels)
            named |= {m for macro, members in MACROLANGUAGES.items() if macro in named for m in members}
            self._blind = lingua_codes() - named
        return self

    def known_codes(self) -> frozenset[str]:
        """Every code this cascade can answer: fastText's labels, plus lingua's languages when enabled."""
        codes = set(self.fasttext.labels)
        if self.lingua is not None:
            codes |= lingua_codes()
        return frozenset(codes)

    def _keep_plausible(self, top: list[tuple[str, float]]) -> bool:
        if self.keep & self._blind:
            return True
        return any(code in self.keep or self.keep.intersection(MACROLANGUAGES.get(code, ()))
                   for code, _ in top[: self.config.cascade.top_k])

    def _needs_lingua(self, text: str, top: list[tuple[str, float]]) -> bool:
        settings = self.config.cascade
        code, score = top[0]
        short = len(prepare_text(text, settings.below_chars)) < settings.below_chars
        if not short and score >= settings.below_score:
            return False
        if code not in lingua_codes() and code not in MACROLANGUAGES and score >= settings.defer_score:
            return False
        return self.keep is None or self._keep_plausible(top)

    def decide(self, text: str, top: list[tuple[str, float]]) -> LangResult:
        """The cascade's answer for one text given fastText's top answers for it."""
        code, score = top[0]
        if code == UNDETERMINED:
            return LangResult(code, score, FASTTEXT)
        if self._needs_lingua(text, top):
            lingua_code, lingua_score = self.lingua.predict(text)
            if lingua_code != UNDETERMINED:
                return LangResult(lingua_code, lingua_score, LINGUA)
        if code in MACROLANGUAGES:
            member, _ = self.lingua.predict(text, among=MACROLANGUAGES[code])
            if member != UNDETERMINED:
                return LangResult(member, score, LINGUA)
        return LangResult(code, score, FASTTEXT)

    def predict_batch(self, texts: Iterable[str]) -> list[LangResult]:
        """One LangResult per text, in order; ("und", 0.0, "fasttext") for empty text."""
        texts = list(texts)
        if self.lingua is None:
            return [LangResult(code, score, FASTTEXT) for code, score in self.fasttext.predict_batch(texts)]
        self.load()
        k = self.config.cascade.top_k if self.keep is not None else 1
        return [self.decide(text, top) for text, top in zip(texts, self.fasttext.predict_top_k(texts, k))]

    def predict(self, text: str) -> LangResult:
        """One text (a batch of one)."""
        return self.predict_batch([text])[0]
