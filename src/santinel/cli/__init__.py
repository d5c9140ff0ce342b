"""The `santinel` command."""
