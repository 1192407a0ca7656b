"""The held-out split and the paired interval behind the cascade's thresholds (bench/langid_accuracy.py), and
the independent labelled texts they are checked on (bench/langid_independent.py)."""
from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys

import numpy as np

from replaymill.bench.langid_accuracy import SETS, Scored, half_of, make_sets, paired_interval
from replaymill.bench.langid_independent import bucket, doc_texts, prose_texts


def test_halves_are_disjoint_cover_the_data_and_do_not_depend_on_order(shared_data, tmp_path):
    lines = (shared_data / "lingua-sentences" / "de.txt").read_text(encoding="utf-8").splitlines()
    (tmp_path / "de.txt").write_text("\n".join(lines), encoding="utf-8")
    a, b, whole = (make_sets(tmp_path, list(SETS), 10**6, h) for h in ("A", "B", "all"))
    for name in SETS:
        ta, tb, all_texts = a[name]["de"], b[name]["de"], whole[name]["de"]
        assert not set(ta) & set(tb), name
        assert sorted(ta + tb) == sorted(all_texts)
        assert 0.4 < len(ta) / len(all_texts) < 0.6, (name, len(ta), len(all_texts))
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    random.Random(1).shuffle(lines)
    (shuffled / "de.txt").write_text("\n".join(lines), encoding="utf-8")
    again = make_sets(shuffled, ["sentences"], 10**6, "A")["sentences"]["de"]
    assert sorted(again) == sorted(a["sentences"]["de"])


def test_the_split_is_a_content_hash_not_pythons_salted_hash():
    # Fixed answers: a run on another machine or process draws the same halves.
    assert [half_of(t) for t in ("The dog barks.", "Der Hund bellt.", "a", "")] == ["A", "B", "B", "A"]


def _scored(rows: dict[str, list[bool]]) -> Scored:
    return Scored({"sentences": {lang: np.array(r, dtype=bool) for lang, r in rows.items()}}, None)


def test_paired_interval_is_zero_for_identical_answers_and_brackets_a_real_gain():
    y = _scored({"de": [True, False] * 50, "fr": [True] * 80 + [False] * 20})
    assert paired_interval(y, y)["mean"] == (0.0, 0.0, 0.0)
    x = _scored({"de": [True] * 100, "fr": [True] * 80 + [False] * 20})  # 50 more right in de only
    diff, lo, hi = paired_interval(x, y)["sentences"]
    assert diff == 0.25 and 0.15 < lo < diff < hi < 0.35


def test_independent_texts_take_their_label_from_the_file_name_or_the_document(shared_data, tmp_path):
    prose = prose_texts(shared_data / "prose", per_source=50, passage_words=300)
    assert {(x.source, x.lang) for x in prose} == {("de-grimm.txt", "de"), ("de-verne-20000.txt", "de"),
                                                   ("en-tinyshakespeare.txt", "en"), ("fr-Verne-2ans.txt", "fr")}
    for source in {x.source for x in prose}:
        lines = [x.text for x in prose if x.source == source and x.kind == "line"]
        passages = [x.text for x in prose if x.source == source and x.kind == "passage"]
        assert len(lines) == 50 and len(passages) == 50 and len(set(lines)) == 50
        assert all(len(t.split()) >= 3 and not t.endswith(":") for t in lines)
        assert all(len(t.split()) >= 300 for t in passages)
    assert prose == prose_texts(shared_data / "prose", per_source=50, passage_words=300)  # the same every run

    docs = tmp_path / "docs.jsonl.gz"
    with gzip.open(docs, "wt", encoding="utf-8") as f:
        for doc in ({"text": "Guten Tag, wie geht es Ihnen heute?\nok", "metadata": {"language": "de"}},
                    {"text": "no label here at all"}, {"text": 7, "metadata": {"language": "en"}}):
            f.write(json.dumps(doc) + "\n")
    labelled = doc_texts(str(docs), per_source=10)
    assert [(x.kind, x.lang, x.text) for x in labelled] == [
        ("document", "de", "Guten Tag, wie geht es Ihnen heute?\nok"), ("line", "de", "Guten Tag, wie geht es Ihnen heute?")]
    assert {x.lang for x in doc_texts(f"{docs}:fr", per_source=10)} == {"fr"}  # a given LANG wins, every text counts


def test_length_buckets_collapse_whitespace():
    assert [bucket("a" * 49), bucket("a" * 50), bucket("a" * 199), bucket("a" * 200)] == ["< 50", "50-199", "50-199", ">= 200"]
    assert bucket("word " * 10 + "   \n\t" * 40) == "< 50"


def test_independent_bench_refuses_a_missing_path_in_one_line(tmp_path):
    for flags in (["--prose", str(tmp_path / "none")], ["--docs", f"{tmp_path / 'none.jsonl'}:en"]):
        run = subprocess.run([sys.executable, "-m", "replaymill.bench.langid_independent", *flags],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
        assert run.stderr.strip().splitlines()[-1].endswith(("not a directory", "no such file"))
