"""What the benchmarks read about the processes they start."""

from __future__ import annotations

from pathlib import Path


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set since its exec (VmHWM), in KiB; 0 when it is gone.

    Not the ru_maxrss that wait4 reports for a child: Linux carries the parent's high-water mark
    into the child across fork and exec, so that figure is never below the parent's own peak.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
