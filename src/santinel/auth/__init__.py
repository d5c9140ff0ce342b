"""Authorization decisions, no I/O: SMART scope grammar, policy checks returning values."""
