"""Keep what startup loaded out of the cyclic garbage collector's full collections.

Importing and opening the server leaves about 140,000 long-lived objects (FHIR definitions, the
FHIRPath model, SQLAlchemy's tables and compiled statements). Every full collection walked them
all (~0.1 s each); a 100-entry transaction Bundle allocates enough to trigger several, which cost
more than a third of an ingest's time. `gc.freeze()` moves them to a generation the collector
never scans. It happens once per process: garbage existing at that moment is collected first, so
nothing unreachable is kept; objects made later are collected as usual.
"""

from __future__ import annotations

import gc

_frozen = False


def freeze_once() -> None:
    """Collect, then freeze every object alive now (the first call in a process only)."""
    global _frozen
    if _frozen:
        return
    _frozen = True
    gc.collect()
    gc.freeze()
