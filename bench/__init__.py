"""Santinel benchmarks, run on demand (`make bench`), never part of `make test`.

`python -m bench.core` (HTTP workloads against a floor), `python -m bench.validators` (FHIR
validators on the official examples). Results go to `bench/results/` (git-ignored).
"""
