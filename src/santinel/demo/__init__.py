"""Deterministic synthetic French patients (no I/O): see `generator` for the guarantees."""

from santinel.demo.generator import REFERENCE_DATE, directory, generate, patient_group

__all__ = ["REFERENCE_DATE", "directory", "generate", "patient_group"]
