"""String normalisation for search (R4 `search.html#string`): case- and accent-insensitive."""

from __future__ import annotations

import unicodedata

MAX_INDEXED = 255


def normalize(text: str) -> str:
    """Lower case, accents removed, whitespace collapsed; what `name=` compares against."""
    if text.isascii():  # nothing to decompose, no accent: the same result, several times faster
        return " ".join(text.lower().split())[:MAX_INDEXED]
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().split())[:MAX_INDEXED]
