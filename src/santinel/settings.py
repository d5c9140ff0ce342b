"""Settings, read once at the edge (CLI flags, `SANTINEL_*` environment) and passed down.

Every field's description is the documentation: `tests/unit/test_docs.py` checks that the README
names each setting, so a new setting without docs fails the build.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SANTINEL_", frozen=True, extra="forbid")

    host: str = Field("127.0.0.1", description="Address the HTTP server listens on.")
    port: int = Field(8080, ge=0, le=65535, description="TCP port the HTTP server listens on.")
    data_dir: Path = Field(
        Path("santinel-data"),
        description="Directory of the embedded SQLite database (used when no database URL is set).",
    )
    database_url: str | None = Field(
        None,
        description="PostgreSQL URL (postgresql://user@host:port/db); overrides the data dir.",
    )
    public_base_url: str | None = Field(
        None,
        description="Public FHIR base URL used in links and Location headers "
        "(default: taken from the request).",
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
    audit_key_file: Path | None = Field(
        None,
        description="Private key signing the audit trail's checkpoints (created 0600 when "
        "missing; default: audit-signing-key.pem in the data dir). Keep it where the database "
        "administrator cannot read it.",
    )
    audit_checkpoint_seconds: float = Field(
        10.0, gt=0, description="How often the head of the audit chain is signed."
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
