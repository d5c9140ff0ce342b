"""SQL persistence on SQLite (embedded) and PostgreSQL (production) with SQLAlchemy Core."""
