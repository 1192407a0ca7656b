"""The domain taxonomy and the mappings from each corpus's own labels onto it.

Owned data: `transforms.domains` applies these mappings and URL rules; presets in
`schemas.mixtures` are expressed over the same names.
"""
from __future__ import annotations

DOMAINS: tuple[str, ...] = (
    "web", "code", "wiki", "books", "academic", "forum", "news", "legal", "math", "other",
)
