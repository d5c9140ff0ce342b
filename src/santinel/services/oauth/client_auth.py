"""Client authentication at the token endpoint (RFC 6749 §2.3, RFC 7523, SMART Backend Services).

- `private_key_jwt`: a client assertion signed with a key from the client's registered JWKS
  (RS384 or ES384); `iss` = `sub` = client_id, `aud` = the token URL, `exp` at most five
  minutes ahead, every `jti` used once (the replay cache lives in the database, so it survives
  restarts and is shared by every node). The JWKS is registered by value or by URL (fetched and
  cached by `jwks_fetch`); a `jku` header must equal the registered URL, `x5u`, `jwk`, `x5c`
  and `crit` are refused.
- `client_secret_basic` / `client_secret_post`: the secret's SHA-256 compared in constant time.
  An unknown client costs the same work as a wrong secret and gets the same answer.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from santinel.crypto.jwt import FORBIDDEN_HEADERS, InvalidToken, check_claims, read_header
from santinel.crypto.secrets import same, token_digest
from santinel.logging import get_logger
from santinel.services.oauth import jwks_fetch
from santinel.services.oauth.errors import InvalidClient, InvalidRequest
from santinel.storage.auth_records import ClientRecord
from santinel.storage.sql.auth_store import SqlAuthStore

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("RS384", "ES384")
MAX_ASSERTION_LIFETIME = 300
_DUMMY_DIGEST = token_digest("not a secret of any client")

log = get_logger("santinel.oauth")


async def authenticate(
    store: SqlAuthStore, form: Mapping[str, str], authorization: str | None, token_url: str
) -> ClientRecord:
    if form.get("client_assertion_type") or form.get("client_assertion"):
        return await _by_assertion(store, form, token_url)
    client_id, secret = (
        _basic(authorization)
        if authorization
        else (form.get("client_id", ""), form.get("client_secret"))
    )
    if secret is None:
        raise InvalidClient("Client authentication is required.")
    record = await store.client(client_id) if client_id else None
    expected = record.secret_digest if record and record.secret_digest else _DUMMY_DIGEST
    matches = same(token_digest(secret), expected)
    if record is None or record.disabled or not record.secret_digest or not matches:
        raise InvalidClient("Client authentication failed.")
    method = "client_secret_basic" if authorization else "client_secret_post"
    if record.auth_method not in (method, "client_secret_basic", "client_secret_post"):
        raise InvalidClient("Client authentication failed.")
    return record


def _basic(authorization: str) -> tuple[str, str]:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise InvalidClient("Client authentication failed.")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient("Client authentication failed.") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise InvalidClient("Client authentication failed.")
    return unquote(client_id), unquote(secret)


async def _by_assertion(
    store: SqlAuthStore, form: Mapping[str, str], token_url: str
) -> ClientRecord:
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise InvalidRequest(f"client_assertion_type must be {ASSERTION_TYPE}.")
    assertion = form.get("client_assertion", "")
    try:
        header = read_header(assertion)
        claims = orjson.loads(base64.urlsafe_b64decode(assertion.split(".")[1] + "=="))
    except (InvalidToken, ValueError, IndexError, orjson.JSONDecodeError):
        raise InvalidClient("Client authentication failed.") from None
    client_id = claims.get("iss") if isinstance(claims, dict) else None
    record = await store.client(client_id) if isinstance(client_id, str) else None
    if (
        record is None
        or record.disabled
        or record.auth_method != "private_key_jwt"
        or not (record.jwks or record.jwks_url)
    ):
        raise InvalidClient("Client authentication failed.")
    _check_header(header, record)
    key_set = await _client_keys(store, record, header.get("kid"))
    verified = _verify_assertion(assertion, header, key_set, record, token_url)
    expires_us = int(verified["exp"]) * 1_000_000
    if not await store.use_once(
        "assertion",
        f"{record.client_id}:{verified['jti']}",
        expires_us,
        int(time.time() * 1_000_000),
    ):
        raise InvalidClient("This client assertion was already used.")
    return record


def _check_header(header: Mapping[str, object], record: ClientRecord) -> None:
    """Pinned algorithms; no key carried or pointed to by the assertion itself, but a `jku`
    equal to the URL the client registered (before anything is fetched)."""
    if header.get("alg") not in ASSERTION_ALGORITHMS or (FORBIDDEN_HEADERS - {"jku"}) & set(header):
        raise InvalidClient("Client authentication failed.")
    jku = header.get("jku")
    if jku is not None and (record.jwks_url is None or jku != record.jwks_url):
        raise InvalidClient("Client authentication failed.")


async def _client_keys(store: SqlAuthStore, record: ClientRecord, kid: object) -> Any:
    """The client's JWK Set: registered by value, else fetched from its URL (cached)."""
    if record.jwks:
        try:
            return orjson.loads(record.jwks)
        except orjson.JSONDecodeError:
            raise InvalidClient("Client authentication failed.") from None
    if not record.jwks_url:
        raise InvalidClient("Client authentication failed.")
    fetcher = jwks_fetch.fetcher_for(store)
    try:
        return await fetcher.key_set(record.jwks_url, kid if isinstance(kid, str) else None)
    except jwks_fetch.JwksUnavailable as exc:
        # The reason is ours (status, size, parse error), never the URL or what it served.
        log.warning("client jwks unavailable", client_id=record.client_id, reason=str(exc))
        raise InvalidClient("Client authentication failed.") from None


def _verify_assertion(
    assertion: str,
    header: Mapping[str, object],
    key_set: Any,
    record: ClientRecord,
    token_url: str,
) -> dict[str, Any]:
    try:
        keys = KeySet.import_key_set(key_set)
        token = jwt.decode(assertion, keys, algorithms=[str(header["alg"])])
    except (JoseError, ValueError, KeyError, TypeError):
        raise InvalidClient("Client authentication failed.") from None
    claims = dict(token.claims)
    now = int(time.time())
    try:
        check_claims(claims, issuer=record.client_id, audience=token_url, now=now)
    except InvalidToken:
        raise InvalidClient("Client authentication failed.") from None
    exp = claims.get("exp")
    if (
        claims.get("sub") != record.client_id
        or not isinstance(exp, int)
        or exp > now + MAX_ASSERTION_LIFETIME
    ):
        raise InvalidClient("Client authentication failed.")
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise InvalidClient("Client authentication failed.")
    return claims
