"""`make bench`: the core HTTP benchmark (SQLite, short) then the validators benchmark (sampled).

Quick defaults, for a first look in about two minutes; results go to
`bench/results/{core,validators}-quick.*` so they never overwrite a full run. Run
`python -m bench.core` and `python -m bench.validators` directly for the full figures.
"""

from __future__ import annotations

from bench import core, validators


def main() -> None:
    quick = ["--duration", "4", "--warmup", "1", "--rounds", "2", "--output", "core-quick"]
    core.main(["--backend", "sqlite", *quick])
    validators.main(["--stride", "5", "--output", "validators-quick"])


if __name__ == "__main__":
    main()
