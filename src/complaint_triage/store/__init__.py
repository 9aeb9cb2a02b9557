"""Storage: the only package that speaks SQL (SQLAlchemy, Alembic).

engine      the Store facade: records, raw mail, failures, case links in one transaction
tables      the SQLAlchemy tables
case_links  records linked to cases, case history and statuses
checkpoints per-source checkpoints and poll status
leases      one worker per source at a time
alert_log   which alerts were sent, pending or given up
migrate     Alembic migrations, run when a store is opened
"""

from complaint_triage.store.engine import Store, make_engine, redact_url

__all__ = ["Store", "make_engine", "redact_url"]
