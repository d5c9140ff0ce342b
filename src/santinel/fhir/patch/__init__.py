"""PATCH documents applied to a resource (R4 `http.html#patch`): JSON Patch (RFC 6902),
JSON Merge Patch (RFC 7386) and FHIRPath Patch (R4 `fhirpatch.html`). Pure functions: they
return a new resource and never validate it — the caller validates before storing."""
