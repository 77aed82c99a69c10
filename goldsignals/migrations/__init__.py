"""Alembic migrations of the signals database (SQLite or Postgres)."""
