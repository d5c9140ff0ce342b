"""Settings, read once at the edge (CLI flags, `SANTINEL_*` environment) and passed down.

Every field's description is the documentation: `tests/unit/test_docs.py` checks that the README
names each setting, so a new setting without docs fails the build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# `N/second|minute|hour|day` or empty (no limit); parsed by santinel.services.ratelimit.rates
RATE = r"^(\s*[1-9][0-9]{0,11}\s*/\s*(second|minute|hour|day)s?\s*)?$"
COSTS = r"^(\s*[a-z_]+\s*=\s*[0-9]{1,6}\s*)?(,\s*[a-z_]+\s*=\s*[0-9]{1,6}\s*)*$"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SANTINEL_", frozen=True, extra="forbid")

    host: str = Field("127.0.0.1", description="Address the HTTP server listens on.")
    port: int = Field(8080, ge=0, le=65535, description="TCP port the HTTP server listens on.")
    tls_cert: Path | None = Field(
        None,
        description="PEM certificate chain of the HTTPS server (with `tls_key`); default: a "
        "development certificate from a local CA created in `<data dir>/tls`.",
    )
    tls_key: Path | None = Field(None, description="PEM private key of `tls_cert`.")
    client_ca: Path | None = Field(
        None,
        description="PEM CA certificate(s) that client certificates must chain to; enables "
        "mutual TLS (a client certificate stays optional at the handshake).",
    )
    plain_http: bool = Field(
        False,
        description="Serve plain HTTP instead of HTTPS; refused unless the server listens on a "
        "loopback address (tests, or behind a TLS proxy on the same machine).",
    )
    hsts_seconds: int = Field(
        31_536_000,
        ge=0,
        description="`max-age` of the Strict-Transport-Security header on HTTPS responses "
        "(0: no header).",
    )
    dpop_nonce_seconds: int = Field(
        300,
        ge=0,
        description="DPoP proofs must carry a server nonce (RFC 9449 §8-9) this many seconds "
        "old at most (up to twice that); 0: no nonce required.",
    )
    data_dir: Path = Field(
        Path("santinel-data"),
        description="Directory of the embedded SQLite database (used when no database URL is set).",
    )
    database_url: str | None = Field(
        None,
        description="PostgreSQL URL (postgresql://user@host:port/db); overrides the data dir.",
    )
    database_pool_size: int = Field(
        20,
        ge=1,
        le=500,
        description="PostgreSQL connections each server keeps open (plus up to half as many "
        "more in bursts, closed after).",
    )
    public_base_url: str | None = Field(
        None,
        description="Public FHIR base URL used in links and Location headers "
        "(default: taken from the request, or from a trusted proxy's X-Forwarded-* headers).",
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1,::1",
        description="Comma-separated addresses or networks (CIDR) of the reverse proxies whose "
        "X-Forwarded-For/-Proto/-Host/-Port/-Prefix headers are believed; '*' trusts every "
        "peer (only when nothing but the proxy can reach Santinel).",
    )
    max_body_bytes: int = Field(
        10 * 1024 * 1024, gt=0, description="Largest request body accepted, in bytes (413 above)."
    )
    max_bundle_entries: int = Field(
        1000, gt=0, description="Largest number of entries in a batch or transaction (413 above)."
    )
    default_page_size: int = Field(20, gt=0, description="Default `_count` of search and history.")
    max_page_size: int = Field(
        1000, gt=0, description="Largest `_count` served; larger values are clamped."
    )
    max_search_results: int = Field(
        10_000,
        gt=0,
        description="Matches kept per search for paging; beyond, totals are estimates.",
    )
    max_included: int = Field(
        1000, gt=0, description="Resources added by `_include`/`_revinclude` to one page at most."
    )
    max_include_depth: int = Field(
        3, ge=1, description="Rounds of `_include:iterate` / `_revinclude:iterate` followed."
    )
    max_chain_depth: int = Field(
        3, ge=1, description="Links allowed in a chained or `_has` search parameter."
    )
    search_timeout_seconds: float = Field(
        10.0, gt=0, description="Time budget of one search query; beyond it → 422 `too-costly`."
    )
    max_header_bytes: int = Field(
        32 * 1024,
        ge=1024,
        description="Largest request line plus headers accepted, in bytes (431 above).",
    )
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Time a client has to send a request's line and headers (408 after it).",
    )
    body_timeout_seconds: float = Field(
        60.0, gt=0, description="Time a client has to send a request's body (408 after it)."
    )
    keep_alive_seconds: int = Field(
        5, ge=1, description="An idle keep-alive connection is closed after this many seconds."
    )
    redis_url: str | None = Field(
        None,
        description="Redis URL (redis://host:port/db) holding the rate-limit buckets and failed "
        "sign-in counters shared by every node; unset: kept in this process's memory.",
    )
    redis_prefix: str = Field(
        "santinel:", min_length=1, description="Prefix of every Redis key Santinel writes."
    )
    rate_limit_enabled: bool = Field(
        True,
        description="Apply rate limits and quotas (brute-force protection applies regardless).",
    )
    rate_limit_fail_open: bool = Field(
        False,
        description="When Redis does not answer, serve requests unlimited instead of refusing "
        "them with 503 (fail closed, the default).",
    )
    rate_limit_internal: str = Field(
        "100000/minute", pattern=RATE, description="Default rate limit of internal clients."
    )
    quota_internal: str = Field("", pattern=RATE, description="Default quota of internal clients.")
    rate_limit_partner: str = Field(
        "600/minute", pattern=RATE, description="Default rate limit of partner clients."
    )
    quota_partner: str = Field(
        "100000/day", pattern=RATE, description="Default quota of partner clients."
    )
    rate_limit_public: str = Field(
        "300/minute",
        pattern=RATE,
        description="Rate limit of the public tier: per address for anonymous callers, per "
        "client for public-tier clients.",
    )
    quota_public: str = Field("10000/day", pattern=RATE, description="Quota of the public tier.")
    rate_limit_oauth: str = Field(
        "600/minute",
        pattern=RATE,
        description="Requests per address to the OAuth endpoints (token, authorize, sign-in, "
        "introspection, revocation).",
    )
    rate_limit_costs: str = Field(
        "",
        pattern=COSTS,
        description="Cost overrides in quota units, e.g. `search=3,write=10` (names: read, "
        "search, include, write, entry_read, entry_write, everything, export).",
    )
    public_types: str = Field(
        "Organization,Location,Practitioner,PractitionerRole,HealthcareService,Endpoint,"
        "CodeSystem,ValueSet",
        description="Resource types served without a token (read and search; types that can "
        "hold patient data are refused at start); empty: no anonymous access.",
    )
    brute_force_slow_after: int = Field(
        10, ge=1, description="Failed sign-ins of one account before its attempts are slowed."
    )
    brute_force_lock_after: int = Field(
        20, ge=1, description="Failed sign-ins of one account before it is locked."
    )
    brute_force_ip_slow_after: int = Field(
        50, ge=1, description="Failed sign-ins from one address before its attempts are slowed."
    )
    brute_force_ip_lock_after: int = Field(
        200, ge=1, description="Failed sign-ins from one address before it is locked."
    )
    brute_force_lock_seconds: int = Field(
        900,
        ge=1,
        description="How long a lock lasts; failures are forgotten this long after the last.",
    )
    audit_key_file: Path | None = Field(
        None,
        description="Private key signing the audit trail's checkpoints (created 0600 when "
        "missing; default: audit-signing-key.pem in the data dir). Keep it where the database "
        "administrator cannot read it.",
    )
    audit_checkpoint_seconds: float = Field(
        10.0, gt=0, description="How often the head of the audit chain is signed."
    )
    audit_retention_days: float = Field(
        0,
        ge=0,
        description="Audit records older than this many days are pruned by the running server "
        "(hourly; verified first, leaving a signed anchor so the rest still verifies); "
        "0: keep forever.",
    )
    audit_flush_reads: bool = Field(
        False,
        description="Flush (fsync) the audit events of reads, searches, refusals and sign-ins "
        "to disk before answering, as data changes always are. Off: they are committed before "
        "the answer and survive a crash of Santinel, and reach the disk with the next data "
        "change or WAL checkpoint (PostgreSQL: within wal_writer_delay); a power loss or a "
        "database crash can lose that last fraction of a second of read events.",
    )
    key_provider: Literal["file", "env", "vault"] = Field(
        "file",
        description="Where the key-encryption key (KEK) wrapping the data keys comes from: "
        "`file` (key_file), `env` (kek) or `vault` (HashiCorp Vault Transit, vault_*).",
    )
    key_file: Path | None = Field(
        None,
        description="The KEK file of the `file` provider (created 0600 when missing; default: "
        "`<data dir>.kek`, beside the data directory, not in it). Keep it away from the "
        "database and its backups: whoever has both reads everything.",
    )
    kek: SecretStr | None = Field(
        None, description="The KEK of the `env` provider: base64 of 32 random bytes."
    )
    vault_url: str | None = Field(
        None, description="Vault address of the `vault` provider, e.g. https://vault:8200."
    )
    vault_token: SecretStr | None = Field(
        None,
        description="Vault token of the `vault` provider (policy: encrypt, decrypt and rewrap "
        "on the transit key; rotate and read it for `santinel keys rotate-kek`).",
    )
    vault_transit_mount: str = Field(
        "transit", min_length=1, description="Mount path of Vault's Transit secrets engine."
    )
    vault_transit_key: str = Field(
        "santinel", min_length=1, description="Name of the Vault Transit key used as the KEK."
    )
    plaintext_name_indexes: bool = Field(
        False,
        description="Index person names in clear instead of as blind indexes, for `:contains` "
        "and prefixes of any length; other identifying values stay blind. Changing it needs "
        "`santinel db reindex`.",
    )
    cors_origins: str = Field(
        "",
        description="Extra browser origins allowed by CORS, comma-separated "
        "(the origins of registered clients' redirect URIs are always allowed).",
    )
    log_level: str = Field("info", description="Log level: debug, info, warning or error.")
    demo_patients: int = Field(
        25, ge=0, description="Synthetic patients loaded by `--demo-on-first-start`."
    )

    @property
    def audit_key_path(self) -> Path:
        return self.audit_key_file or self.data_dir / "audit-signing-key.pem"

    @property
    def key_path(self) -> Path:
        """The `file` provider's KEK: beside the data directory by default, never inside it."""
        if self.key_file is not None:
            return self.key_file
        folder = self.data_dir.resolve()
        return folder.with_name(folder.name + ".kek")

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "santinel.sqlite3"

    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL: PostgreSQL when configured, else SQLite in the data dir."""
        if self.database_url:
            return to_sqlalchemy_url(self.database_url)
        return f"sqlite+aiosqlite:///{self.sqlite_path}"


def to_sqlalchemy_url(url: str) -> str:
    """Accept the plain `postgresql://` form users know and pick our async driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url
