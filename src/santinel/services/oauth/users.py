"""People who sign in on the authorization pages, and EHR launch contexts."""

from __future__ import annotations

import re
import time
import uuid

import orjson
import pyotp

from santinel.crypto.secrets import hash_password, random_token, token_digest
from santinel.storage.auth_records import UserRecord
from santinel.storage.sql.grant_store import SqlGrantStore

USERNAME = re.compile(r"[A-Za-z0-9._@+\-]{1,200}")
FHIR_USER = re.compile(
    r"(Patient|Practitioner|PractitionerRole|RelatedPerson|Person)/[A-Za-z0-9\-.]{1,64}"
)
MIN_PASSWORD = 12
LAUNCH_SECONDS = 3600


class UserError(ValueError):
    """A refused user registration; the message is safe to show."""


def new_user(
    username: str, password: str, fhir_user: str | None = None, *, totp: bool = False
) -> UserRecord:
    """A user with an argon2id password hash (and a TOTP secret when asked)."""
    if USERNAME.fullmatch(username) is None:
        raise UserError("usernames are 1-200 letters, digits or . _ @ + -")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"passwords have at least {MIN_PASSWORD} characters")
    if fhir_user is not None and FHIR_USER.fullmatch(fhir_user) is None:
        raise UserError("--fhir-user is a reference such as Patient/123 or Practitioner/456")
    return UserRecord(
        user_id=uuid.uuid4().hex,
        username=username,
        password_hash=hash_password(password),
        fhir_user=fhir_user,
        totp_secret=pyotp.random_base32() if totp else None,
        created_us=int(time.time() * 1_000_000),
    )


def totp_uri(user: UserRecord, issuer: str = "Santinel") -> str | None:
    if user.totp_secret is None:
        return None
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.username, issuer_name=issuer)


async def create_launch(store: SqlGrantStore, patient: str | None, encounter: str | None) -> str:
    """An opaque `launch` value an EHR hands to the app it launches (valid one hour)."""
    launch = random_token()
    context = orjson.dumps({"patient": patient, "encounter": encounter}).decode()
    expires = int((time.time() + LAUNCH_SECONDS) * 1_000_000)
    await store.add_launch(token_digest(launch), context, expires)
    return launch
