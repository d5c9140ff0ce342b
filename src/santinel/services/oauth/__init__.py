"""Santinel as its own OAuth 2 authorization server (SMART App Launch 2.x, Backend Services)."""
