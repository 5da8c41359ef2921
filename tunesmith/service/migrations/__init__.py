"""Alembic migrations of the service database (applied by `Database.migrate` at start-up)."""
