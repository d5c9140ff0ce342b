"""Search compiled to SQL over the typed index tables. One module per parameter type."""
