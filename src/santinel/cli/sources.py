"""Finding and reading the files `santinel load` imports, one JSON text at a time.

NDJSON is streamed line by line so memory stays flat whatever the file size; a JSON file (one
resource or a Bundle) is read whole. Each chunk says where it came from (`file:line`) so that a
rejection can be traced back to the input.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

NDJSON_SUFFIXES = (".ndjson", ".jsonl")
JSON_SUFFIXES = (".json",)


@dataclass(frozen=True)
class Chunk:
    location: str  # "data/p.ndjson:12" or "data/bundle.json"
    body: bytes  # one JSON text
    size: int  # bytes of input consumed, for progress


class UnreadableFile(Exception):
    """A file could not be read (permissions, vanished); the load goes on with the next one."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(reason)
        self.location = location
        self.reason = reason


def discover(paths: Iterable[Path]) -> list[Path]:
    """The files to import: given files as they are, directories searched recursively for
    `*.json` / `*.ndjson` in a stable (sorted) order; hidden files and folders are skipped."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file()
                    and p.suffix.lower() in JSON_SUFFIXES + NDJSON_SUFFIXES
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def is_ndjson(path: Path) -> bool:
    return path.suffix.lower() in NDJSON_SUFFIXES


def read_chunks(path: Path) -> Iterator[Chunk]:
    """Each non-blank NDJSON line, or the whole JSON file, as a chunk."""
    try:
        if not is_ndjson(path):
            body = path.read_bytes()
            yield Chunk(str(path), body, len(body))
            return
        with path.open("rb") as lines:
            pending = 0  # blank lines, counted into the next chunk's size
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    pending += len(line)
                    continue
                yield Chunk(f"{path}:{number}", line.rstrip(b"\r\n"), pending + len(line))
                pending = 0
    except OSError as exc:
        raise UnreadableFile(str(path), exc.strerror or type(exc).__name__) from None


def total_size(paths: Iterable[Path]) -> int:
    total = 0
    for path in paths:
        try:
            total += path.stat().st_size
        except OSError:
            continue
    return total
