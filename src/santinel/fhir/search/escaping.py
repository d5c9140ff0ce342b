"""Search value escaping (R4 `search.html#escaping`): `\\,` `\\|` `\\$` and `\\\\`."""

from __future__ import annotations


def split_unescaped(value: str, separator: str) -> list[str]:
    """Split on unescaped `separator`; escapes of other characters stay as they are."""
    parts: list[str] = []
    current: list[str] = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            current.append(char + following)
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def unescape(value: str) -> str:
    out: list[str] = []
    chars = iter(value)
    for char in chars:
        out.append(next(chars, "\\") if char == "\\" else char)
    return "".join(out)


def or_values(value: str) -> list[str]:
    """The comma-separated alternatives of one parameter, still escaped for `|` splitting."""
    return split_unescaped(value, ",")
