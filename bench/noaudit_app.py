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

import contextlib
import sys
from collections.abc import AsyncIterator, Sequence

from starlette.applications import Starlette

from santinel.services.container import Container
from santinel.settings import Settings
from santinel.web.app import create_app as create_santinel_app


async def _nothing(*_args: object, **_kwargs: object) -> None:
    return None


def noaudit_app(settings: Settings) -> Starlette:
    """Santinel's own app, its container's audit trail disconnected at startup."""
    container = Container.__new__(Container)  # filled at startup, on the server's loop
    app = create_santinel_app(settings, container)
    inner_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(starlette: Starlette) -> AsyncIterator[None]:
        opened = await Container.open(settings)
        opened.repository.before_commit = None
        opened.audit.request_done = _nothing  # type: ignore[method-assign]
        opened.audit.record = _nothing  # type: ignore[method-assign]
        vars(container).update(vars(opened))
        try:
            async with inner_lifespan(starlette):
                yield
        finally:
            await opened.close()

    app.router.lifespan_context = lifespan
    return app


def main(argv: Sequence[str] | None = None) -> None:
    """`santinel ARGS` (e.g. `serve --port 8099 --data-dir DIR`) serving `noaudit_app`."""
    import santinel.web.app as web_app
    from santinel.cli.main import app as cli

    def swapped(settings: Settings, container: Container | None = None) -> Starlette:
        if container is not None:
            raise RuntimeError("the no-audit app opens its own container")
        return noaudit_app(settings)

    web_app.create_app = swapped  # `serve` imports it when it runs, i.e. after this line
    cli(args=list(argv if argv is not None else sys.argv[1:]), prog_name="santinel")


if __name__ == "__main__":
    main()
