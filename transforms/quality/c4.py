"""C4 page rules (Raffel et al. 2020, arXiv 1910.10683; the TFDS c4_utils reference code).

C4 deletes lines (no terminal punctuation, "javascript", cookie/terms policies); replaymill never
rewrites text, so those lines are measured and excluded from the sentence count, exactly as C4
counts sentences after removing them. Sentence count: sentence ends (. ! ? ... followed by space
or end of line) in lines C4 would keep (terminal punctuation, at least 3 words, no "javascript",
no cookie/terms policy, no word over 1000 characters, citations like [1] removed first); lorem
ipsum and `{` are searched in those same lines, as the TFDS reference code does.
"""
from __future__ import annotations

import re

from replaymill.transforms.quality.base import Rule, RuleSet, Thresholds
from replaymill.transforms.quality.text_view import TextView

C4_END_PUNCT = (".", "?", "!", '"', "'")
C4_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
C4_MAX_WORD_LENGTH = 1000
C4_MIN_WORDS_PER_LINE = 3

_C4_POLICY = re.compile("|".join(map(re.escape, C4_POLICY)))
_CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")
_SENTENCE_END = re.compile(r"(?:[.!?]+|…)['\"”’)\]]*(?=\s|$)")

SIGNALS: tuple[str, ...] = (
    "lorem_ipsum",
    "curly_brace",
    "javascript_line_frac",
    "policy_line_frac",
    "no_terminal_punct_line_frac",
    "sentences",
)


def compute(view: TextView) -> dict[str, float]:
    """C4's page-level facts over the non-empty stripped lines (see module docstring)."""
    lines = view.lines
    javascript = policy = no_terminal = sentences = 0
    lorem = curly = 0.0
    for line in lines:
        lower = line.lower()
        has_js = "javascript" in lower
        has_policy = _C4_POLICY.search(lower) is not None
        javascript += has_js
        policy += has_policy
        if len(line) > C4_MAX_WORD_LENGTH and max(map(len, line.split())) > C4_MAX_WORD_LENGTH:
            continue
        words = len(line.split())
        line = _CITATION.sub("", line).rstrip()
        if not line.endswith(C4_END_PUNCT) or line.endswith("..."):
            no_terminal += 1
            continue
        if words < C4_MIN_WORDS_PER_LINE:
            continue
        if "lorem ipsum" in lower:
            lorem = 1.0
        if has_js:
            continue
        if "{" in line:
            curly = 1.0
        if has_policy:
            continue
        sentences += max(1, len(_SENTENCE_END.findall(line)))
    n = max(len(lines), 1)
    return {
        "lorem_ipsum": lorem,
        "curly_brace": curly,
        "javascript_line_frac": javascript / n,
        "policy_line_frac": policy / n,
        "no_terminal_punct_line_frac": no_terminal / n,
        "sentences": float(sentences),
    }


class C4Rules(Thresholds):
    """C4 page rules: lorem ipsum, curly brace, too few sentences (line deletions are measured only)."""

    drop_lorem_ipsum: bool = True
    drop_curly_brace: bool = True
    min_sentences: int | None = 5

    def rules(self) -> list[Rule]:
        out = []
        if self.drop_lorem_ipsum:
            out.append(Rule("lorem_ipsum", "lt", 0.5))  # 0/1 indicator signals
        if self.drop_curly_brace:
            out.append(Rule("curly_brace", "lt", 0.5))
        if self.min_sentences is not None:
            out.append(Rule("sentences", "ge", float(self.min_sentences)))
        return out


RULE_SET = RuleSet(
    name="c4",
    signals=SIGNALS,
    compute=compute,
    thresholds=C4Rules,
    citation="Raffel et al. 2020, Exploring the Limits of Transfer Learning with a Unified Text-to-Text "
             "Transformer (arXiv 1910.10683), section 2.2; TFDS c4_utils",
    order=30,
)
