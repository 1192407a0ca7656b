"""Corpus audit: what a shard set or a raw corpus contains, against what it should contain.

`stats` accumulates (mergeable, so Beam can combine partial results from many workers),
`compare` measures the distance to a target mixture, `contamination` finds evaluation text in
the corpus, `report` assembles the stable JSON document, `render` prints it as a terminal table
or a self-contained HTML page.
"""
