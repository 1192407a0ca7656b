"""Settings of the decontamination stage: which evaluation files, which n-grams, what counts, what to do.

A corpus document is contaminated by an evaluation document when it contains at least
`min_ngrams` of that document's distinct word `n`-grams and they make up at least `min_overlap` of
all its n-grams (`transforms.ngram_overlap`). `drop` removes it (reason `contaminated`, counted in
the funnel like every other reason); `flag` keeps it with the `contamination` column filled.

Why the defaults: n = 13 as GPT-3 (Brown et al. 2020, appendix C). `min_ngrams` = 3: a single
shared 13-gram is still sometimes a stock phrase or a quotation (GPT-3 had to drop frequent
13-grams for that reason), while a 13-word verbatim copy already gives 1 and a 50-word passage
with a word changed every 20 words still gives about 20 (measured in bench/decontam_quality.py).
`min_overlap` = 0: a long evaluation document quoted in part is contamination too.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from replaymill.transforms.minhash import MAX_NGRAM

CONTAMINATED = "contaminated"  # the reject reason of the drop action


class DecontaminateConfig(BaseModel):
    """`decontaminate:` in a recipe; on when `eval_files` is non-empty."""

    model_config = ConfigDict(extra="forbid")
    eval_files: list[str] = Field(default_factory=list, description="evaluation files or globs (JSONL/JSON/text)")
    n: int = Field(13, ge=1, le=MAX_NGRAM, description="words per n-gram")
    min_ngrams: int = Field(3, ge=1, description="distinct shared n-grams for a pair to count")
    min_overlap: float = Field(0.0, ge=0.0, le=1.0, description="fraction of the evaluation document's n-grams shared")
    action: Literal["drop", "flag"] = "drop"

    @property
    def enabled(self) -> bool:
        return bool(self.eval_files)
