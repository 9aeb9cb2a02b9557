"""The child process that reads attachments: limits on itself, then one framed request at a time from stdin.

Frames are a 4-byte big-endian length and the bytes; a request is an attachment's bytes, a reply JSON.
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import sys
import time
import warnings

from complaint_triage.attachments.extraction import extract_attachment
from complaint_triage.settings import AttachmentSettings

HEADER = 4


def read_exact(stream, size: int) -> bytes | None:
    """SIZE bytes from a blocking stream; None at end of input."""
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def write_frame(stream, payload: bytes) -> None:
    """One length-prefixed frame."""
    stream.write(len(payload).to_bytes(HEADER, "big") + payload)
    stream.flush()


def status_kib(field: str) -> int:
    """A VmRSS/VmHWM figure of this process, in KiB (0 where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak() -> None:
    """Start VmHWM again from the current RSS, so each reply reports its own extraction's peak."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        pass


def limit_memory(limits: AttachmentSettings) -> None:
    """RLIMIT_AS for the whole process: an allocation past it fails instead of swapping the host."""
    size = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size, size))


def limit_cpu(limits: AttachmentSettings) -> None:
    """RLIMIT_CPU counts the process's whole life: the soft limit moves to CPU used so far plus one job's allowance."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime) + limits.cpu_seconds
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    resource.setrlimit(
        resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard)
    )


def serve(limits: AttachmentSettings, requests, replies) -> None:
    """Answer requests until stdin closes (the parent is gone or done)."""
    import complaint_triage.attachments.docx
    import complaint_triage.attachments.pdf  # noqa: F401

    write_frame(replies, b'{"ready": true}')
    while (header := read_exact(requests, HEADER)) is not None:
        data = read_exact(requests, int.from_bytes(header, "big"))
        if data is None:
            return
        reset_peak()
        limit_cpu(limits)
        started = time.perf_counter()
        reply = extract_attachment(data, limits).to_dict()
        reply.update(
            seconds=time.perf_counter() - started, peak_kib=status_kib("VmHWM"), rss_kib=status_kib("VmRSS")
        )
        del data
        write_frame(replies, json.dumps(reply).encode("utf-8"))


def main() -> None:
    """Entry point: limits from argv[1] (JSON), frames on stdin/stdout; library prints go to stderr."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when this process stops
    warnings.simplefilter("ignore")
    limits = AttachmentSettings.model_validate_json(sys.argv[1])
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print from a library must not corrupt the frames
    limit_memory(limits)
    serve(limits, sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
