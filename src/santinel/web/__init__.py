"""ASGI adapters: translate HTTP to `FhirRequest` and `FhirResponse` to HTTP; never decide."""
