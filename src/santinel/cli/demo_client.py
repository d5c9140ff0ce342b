"""The demo OAuth client and demo user `make run` registers, so a first user can get a token
at once (client credentials) or sign in to a SMART app as a demo patient.

Their secrets are kept in `demo-client.json` / `demo-user.json` in the data dir (mode 0600) for
the next starts: a convenience of the local demo only; real clients' secrets are shown once and
never stored, real users' passwords never leave their owner.
"""

from __future__ import annotations

import json
import os
import shlex
import time
import uuid
from pathlib import Path

from santinel.cli.store import auth_store, grant_store
from santinel.crypto.secrets import random_token, token_digest
from santinel.services.container import Container
from santinel.services.oauth import patients
from santinel.services.oauth.users import new_user
from santinel.settings import Settings
from santinel.storage.auth_records import ClientRecord

DEMO_SCOPE = "system/*.rs"


async def ensure_demo_client(settings: Settings) -> tuple[str, str]:
    """(client_id, secret) of the demo client, registering it on first start."""
    saved = settings.data_dir / "demo-client.json"
    async with auth_store(settings) as store:
        if saved.exists():
            known = json.loads(saved.read_text())
            client = await store.client(known["client_id"])
            if client is not None and not client.disabled:
                return known["client_id"], known["client_secret"]
        secret = random_token()
        record = ClientRecord(
            client_id=uuid.uuid4().hex,
            name="santinel demo (make run)",
            tier="internal",
            scope=DEMO_SCOPE,
            auth_method="client_secret_basic",
            secret_digest=token_digest(secret),
            created_us=int(time.time() * 1_000_000),
        )
        await store.add_client(record)
    _write_private(saved, {"client_id": record.client_id, "client_secret": secret})
    return record.client_id, secret


DEMO_USER = "demo-patient"


async def ensure_demo_user(settings: Settings, base_url: str) -> tuple[str, str, str] | None:
    """(username, password, fhirUser) of a demo user who is the first demo patient; None when
    the database holds no patient to be."""
    saved = settings.data_dir / "demo-user.json"
    if saved.exists():
        known = json.loads(saved.read_text())
        return known["username"], known["password"], known["fhir_user"]
    container = await Container.open(settings)
    try:
        found = await patients.choices(container.service, base_url, "")
    finally:
        await container.close()
    if not found:
        return None
    password = random_token(12)
    fhir_user = f"Patient/{found[0].patient_id}"
    async with grant_store(settings) as store:
        if await store.user_named(DEMO_USER) is not None:
            return None  # registered by someone else: its password is not ours to show
        await store.add_user(new_user(DEMO_USER, password, fhir_user))
    _write_private(saved, {"username": DEMO_USER, "password": password, "fhir_user": fhir_user})
    return DEMO_USER, password, fhir_user


def user_instructions(host_url: str, user: tuple[str, str, str]) -> list[str]:
    username, password, fhir_user = user
    register = (
        'santinel clients add --name "My SMART app" --public --redirect-uri '
        'http://localhost:9000/callback --scope "launch/patient patient/*.rs openid fhirUser"'
    )
    return [
        f"SMART apps: sign in as {username} / {password} ({fhir_user});",
        f"  register an app first:  {register}",
        f"  its launch URL's iss:   {host_url}/fhir",
    ]


def _write_private(path: Path, data: dict[str, str]) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(data, file)


def instructions(
    host_url: str, client_id: str, secret: str, *, ca_file: Path | None = None
) -> list[str]:
    """Copy-paste commands; `ca_file`: the development CA curl must trust (HTTPS)."""
    curl = f"curl -s --cacert {shlex.quote(str(ca_file))}" if ca_file else "curl -s"
    token = (
        f"TOKEN=$({curl} -u {client_id}:{secret} -d grant_type=client_credentials "
        f"-d scope={DEMO_SCOPE} {host_url}/oauth/token "
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
    )
    read = f'{curl} -H "Authorization: Bearer $TOKEN" "{host_url}/fhir/Patient?_count=1"'
    return ["Get a token (valid 5 minutes):", f"  {token}", "Read a patient:", f"  {read}"]
