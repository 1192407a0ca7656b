"""Corpus audit: what a shard set or a raw corpus contains, against what it should contain.

`stats` accumulates (mergeable, so Beam can combine partial results from many workers),
`shardset` streams finished shard sets into it, `compare` measures the distance to a target
mixture, `contamination` finds evaluation text in the corpus, `report` assembles the stable JSON
document, `gates` turns it into a CI verdict, and `render` prints it as a terminal table or a
self-contained HTML page. The Beam pipeline for raw corpora is `pipeline.audit`.
"""
