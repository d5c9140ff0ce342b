"""FHIR search (R4 `search.html`): the registry of official SearchParameters, index value
extraction at write time, and query parsing. One module per parameter type where they differ."""
