"""Support shared by the test suite and the benchmarks, which never import each other.

dovecot   a private Dovecot IMAP server on loopback (needs dovecot-imapd and root)
mail      builders of real RFC 5322 test messages and fixture copies with fresh Message-IDs
postgres  a fresh schema on the test PostgreSQL for each test or benchmark
hostile   Hypothesis strategies of malformed mail and the property each message must keep (needs hypothesis)
crash     the SIGKILL-and-restart harness of an IMAP sync
measure   what the benchmarks read about the processes they start
"""
