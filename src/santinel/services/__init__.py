"""Use cases: the only layer combining storage with (later) authorization and audit."""
