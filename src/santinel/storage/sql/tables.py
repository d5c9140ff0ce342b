"""Table definitions (SQLAlchemy Core). Alembic migrations in `migrations/` create them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    literal_column,
)

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT identity.
Sequence64 = BigInteger().with_variant(Integer(), "sqlite")

resource = Table(
    "resource",
    metadata,
    Column("res_type", String(64), primary_key=True),
    Column("res_id", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("body", LargeBinary, nullable=True),  # sealed (AES-256-GCM) under `key_id`'s DEK
    Column("key_id", String(32), nullable=True),  # the data key (0008); None: no body
    Index("ix_resource_type_updated", "res_type", "last_updated"),
    Index("ix_resource_key", "key_id"),
)

resource_history = Table(
    "resource_history",
    metadata,
    Column("seq", Sequence64, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("method", String(8), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("body", LargeBinary, nullable=True),
    Column("key_id", String(32), nullable=True),
    UniqueConstraint("res_type", "res_id", "version", name="uq_history_version"),
    Index("ix_history_type_seq", "res_type", "seq"),
    Index("ix_history_updated", "last_updated"),
    Index("ix_history_key", "key_id"),
)


# --- search indexes (R4 `search.html`): one typed table per parameter type --------------------
# Rows describe the CURRENT version of live resources only; they are replaced in the same
# transaction as every write. `normalized`/prefix columns use binary collation so a prefix
# search is an index range scan on both SQLite and PostgreSQL.
BinaryText = String(255).with_variant(String(255, collation="C"), "postgresql")


def _index_table(name: str, *columns: Column[object], indexes: tuple[Index, ...] = ()) -> Table:
    return Table(
        name,
        metadata,
        Column("res_type", String(64), nullable=False),
        Column("res_id", String(64), nullable=False),
        Column("param", String(100), nullable=False),
        *columns,
        # (0009) a resource's rows of one parameter: joins and sort keys seek straight to them
        Index(f"ix_{name}_resource", "res_type", "res_id", "param"),
        *indexes,
    )


search_string = _index_table(
    "search_string",
    Column("normalized", BinaryText, nullable=False),
    Column("exact", Text, nullable=False),
    indexes=(Index("ix_search_string_value", "res_type", "param", "normalized"),),
)
# Blind indexes (0008) live here too: values that identify a person
# (`santinel.fhir.search.identifying`) are indexed as keyed digests in `code` (system in clear,
# `text` empty) under their own parameter, never in clear (`storage.sql.search.blind`).
# (0010) Only `:text` reads `text`, never a missing one: rows without it (blind rows, most
# codings) stay out of its index, one page write less per parameter on each commit.
HAS_TEXT = literal_column("text").isnot(None)
search_token = _index_table(
    "search_token",
    Column("system", Text, nullable=True),
    Column("code", BinaryText, nullable=True),
    Column("text", BinaryText, nullable=True),
    indexes=(
        Index("ix_search_token_code", "res_type", "param", "code"),
        Index(
            "ix_search_token_text",
            "res_type",
            "param",
            "text",
            sqlite_where=HAS_TEXT,
            postgresql_where=HAS_TEXT,
        ),
    ),
)
search_date = _index_table(
    "search_date",
    Column("start_us", BigInteger, nullable=False),
    Column("end_us", BigInteger, nullable=False),
    indexes=(
        Index("ix_search_date_start", "res_type", "param", "start_us"),
        Index("ix_search_date_end", "res_type", "param", "end_us"),
    ),
)
search_number = _index_table(
    "search_number",
    Column("value", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    indexes=(Index("ix_search_number_value", "res_type", "param", "value"),),
)
search_quantity = _index_table(
    "search_quantity",
    Column("value", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    Column("system", Text, nullable=True),
    Column("code", BinaryText, nullable=True),
    Column("unit", Text, nullable=True),
    indexes=(Index("ix_search_quantity_value", "res_type", "param", "value"),),
)
search_reference = _index_table(
    "search_reference",
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("url", Text, nullable=False),
    indexes=(
        Index("ix_search_reference_target", "res_type", "param", "target_id", "target_type"),
        Index("ix_search_reference_reverse", "target_type", "target_id", "res_type", "param"),
    ),
)
search_uri = _index_table(
    "search_uri",
    Column("value", BinaryText, nullable=False),
    indexes=(Index("ix_search_uri_value", "res_type", "param", "value"),),
)


def _component_columns(n: int) -> list[Column[object]]:
    """One component of a composite value: the columns of whichever type it has."""
    return [
        Column(f"c{n}_system", Text, nullable=True),
        Column(f"c{n}_code", BinaryText, nullable=True),
        Column(f"c{n}_value", Float, nullable=True),
        Column(f"c{n}_low", Float, nullable=True),
        Column(f"c{n}_high", Float, nullable=True),
        Column(f"c{n}_start", BigInteger, nullable=True),
        Column(f"c{n}_end", BigInteger, nullable=True),
        Column(f"c{n}_text", BinaryText, nullable=True),
    ]


# Composite parameters (R4 `search.html#composite`): one row per combination of component values
# taken from the same element, so `code-value-quantity=8480-6$gt100` matches one component.
MAX_COMPONENTS = 3
search_composite = _index_table(
    "search_composite",
    *(c for n in range(1, MAX_COMPONENTS + 1) for c in _component_columns(n)),
    indexes=(Index("ix_search_composite_first", "res_type", "param", "c1_code"),),
)

# Result snapshots give stable paging under concurrent writes (R4 `search.html#stateful`):
# the first page stores the ordered ids of the whole result, later pages read slices of it.
search_snapshot = Table(
    "search_snapshot",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("created_us", BigInteger, nullable=False),
    Column("res_type", String(64), nullable=True),
    Column("query", Text, nullable=False),
    Column("total", Integer, nullable=False),
    Column("complete", Boolean, nullable=False),
    Column("ids", LargeBinary, nullable=False),
    Column("owner", String(200), nullable=False, server_default=""),
    Index("ix_search_snapshot_created", "created_us"),
)

INDEX_TABLES = (
    search_string,
    search_token,
    search_date,
    search_number,
    search_quantity,
    search_reference,
    search_uri,
    search_composite,
)


# --- OAuth 2 / SMART (authorization server state) -------------------------------------------
# Secrets and opaque tokens are stored as digests only; signing keys' private parts are
# sealed by the key-encryption key once encryption at rest lands.
oauth_client = Table(
    "oauth_client",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("tier", String(16), nullable=False),
    Column("scope", Text, nullable=False),
    Column("auth_method", String(32), nullable=False),
    Column("secret_digest", String(64), nullable=True),
    Column("jwks", Text, nullable=True),
    Column("jwks_url", Text, nullable=True),
    Column("redirect_uris", Text, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    # gateway (0006): limits, partner contract, sender constraints
    Column("rate_limit", String(64), nullable=True),  # e.g. "600/minute"
    Column("quota", String(64), nullable=True),  # e.g. "100000/day"
    Column("allowed_types", Text, nullable=True),  # space-separated; None: any type
    Column("purposes", Text, nullable=True),  # space-separated purpose-of-use codes
    Column("cert_thumbprint", String(64), nullable=True),  # x5t#S256 of its mTLS certificate
    Column("require_dpop", Boolean, nullable=False, server_default=false()),
)
signing_key = Table(
    "signing_key",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("private_pem", LargeBinary, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("retire_after_us", BigInteger, nullable=True),
)
# One-time values with an expiry: client-assertion jti's (replay cache), revoked access tokens.
used_token = Table(
    "used_token",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("token_id", String(200), primary_key=True),
    Column("expires_us", BigInteger, nullable=False),
    Index("ix_used_token_expires", "expires_us"),
)

# --- Authorization code flow ----------------------------------------------------------------
app_user = Table(
    "app_user",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("username", String(200), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),  # argon2id
    Column("fhir_user", String(200), nullable=True),
    Column("totp_secret", String(64), nullable=True),
    Column("disabled", Boolean, nullable=False),
    Column("created_us", BigInteger, nullable=False),
)
# A browser between /oauth/authorize and the redirect with a code: keyed by the digest of the
# value in its cookie; the CSRF token of its forms is kept as a digest too.
authz_request = Table(
    "authz_request",
    metadata,
    Column("request_digest", String(64), primary_key=True),
    Column("csrf_digest", String(64), nullable=False),
    Column("params", Text, nullable=False),
    Column("user_id", String(64), nullable=True),
    Column("patient", String(64), nullable=True),
    Column("failures", Integer, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Index("ix_authz_request_expires", "expires_us"),
)
# What a user approved for a client; codes, refresh tokens and access tokens hang off it, and
# revoking it (a replayed code, a reused refresh token) revokes all of them.
oauth_grant = Table(
    "oauth_grant",
    metadata,
    Column("grant_id", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("scope", Text, nullable=False),
    Column("context", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("revoked", Boolean, nullable=False),
)
oauth_code = Table(
    "oauth_code",
    metadata,
    Column("code_digest", String(64), primary_key=True),
    Column("grant_id", String(64), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("nonce", String(255), nullable=True),
    Column("expires_us", BigInteger, nullable=False),
    Column("used", Boolean, nullable=False),
)
refresh_token = Table(
    "refresh_token",
    metadata,
    Column("token_digest", String(64), primary_key=True),
    Column("grant_id", String(64), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("scope", Text, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("used", Boolean, nullable=False),
    Index("ix_refresh_token_grant", "grant_id"),
)
grant_token = Table(
    "grant_token",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("grant_id", String(64), nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Index("ix_grant_token_grant", "grant_id"),
)
launch_context = Table(
    "launch_context",
    metadata,
    Column("launch_digest", String(64), primary_key=True),
    Column("context", Text, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
)

# --- Audit trail (append-only, hash-chained) -------------------------------------------------
audit_event = Table(
    "audit_event",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),  # chain position
    Column("event_id", String(64), nullable=False, unique=True),
    Column("recorded_us", BigInteger, nullable=False),
    Column("patient", String(64), nullable=True),
    Column("client_id", String(64), nullable=True),
    Column("user_ref", String(200), nullable=True),
    Column("action", String(1), nullable=False),
    Column("outcome", String(2), nullable=False),
    Column("subtype", String(64), nullable=False),
    Column("entity", String(300), nullable=True),
    Column("body", LargeBinary, nullable=False),  # sealed with `key_id` (0011); else clear
    Column("hash", String(64), nullable=False),
    Column("key_id", String(32), nullable=True),  # None: written in clear, before 0011
    Index("ix_audit_event_patient", "patient", "seq"),
    Index("ix_audit_event_client", "client_id", "seq"),
    Index("ix_audit_event_recorded", "recorded_us"),
)
audit_checkpoint = Table(
    "audit_checkpoint",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("signature", Text, nullable=False),
)
# After pruning: the (seq, hash) the remaining records chain from, signed with the audit key.
audit_anchor = Table(
    "audit_anchor",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("signature", Text, nullable=False),
)

# --- Encryption at rest (0008) ---------------------------------------------------------------
# Data keys (one per patient compartment, per class of other data, one for the blind indexes),
# each wrapped by the key-encryption key named by `kek_id`. `generation` grows with every
# `santinel keys rotate-dek`; a retired key still opens its rows until they are re-encrypted;
# an erased key (crypto-shredding, RGPD art. 17) has no wrapped value left.
data_key = Table(
    "data_key",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("owner", String(100), nullable=False),  # Patient/<id>, type:<Type>, shared, …
    Column("generation", Integer, nullable=False),
    Column("wrapped", LargeBinary, nullable=True),
    Column("kek_id", String(200), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("retired_us", BigInteger, nullable=True),
    Column("erased_us", BigInteger, nullable=True),
    UniqueConstraint("owner", "generation", name="uq_data_key_owner_generation"),
)
# Counters every node reads: `epoch` grows with each erasure and rotation (nodes drop cached keys
# when it moves); `legacy_plaintext` is 1 while rows written before 0008 may be unencrypted;
# `audit_legacy_seq` (0011) is the last audit record stored in clear.
keystore_state = Table(
    "keystore_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
# Patients whose record must be kept (litigation, legal obligation): erasure is refused.
legal_hold = Table(
    "legal_hold",
    metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("placed_us", BigInteger, nullable=False),
)
