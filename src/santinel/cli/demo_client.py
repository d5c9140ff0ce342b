"""The demo OAuth client `make run` registers, so a first user can get a token at once.

Its secret is kept in `demo-client.json` in the data dir (mode 0600) for the next starts: a
convenience of the local demo only; real clients' secrets are shown once and never stored.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

from santinel.cli.store import auth_store
from santinel.crypto.secrets import random_token, token_digest
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


def _write_private(path: Path, data: dict[str, str]) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(data, file)


def instructions(host_url: str, client_id: str, secret: str) -> list[str]:
    token = (
        f"TOKEN=$(curl -s -u {client_id}:{secret} -d grant_type=client_credentials "
        f"-d scope={DEMO_SCOPE} {host_url}/oauth/token "
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
    )
    read = f'curl -s -H "Authorization: Bearer $TOKEN" "{host_url}/fhir/Patient?_count=1"'
    return ["Get a token (valid 5 minutes):", f"  {token}", "Read a patient:", f"  {read}"]
