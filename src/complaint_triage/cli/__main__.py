"""`python -m complaint_triage.cli`: the command line."""

from complaint_triage.cli.main import main

main()
