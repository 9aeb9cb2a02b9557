"""Alembic migrations of the store's schema; `complaint_triage.store.migrate` runs them on start."""
