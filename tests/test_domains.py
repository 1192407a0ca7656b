"""Domain tagging: corpus labels, metadata paths, URL rules and the code check."""
from __future__ import annotations

import gzip
import json
import sysconfig
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaymill.schemas.document import new_document
from replaymill.schemas.domains import DOLMA_SOURCES, DOMAINS, LABEL_TO_DOMAIN, PILE_SETS, REDPAJAMA_SETS, URL_RULES
from replaymill.transforms.domains import domain_from_label, domain_from_url, looks_like_code, tag_domain


def _doc(text="Some ordinary prose about a topic.", **kw) -> dict:
    return new_document("id", text, "test", **kw)


def test_every_mapping_targets_the_taxonomy():
    for table in (PILE_SETS, REDPAJAMA_SETS, DOLMA_SOURCES, LABEL_TO_DOMAIN):
        assert set(table.values()) <= set(DOMAINS)
    assert {rule[0] for rule in URL_RULES} <= set(DOMAINS)
    assert len(PILE_SETS) == 22


@pytest.mark.parametrize("label,domain", [
    ("Pile-CC", "web"), ("FreeLaw", "legal"), ("DM Mathematics", "math"), ("Github", "code"),
    ("Gutenberg (PG-19)", "books"), ("Wikipedia (en)", "wiki"), ("HackerNews", "forum"), ("ArXiv", "academic"),
    ("RedPajamaStackExchange", "forum"), ("RedPajamaBook", "books"), ("common_crawl", "web"), ("arxiv", "academic"),
    ("s2", "academic"), ("pes2o", "academic"), ("stack-v4", "code"), ("reddit", "forum"), ("gutenberg", "books"),
    ("python-stdlib-code", "code"), ("site-packages-license", "legal"), ("cc_news", "news"),
])
def test_corpus_labels(label, domain):
    assert tag_domain(_doc(source_label=label)) == domain


@pytest.mark.parametrize("url,domain", [
    ("https://en.wikipedia.org/wiki/Replay", "wiki"),
    ("http://arxiv.org/abs/2403.08763", "academic"),
    ("https://github.com/allenai/dolma", "code"),
    ("https://stackoverflow.com/questions/1/x", "forum"),
    ("https://www.reddit.com/r/MachineLearning/", "forum"),
    ("https://math.stackexchange.com/questions/2", "math"),
    ("https://www.bbc.co.uk/news/world-1", "news"),
    ("https://example.com/news/2019/07/17/story", "news"),
    ("https://www.law.cornell.edu/uscode/text/17", "legal"),
    ("https://www.supremecourt.gov/opinions/x.pdf", "legal"),
    ("https://www.gutenberg.org/ebooks/1342", "books"),
    ("https://forums.example.org/t/123", "forum"),
    ("www.lawncare-tips.com/mowing", None),  # "lawn" is not "law"
    ("https://example.com/recipes/pie", None),
    ("not a url at all", None),
])
def test_url_rules(url, domain):
    assert domain_from_url(url) == domain


def test_web_labels_are_refined_by_url_but_specific_labels_win():
    assert tag_domain(_doc(source_label="common-crawl", url="https://de.wikipedia.org/wiki/X")) == "wiki"
    assert tag_domain(_doc(source_label="common-crawl", url="https://example.com/")) == "web"
    assert tag_domain(_doc(source_label="FreeLaw", url="https://github.com/x")) == "legal"
    assert tag_domain(_doc(url="https://example.com/page")) == "web"
    assert tag_domain(_doc()) == "other"
    assert domain_from_label(None) is None and domain_from_label("unheard-of") is None


def test_metadata_path_extension_means_code():
    assert tag_domain(_doc(metadata=json.dumps({"path": "lib/json/decoder.py"}))) == "code"
    assert tag_domain(_doc(metadata=json.dumps({"max_stars_repo_path": "src/main.rs"}))) == "code"
    assert tag_domain(_doc(metadata=json.dumps({"path": "docs/README.md"}))) == "other"


def test_code_heuristic_on_real_source_and_prose(shared_data):
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sources = [p.read_text(encoding="utf-8") for p in sorted(stdlib.glob("*.py"))[:40]]
    assert sum(looks_like_code(s) for s in sources) >= 0.8 * len(sources)
    with gzip.open(shared_data / "dolma-cc" / "cc_en_head-0091.jsonl.gz", "rt", encoding="utf-8") as f:
        pages = [json.loads(line)["text"] for line in f]
    assert not any(looks_like_code(p) for p in pages)
    assert tag_domain(_doc(text=sources[0])) == "code"


def test_real_common_crawl_pages_by_url(shared_data):
    with gzip.open(shared_data / "dolma-cc" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz", "rt") as f:
        records = [json.loads(line) for line in f]
    tags = Counter(tag_domain(_doc(r["text"], url=r["metadata"]["warc_url"])) for r in records)
    assert set(tags) <= set(DOMAINS)
    assert tags["web"] > len(records) / 2 and tags["wiki"] > 0 and tags["forum"] > 0
    wiki = [r for r in records if ".wikipedia.org/" in r["metadata"]["warc_url"]]
    assert wiki and all(tag_domain(_doc(r["text"], url=r["metadata"]["warc_url"])) == "wiki" for r in wiki)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=80)), st.one_of(st.none(), st.text(max_size=80)),
       st.text(max_size=200), st.text(max_size=300))
def test_any_input_gets_a_taxonomy_domain(label, url, metadata, text):
    doc = new_document("x", text, "t", source_label=label, url=url, metadata=metadata)
    assert tag_domain(doc) in DOMAINS
    assert tag_domain(_doc(url="http://[::1")) == "web"  # unparsable URL: no rule, still web
