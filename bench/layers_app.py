"""BENCH ONLY: the Santinel app with chosen security layers switched off, for `bench.layers`.

It is the very app `santinel serve` runs (`bench.swapped_app`); `BENCH_LAYERS_OFF` (a comma list)
names what its container gets instead of the real part, once opened:

- `encryption`: the null sealer of `bench/null_cipher_app.py` (bodies and identifying index values
  stored in clear): its data directory must be its own;
- `audit`: the disconnected audit trail of `bench/noaudit_app.py`;
- `auth`: the first bearer token is verified for real, and every later request with an
  `Authorization` header gets that principal without its token being read (a pre-verified
  principal, as in `bench/preverified_app.py`, without handing the token over at start). The
  policy still checks every request.

Rate limiting is a setting of the real server (`SANTINEL_RATE_LIMIT_ENABLED=false`), not a
swap. Nothing in `src/` can switch any of these off.

    BENCH_LAYERS_OFF=auth,audit python -m bench.layers_app serve --port 8099 --data-dir DIR --http
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from starlette.applications import Starlette

from bench.noaudit_app import unaudited
from bench.null_cipher_app import null_sealer
from bench.swapped_app import app_with, serve
from santinel.auth.principal import Principal
from santinel.crypto.jwt import KeyRing
from santinel.services.authn import Authenticator
from santinel.services.container import Container
from santinel.settings import Settings
from santinel.storage.sql.auth_store import SqlAuthStore

LAYERS_ENV = "BENCH_LAYERS_OFF"
LAYERS = ("encryption", "audit", "auth")


class VerifiedOnceAuthenticator(Authenticator):
    """Verifies the first bearer token, then answers its principal for every bearer token."""

    def __init__(self, keyring: KeyRing, store: SqlAuthStore) -> None:
        super().__init__(keyring, store)
        self.fixed: Principal | None = None

    async def principal(self, authorization: str | None, issuer: str, audience: str) -> Principal:
        if authorization is None:
            return await super().principal(authorization, issuer, audience)
        if self.fixed is None:
            self.fixed = await super().principal(authorization, issuer, audience)
        return self.fixed


def layers_off() -> frozenset[str]:
    named = {name.strip() for name in os.environ.get(LAYERS_ENV, "").split(",") if name.strip()}
    unknown = named - set(LAYERS)
    if unknown:
        raise RuntimeError(f"{LAYERS_ENV}: unknown layers {sorted(unknown)} (known: {LAYERS})")
    return frozenset(named)


def layers_app(settings: Settings, off: frozenset[str]) -> Starlette:
    async def open_container(settings: Settings) -> Container:
        if "encryption" in off:
            opened = await Container.open(settings, sealer=null_sealer)
        else:
            opened = await Container.open(settings)
        if "audit" in off:
            unaudited(opened)
        if "auth" in off:
            opened.authenticator = VerifiedOnceAuthenticator(opened.keyring, opened.auth_store)
        return opened

    return app_with(settings, open_container)


def main(argv: Sequence[str] | None = None) -> None:
    """`santinel ARGS` (e.g. `serve --port 8099 --data-dir DIR`) serving `layers_app`."""
    off = layers_off()
    serve(lambda settings: layers_app(settings, off), "layers", argv)


if __name__ == "__main__":
    main()
