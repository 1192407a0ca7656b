"""Data contracts of replaymill: the Arrow document schema, manifests, domains, recipes, mixtures.

Nothing in this package imports Beam or torch, so every other package (and a notebook) can use it.
"""
