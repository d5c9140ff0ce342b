"""The pure FHIR R4 domain: no I/O, no HTTP, no SQL."""
