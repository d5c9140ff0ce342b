"""BENCH ONLY: the Santinel app whose authenticator returns a fixed, pre-verified principal.

`bench.auth_overhead` runs it beside the normal server (`santinel serve`) to measure what token
verification costs. It is the very app `santinel serve` runs (`santinel.web.app.create_app`: same
routes, middleware, negotiation, policy, database and request log); the only difference is the
`Authenticator` of its container: `PreverifiedAuthenticator` never looks at the token and returns
the `Principal` the real server builds from one real access token (same client, tier and scopes),
so the policy (`services/guard.py`) still checks every request. A request without an
`Authorization` header is still anonymous (401 wherever data is asked for).

Nothing in `src/` can switch authentication off: the replacement lives only here, in `bench/`.

    BENCH_PREVERIFIED_TOKEN=<access token> python -m bench.preverified_app serve --port 8099 …
    SANTINEL_DATA_DIR=… BENCH_PREVERIFIED_TOKEN=… uvicorn --factory bench.preverified_app:create_app

The first form IS `santinel serve` (same options, same startup, same uvicorn settings), with
`santinel.web.app.create_app` swapped for `preverified_app` in this process only: the benchmark
uses it so that the two servers differ in nothing but the authenticator.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

from starlette.applications import Starlette

from santinel.auth.principal import Principal
from santinel.crypto.jwt import KeyRing
from santinel.logging import configure
from santinel.services.authn import Authenticator, to_principal
from santinel.services.container import Container
from santinel.settings import Settings
from santinel.storage.sql.auth_store import SqlAuthStore
from santinel.web.app import create_app as create_santinel_app

TOKEN_ENV = "BENCH_PREVERIFIED_TOKEN"  # noqa: S105 - the name of a variable, not a secret


class PreverifiedAuthenticator(Authenticator):
    """Returns one fixed principal for any `Authorization` header, without reading it."""

    def __init__(self, keyring: KeyRing, store: SqlAuthStore, fixed: Principal) -> None:
        super().__init__(keyring, store)
        self.fixed = fixed

    async def principal(self, authorization: str | None, issuer: str, audience: str) -> Principal:
        return self.fixed


def claims_of(token: str) -> dict[str, Any]:
    """The payload of a compact JWS, NOT verified: the real server verified this token (the
    benchmark got it from that server's token endpoint and reads data with it there)."""
    payload = token.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return claims


def principal_from_env() -> Principal:
    """The principal of the token in BENCH_PREVERIFIED_TOKEN, built by
    `santinel.services.authn.to_principal` as the real server builds it."""
    token = os.environ.get(TOKEN_ENV, "").removeprefix("Bearer ").strip()
    if not token:
        raise RuntimeError(f"{TOKEN_ENV} must hold the access token whose principal is served")
    return to_principal(claims_of(token))


def preverified_app(settings: Settings, fixed: Principal) -> Starlette:
    """Santinel's own app, its container's authenticator replaced at startup."""
    # Filled in at startup, on the server's event loop, with a real opened container (the
    # database pools belong to that loop); the app reads it through its own closure exactly as
    # it reads a container it opens itself.
    container = Container.__new__(Container)
    app = create_santinel_app(settings, container)
    inner_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(starlette: Starlette) -> AsyncIterator[None]:
        opened = await Container.open(settings)
        vars(container).update(vars(opened))
        container.authenticator = PreverifiedAuthenticator(opened.keyring, opened.auth_store, fixed)
        try:
            async with inner_lifespan(starlette):
                yield
        finally:
            await opened.close()

    app.router.lifespan_context = lifespan
    return app


def create_app() -> Starlette:
    """`uvicorn --factory` entry point: settings from `SANTINEL_*`."""
    settings = Settings()
    configure(settings.log_level)  # what `santinel serve` does before starting uvicorn
    return preverified_app(settings, principal_from_env())


def main(argv: Sequence[str] | None = None) -> None:
    """`santinel ARGS` (e.g. `serve --port 8099 --data-dir DIR`) serving `preverified_app`."""
    import santinel.web.app as web_app
    from santinel.cli.main import app as cli

    fixed = principal_from_env()

    def swapped(settings: Settings, container: Container | None = None) -> Starlette:
        if container is not None:
            raise RuntimeError("the pre-verified app opens its own container")
        return preverified_app(settings, fixed)

    web_app.create_app = swapped  # `serve` imports it when it runs, i.e. after this line
    cli(args=list(argv if argv is not None else sys.argv[1:]), prog_name="santinel")


if __name__ == "__main__":
    main()
