"""Santinel: a secure FHIR R4 server and gateway."""

__version__ = "0.1.0"
