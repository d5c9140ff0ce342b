"""Compact data generated from the official R4 definitions by `scripts/generate_definitions.py`."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def load(name: str) -> Any:
    """A generated definition file, parsed once."""
    return json.loads(resources.files(__package__).joinpath(name).read_text("utf-8"))
