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
import json
import os
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette

from bench.swapped_app import app_with, serve
from santinel.auth.principal import Principal
from santinel.crypto.jwt import KeyRing
from santinel.logging import configure
from santinel.services.authn import Authenticator, to_principal
from santinel.services.container import Container
from santinel.settings import Settings
from santinel.storage.sql.auth_store import SqlAuthStore

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

    async def open_preverified(settings: Settings) -> Container:
        opened = await Container.open(settings)
        opened.authenticator = PreverifiedAuthenticator(opened.keyring, opened.auth_store, fixed)
        return opened

    return app_with(settings, open_preverified)


def create_app() -> Starlette:
    """`uvicorn --factory` entry point: settings from `SANTINEL_*`."""
    settings = Settings()
    configure(settings.log_level)  # what `santinel serve` does before starting uvicorn
    return preverified_app(settings, principal_from_env())


def main(argv: Sequence[str] | None = None) -> None:
    """`santinel ARGS` (e.g. `serve --port 8099 --data-dir DIR`) serving `preverified_app`."""
    fixed = principal_from_env()
    serve(lambda settings: preverified_app(settings, fixed), "pre-verified", argv)


if __name__ == "__main__":
    main()
