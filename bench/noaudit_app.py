"""BENCH ONLY: the Santinel app with its audit trail switched off, to measure what auditing costs.

`bench.audit` runs it beside the normal server (`santinel serve`). It is the very app `santinel
serve` runs (`santinel.web.app.create_app`: same routes, middleware, authentication, policy,
database and request log); the only differences are in its container, once opened:

- `repository.before_commit = None`: writes no longer add their AuditEvents to their
  transaction;
- `audit.request_done` and `audit.record` are no-ops: reads, searches, refusals and the
  authorization server leave no record (the checkpoint task still runs, on an unchanging head).

Nothing in `src/` can switch auditing off: the replacement lives only here, in `bench/`.

    python -m bench.noaudit_app serve --port 8099 --data-dir DIR --http

is `santinel serve` with the same options, with `santinel.web.app.create_app` swapped for
`noaudit_app` in this process only.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette

from bench.swapped_app import app_with, serve
from santinel.services.container import Container
from santinel.settings import Settings


async def _nothing(*_args: object, **_kwargs: object) -> None:
    return None


def noaudit_app(settings: Settings) -> Starlette:
    """Santinel's own app, its container's audit trail disconnected at startup."""
    return app_with(settings, _open_unaudited)


async def _open_unaudited(settings: Settings) -> Container:
    return unaudited(await Container.open(settings))


def unaudited(opened: Container) -> Container:
    """`opened` with its audit trail disconnected (also used by `bench/layers_app.py`)."""
    opened.repository.before_commit = None
    opened.audit.request_done = _nothing  # type: ignore[method-assign]
    opened.audit.record = _nothing  # type: ignore[method-assign]
    return opened


def main(argv: Sequence[str] | None = None) -> None:
    """`santinel ARGS` (e.g. `serve --port 8099 --data-dir DIR`) serving `noaudit_app`."""
    serve(noaudit_app, "no-audit", argv)


if __name__ == "__main__":
    main()
