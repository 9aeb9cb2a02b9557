"""Crash safety of an IMAP sync: the worker killed with SIGKILL at random points, restarted, again and again.

    python benchmarks/crash_sync.py [--messages 2000] [--kills 20] [--seed 1] [--postgres]

Starts a private Dovecot (complaint_triage.testing.dovecot; needs dovecot-imapd and root, which it drops), delivers
N fixture mails with fresh Message-IDs, and syncs them with `complaint-triage run` (the service,
polling every second, marking committed mail \\Seen) into a store of its own: SQLite beside the
config, or with --postgres a fresh schema on the test PostgreSQL. Each round starts a worker,
waits until it is up, lets it sync for a random while (scaled so that the kills spread over the
whole sync) and kills it with SIGKILL. After every kill the folder checkpoint is checked against
the records: every UID at or below `last_uid` must have a record (its source ends in `;UID=n`).
After the last kill a worker runs until every message is stored and is stopped with SIGTERM.

Printed: messages, kills, duplicates (Message-IDs with more than one row), losses (delivered and
never stored), re-triaged (rows with attempts > 1: committed, then triaged again), checkpoint-ahead
violations, mail left unflagged, peak RSS of a worker, and wall time. tests/test_crash.py runs the
same harness with fewer messages and kills. Exit status 1 when any count that must be zero is not.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from complaint_triage.testing.crash import crash_sync, store_url_for
from complaint_triage.testing.dovecot import Dovecot, dovecot_available
from complaint_triage.testing.mail import sample_messages


def main() -> None:
    """Deliver, sync with kills, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--commit-seconds", type=float, default=1.0, help="The workers' [store] commit_seconds."
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="Store in a fresh schema on the test PostgreSQL instead of SQLite.",
    )
    args = parser.parse_args()
    if not dovecot_available():
        raise SystemExit("needs dovecot-imapd, openssl and root (Dovecot drops to its own users)")
    server = Dovecot()
    server.start()
    try:
        user, tag = server.new_user(), f"crash{args.seed}"
        server.append(user, sample_messages(args.messages, tag))
        with tempfile.TemporaryDirectory() as scratch, store_url_for(args.postgres, Path(scratch)) as url:
            print(
                f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; store: {'PostgreSQL' if args.postgres else 'SQLite'}; seed {args.seed}"
            )
            figures = crash_sync(
                server,
                user,
                {f"<{tag}-{n}@test.example>" for n in range(args.messages)},
                url,
                Path(scratch),
                args.kills,
                args.seed,
                args.commit_seconds,
            )
    finally:
        server.destroy()
    print("\n".join(figures.lines()))
    sys.exit(0 if figures.clean else 1)


if __name__ == "__main__":
    main()
