"""The domain taxonomy and the mappings from each corpus's own labels onto it.

`transforms.domains.tag_domain` applies these in order: the corpus label (exact, then by the
words inside it), a file path in the metadata (by extension), URL rules, a content check for
code, and finally "web" for anything with a URL and "other" for the rest. A corpus label that
only says "web" (Common Crawl, C4, OpenWebText) is refined by the URL rules when one matches,
so a Wikipedia page inside Common Crawl is tagged wiki. Presets in `schemas.mixtures` are
expressed over the same names.
"""
from __future__ import annotations

DOMAINS: tuple[str, ...] = (
    "web", "code", "wiki", "books", "academic", "forum", "news", "legal", "math", "other",
)

# Topical domains that are slices of crawled web pages. The taxonomy tags a news site or a forum
# found in Common Crawl by its topic, but published mixtures are by *source*: LLaMA's CommonCrawl
# and C4 shares include news sites and forums. So a target that does not name one of these
# domains counts it toward its `web` share (`shards.sampler.key_for`; the sample report lists it
# under `folded`); a target that names it (every preset names `forum`, e.g. StackExchange) keeps
# it apart. Other unnamed domains (legal, math, other, ...) are left out of the sample, and
# `replaymill sample` warns with their size.
WEB_TOPICS: dict[str, str] = {"news": "web", "forum": "web"}

# The Pile's 22 `pile_set_name` values (Gao et al. 2020, table 1).
PILE_SETS: dict[str, str] = {
    "Pile-CC": "web",
    "OpenWebText2": "web",
    "PubMed Central": "academic",
    "PubMed Abstracts": "academic",
    "ArXiv": "academic",
    "PhilPapers": "academic",
    "NIH ExPorter": "academic",
    "Books3": "books",
    "Gutenberg (PG-19)": "books",
    "BookCorpus2": "books",
    "Github": "code",
    "FreeLaw": "legal",
    "USPTO Backgrounds": "legal",
    "StackExchange": "forum",
    "Ubuntu IRC": "forum",
    "HackerNews": "forum",
    "Wikipedia (en)": "wiki",
    "DM Mathematics": "math",
    "EuroParl": "other",          # parliamentary debates, parallel multilingual
    "OpenSubtitles": "other",
    "YoutubeSubtitles": "other",
    "Enron Emails": "other",
}

# RedPajama-1T / SlimPajama `redpajama_set_name` values and RedPajama-1T's file-level subset names.
REDPAJAMA_SETS: dict[str, str] = {
    "RedPajamaCommonCrawl": "web",
    "RedPajamaC4": "web",
    "RedPajamaGithub": "code",
    "RedPajamaBook": "books",
    "RedPajamaArXiv": "academic",
    "RedPajamaWikipedia": "wiki",
    "RedPajamaStackExchange": "forum",
    "common_crawl": "web",
    "c4": "web",
    "github": "code",
    "book": "books",
    "arxiv": "academic",
    "wikipedia": "wiki",
    "stackexchange": "forum",
}

# Dolma `source` values (v1 to v1.7 and OLMo mixes).
DOLMA_SOURCES: dict[str, str] = {
    "common-crawl": "web",
    "cc": "web",
    "cc_en_head": "web",
    "cc_en_middle": "web",
    "cc_en_tail": "web",
    "falcon": "web",
    "refinedweb": "web",
    "c4": "web",
    "s2": "academic",
    "s2orc": "academic",
    "s2ag": "academic",
    "pes2o": "academic",
    "arxiv": "academic",
    "stack-v4": "code",
    "stack-dedup": "code",
    "starcoder": "code",
    "the-stack": "code",
    "reddit": "forum",
    "stackexchange": "forum",
    "gutenberg": "books",
    "books": "books",
    "wiki": "wiki",
    "wikipedia": "wiki",
    "wikibooks": "wiki",
    "megawika": "wiki",
    "cc-news": "news",
    "cc_news": "news",
    "open-web-math": "math",
    "algebraic-stack": "math",
    "proof-pile-2": "math",
    "mathpile": "math",
    "tulu_flan": "other",
    "flan": "other",
}


