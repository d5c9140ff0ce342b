"""Cryptography, dull on purpose: algorithms pinned at construction, keys in a `KeyRing`,
secrets hashed at rest, comparisons in constant time. A leaf: imports nothing else of santinel."""
