"""`make bench`: the core HTTP benchmark (SQLite, short) then the validators benchmark (sampled).

Quick defaults, for a first look in about two minutes; run `python -m bench.core` and
`python -m bench.validators` directly for the full figures (see bench/README.md).
"""

from __future__ import annotations

from bench import core, validators


def main() -> None:
    core.main(["--backend", "sqlite", "--duration", "4", "--warmup", "1", "--rounds", "2"])
    validators.main(["--stride", "5"])


if __name__ == "__main__":
    main()
