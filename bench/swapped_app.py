"""BENCH ONLY: `santinel serve` running Santinel's own app with one part of its container swapped.

`bench/preverified_app.py`, `bench/noaudit_app.py` and `bench/null_cipher_app.py` each replace one
part (the authenticator, the audit trail, the sealer) to measure what it costs; everything else
(routes, middleware, policy, database, uvicorn settings) must stay the very same, so they all
build the app and start the server here, the same way.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from starlette.applications import Starlette

from santinel.services.container import Container
from santinel.settings import Settings
from santinel.web.app import create_app as create_santinel_app

OpenContainer = Callable[[Settings], Awaitable[Container]]


def app_with(settings: Settings, open_container: OpenContainer) -> Starlette:
    """Santinel's own app whose container is the one `open_container` opens at startup."""
    # Filled in at startup, on the server's event loop, with a real opened container (the
    # database pools belong to that loop); the app reads it through its own closure exactly as
    # it reads a container it opens itself.
    container = Container.__new__(Container)
    app = create_santinel_app(settings, container)
    inner_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(starlette: Starlette) -> AsyncIterator[None]:
        opened = await open_container(settings)
        vars(container).update(vars(opened))
        try:
            async with inner_lifespan(starlette):
                yield
        finally:
            await opened.close()

    app.router.lifespan_context = lifespan
    return app


def serve(build: Callable[[Settings], Starlette], what: str, argv: Sequence[str] | None) -> None:
    """`santinel ARGS` (e.g. `serve --port 8099 --data-dir DIR`) serving `build(settings)`."""
    import santinel.web.app as web_app
    from santinel.cli.main import app as cli

    def swapped(settings: Settings, container: Container | None = None) -> Starlette:
        if container is not None:
            raise RuntimeError(f"the {what} app opens its own container")
        return build(settings)

    web_app.create_app = swapped  # `serve` imports it when it runs, i.e. after this line
    cli(args=list(argv if argv is not None else sys.argv[1:]), prog_name="santinel")
