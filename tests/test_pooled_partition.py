"""The minimum partition size: a domain's small languages share one `lang=other` partition."""
from __future__ import annotations

import apache_beam as beam
import pyarrow.dataset as pads

from replaymill.pipeline.options import make_options
from replaymill.pipeline.sink import WriteManifest, WriteShards, partition_layout
from replaymill.schemas.document import new_document
from replaymill.shards.io import read_manifest


def test_layout_pools_two_or_more_small_languages_never_the_largest():
    sizes = {("web", "en"): 5000, ("web", "de"): 10, ("web", "fr"): 20, ("web", "it"): 3000,
             ("code", "en"): 10, ("code", "de"): 5,            # a small domain keeps its largest language
             ("wiki", "en"): 9000, ("wiki", "cs"): 7}          # one small language alone is not pooled
    layout = partition_layout(sizes, 1000)
    assert layout == {("web", "en"): "en", ("web", "de"): "other", ("web", "fr"): "other", ("web", "it"): "it",
                      ("code", "en"): "en", ("code", "de"): "de", ("wiki", "en"): "en", ("wiki", "cs"): "cs"}
    assert partition_layout(sizes, 0) == {k: k[1] for k in sizes}  # 0 turns pooling off


def test_pooled_rows_keep_their_language_and_the_manifest_says_which(tmp_path):
    langs = {"en": 40, "de": 1, "fr": 1, "ja": 2}
    docs = []
    for lang, n in langs.items():
        for i in range(n):
            d = new_document(f"{lang}-{i}", f"text {lang} {i} " * 20, "test")
            d.update(domain="web", lang=lang, n_tokens=40, n_chars=len(d["text"]))
            docs.append(d)
    out = tmp_path / "out"
    big = sum(len(d["text"]) for d in docs if d["lang"] == "en")
    with beam.Pipeline(options=make_options(running_mode="in_memory")) as p:
        infos = p | beam.Create(docs) | WriteShards(str(out), 1 << 30, min_partition_bytes=big)
        funnel = p | "Funnel" >> beam.Create([{"read": len(docs), "dropped": {}, "kept": len(docs)}])
        infos | WriteManifest(str(out), funnel, None, inputs=["t"], recipe={}, package_versions={}, tool_version="t")
    manifest = read_manifest(str(out))
    assert sorted(s.path for s in manifest.shards) == ["domain=web/lang=en/part-00000.arrow",
                                                       "domain=web/lang=other/part-00000.arrow"]
    assert manifest.pooled_langs == {"web": ["de", "fr", "ja"]}
    assert {lang: t.docs for lang, t in manifest.by_lang.items()} == langs  # totals by real language
    other = next(s for s in manifest.shards if s.lang == "other")
    assert {k: v.docs for k, v in other.langs.items()} == {"de": 1, "fr": 1, "ja": 2}
    rows = pads.dataset(str(out / other.path), format="arrow").to_table().column("lang").to_pylist()
    assert sorted(rows) == ["de", "fr", "ja", "ja"]
