"""Persistence. Knows SQL; knows nothing of principals or HTTP."""
