"""Crash safety: `complaint-triage run` killed with SIGKILL at random points of an IMAP sync, restarted, killed again.

The harness is benchmarks/crash_sync.py (which runs 20 kills on 2,000 messages); here it runs with
fewer of both, on SQLite and on PostgreSQL. After every kill the folder checkpoint may claim only
UIDs that have a record; at the end every delivered message has exactly one record, none was
triaged twice, and every one is flagged \\Seen (settled after its commit, or by the next poll).
"""

from __future__ import annotations

import pytest

from complaint_triage.testing.crash import crash_sync, store_url_for
from complaint_triage.testing.mail import sample_messages
from tests.conftest import require_postgres


@pytest.mark.parametrize(("backend", "count", "kills"), [("sqlite", 500, 4), ("postgresql", 300, 3)])
def test_sigkill_at_random_points_loses_and_doubles_nothing_and_the_checkpoint_never_runs_ahead(
    backend, count, kills, dovecot, tmp_path
):
    if backend == "postgresql":
        require_postgres()
    user, tag = dovecot.new_user(), f"crash-{backend}"
    dovecot.append(user, sample_messages(count, tag))
    with store_url_for(backend == "postgresql", tmp_path) as url:
        # commits every 0.25 s at the latest, so that this short sync has several and kills fall between them
        figures = crash_sync(
            dovecot,
            user,
            {f"<{tag}-{n}@test.example>" for n in range(count)},
            url,
            tmp_path,
            kills,
            seed=count,
            commit_seconds=0.25,
        )
    print("\n".join(figures.lines()))  # shown with -s, and with the failure
    assert figures.kills == kills and figures.kills_after_sync <= 1, (
        figures.stored_at_kills
    )  # the pace is estimated: one kill may come late
    assert (figures.duplicates, figures.losses, figures.retriaged) == (0, 0, 0)
    assert figures.checkpoint_ahead == 0
    assert figures.unsettled == 0
