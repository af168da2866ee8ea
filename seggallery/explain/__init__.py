"""Explanations: how each architecture turns coarse features back into a full-resolution label map.

    cards/<id>.toml   one file per architecture (text, published numbers with sources, diagram spec)
    card.py           load and check those files; which catalog models each card covers
    diagrams.py       draw a card's diagram from its spec (matplotlib), cached as PNG
    probes.toml       for runnable families: which modules to hook, and how to show what they produce
    probes.py         run a catalog model on a photo with forward hooks attached, keep those tensors
    views.py          captured tensors -> pictures (score maps, features, pooled vectors, the resolution ladder)

Adding an architecture is adding a card file; making its mechanism visible is adding a probe entry.
"""