def _lower_keys(*tables: dict[str, str]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for table in tables:
        for label, domain in table.items():
            merged[label.lower()] = domain
    return merged


# Every known label, lowercased (the tables agree wherever two corpora share a label).
LABEL_TO_DOMAIN: dict[str, str] = _lower_keys(PILE_SETS, REDPAJAMA_SETS, DOLMA_SOURCES)

# Words inside an unknown label (split on - _ . / space) that name a domain, e.g. "python-stdlib-code".
LABEL_WORDS: dict[str, str] = {
    "code": "code", "github": "code", "starcoder": "code",
    "wiki": "wiki", "wikipedia": "wiki",
    "book": "books", "books": "books", "gutenberg": "books",
    "arxiv": "academic", "paper": "academic", "papers": "academic", "pubmed": "academic", "s2orc": "academic",
    "reddit": "forum", "stackexchange": "forum", "forum": "forum",
    "news": "news",
    "law": "legal", "legal": "legal", "license": "legal", "licence": "legal", "patent": "legal", "patents": "legal",
    "math": "math", "mathematics": "math",
    "web": "web", "cc": "web", "crawl": "web", "c4": "web",
}

# File extensions that make a document code when its metadata names a path (The Stack's
# `max_stars_repo_path`, the demo corpus's `path`, ...).
CODE_EXTENSIONS: frozenset[str] = frozenset(
    "py pyi pyx c h cc cpp cxx hpp hh java js mjs ts tsx jsx go rs rb php cs swift kt kts scala sh bash "
    "zsh ps1 pl pm lua r jl hs ml mli ex exs erl clj el lisp scm f f90 f95 m mm sql vb fs dart groovy "
    "asm s cu cuh vue svelte cmake mk makefile dockerfile proto thrift toml yaml yml json ipynb".split()
)

# URL rules, checked in this order: (domain, host suffixes, host words, path substrings).
# A host suffix matches the host or any subdomain of it; a host word is one dot/dash-separated
# piece of the host; a path substring is searched in the lowercased path.
URL_RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    ("math", (
        "mathoverflow.net", "math.stackexchange.com", "mathworld.wolfram.com", "proofwiki.org",
        "artofproblemsolving.com", "oeis.org", "planetmath.org", "mathhelpforum.com", "mathsisfun.com",
        "purplemath.com", "brilliant.org", "mathpages.com", "cut-the-knot.org",
    ), ("math", "maths", "mathematics"), ()),
    ("legal", (
        "law.cornell.edu", "courtlistener.com", "justia.com", "findlaw.com", "supremecourt.gov",
        "uscourts.gov", "legislation.gov.uk", "eur-lex.europa.eu", "congress.gov", "govinfo.gov",
        "casetext.com", "legifrance.gouv.fr", "gesetze-im-internet.de", "bailii.org", "austlii.edu.au",
        "canlii.org", "ecfr.gov", "federalregister.gov",
    ), ("law", "laws", "court", "courts", "legislation", "legal", "statutes", "lawyers", "attorney",
        "attorneys"), ("/statutes/", "/legislation/", "/case-law/", "/caselaw/")),
    ("academic", (
        "arxiv.org", "biorxiv.org", "medrxiv.org", "ncbi.nlm.nih.gov", "pubmed.gov", "sciencedirect.com",
        "springer.com", "nature.com", "researchgate.net", "semanticscholar.org", "jstor.org",
        "ieeexplore.ieee.org", "dl.acm.org", "plos.org", "frontiersin.org", "mdpi.com",
        "onlinelibrary.wiley.com", "tandfonline.com", "academic.oup.com", "ssrn.com", "openreview.net",
        "aclanthology.org", "hal.science", "europepmc.org", "sagepub.com", "cell.com", "science.org",
        "pnas.org", "philpapers.org", "scholar.archive.org", "osf.io", "zenodo.org",
    ), (), ()),
    ("code", (
        "github.com", "gist.github.com", "githubusercontent.com", "gitlab.com", "bitbucket.org",
        "sourceforge.net", "codeberg.org", "pastebin.com", "pypi.org", "npmjs.com", "crates.io",
        "readthedocs.io", "docs.python.org", "developer.mozilla.org", "cppreference.com",
    ), (), ()),
    ("wiki", (
        "wikipedia.org", "wikimedia.org", "wikibooks.org", "wikisource.org", "wiktionary.org",
        "wikivoyage.org", "wikiquote.org", "wikiversity.org", "wikinews.org", "fandom.com", "wikia.com",
        "wikihow.com",
    ), ("wiki",), ("/wiki/",)),
    ("forum", (
        "stackexchange.com", "stackoverflow.com", "superuser.com", "serverfault.com", "askubuntu.com",
        "reddit.com", "quora.com", "news.ycombinator.com", "discourse.org", "tripadvisor.com",
    ), ("forum", "forums", "boards", "community", "discuss", "discussions"),
        ("/forum", "/viewtopic.php", "/showthread.php", "/thread/", "/threads/", "/topic/", "/questions/")),
    ("news", (
        "nytimes.com", "bbc.co.uk", "bbc.com", "cnn.com", "reuters.com", "theguardian.com",
        "washingtonpost.com", "apnews.com", "bloomberg.com", "npr.org", "foxnews.com", "wsj.com",
        "usatoday.com", "latimes.com", "aljazeera.com", "independent.co.uk", "telegraph.co.uk",
        "dailymail.co.uk", "huffpost.com", "huffingtonpost.com", "cnbc.com", "nbcnews.com", "abcnews.go.com",
        "cbsnews.com", "politico.com", "theatlantic.com", "forbes.com", "time.com", "economist.com",
        "ft.com", "spiegel.de", "zeit.de", "faz.net", "sueddeutsche.de", "lemonde.fr", "lefigaro.fr",
        "elpais.com", "elmundo.es", "corriere.it", "repubblica.it", "nhk.or.jp", "scmp.com", "abc.net.au",
        "cbc.ca", "thehindu.com", "timesofindia.indiatimes.com", "news.yahoo.com", "news.google.com",
    ), ("news", "newspaper", "tribune", "gazette", "herald"), ("/news/", "/politics/")),
    ("books", (
        "gutenberg.org", "gutenberg.net.au", "standardebooks.org", "books.google.com", "fadedpage.com",
        "wattpad.com", "fanfiction.net", "archiveofourown.org",
    ), (), ("/ebooks/",)),
)
