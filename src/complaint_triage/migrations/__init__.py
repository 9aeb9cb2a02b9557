"""Alembic migrations of the store's schema; `complaint_triage.migrate` runs them on start."""
