"""Triage throughput against the floor (mail-parser + blank spaCy tokenizer), in one run.

    python benchmarks/throughput.py [--sizes 1000 5000 20000] [--workers 2]

Two mixes, side by side: complaint-only mail (notices generated from the fixtures) and a
seller's inbox (90% everyday mail, 10% notices). For each N and mix: floor msg/s on the same
messages, ours msg/s (single process and with --workers), the ratio of the two in wall time and
in CPU time (the steadier one on a shared machine), and peak RSS; then the
start of `--help` and of `process` on one message, and the load average while it ran.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from complaint_triage.testing.generate import generate, generate_inbox
from complaint_triage.testing.measure import peak_rss_kib

MIXES = {"notices": generate, "inbox": generate_inbox}

CLI = [sys.executable, "-m", "complaint_triage.cli"]


def floor_rate(paths: list[Path]) -> tuple[float, float]:
    """mail-parser parsing plus the blank tokenizer over the extracted text, nothing else: msg/s of wall and of CPU time."""
    import mailparser
    import spacy

    tokenizer = spacy.blank("en").tokenizer
    raws = [path.read_bytes() for path in paths]
    start, cpu = time.perf_counter(), time.process_time()
    for raw in raws:
        mail = mailparser.parse_from_bytes(raw)
        tokenizer("\n".join(mail.text_plain) or "\n".join(mail.text_html))
    return len(raws) / (time.perf_counter() - start), len(raws) / (time.process_time() - cpu)


def run_process(directory: Path, workers: int, database: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of `process DIR` into a fresh SQLite file.

    The CPU time (user + system, from wait4) counts the process and the workers it waited for;
    on a machine shared with other work it is the steadier figure, the wall time the one a user sees.

    The peak is the child's own VmHWM, read every 50 ms until it exits (wait4's ru_maxrss showed
    this benchmark's own peak, with all N messages held for the floor, once that was the larger).
    Forked triage workers have their own, not counted here.
    """
    env = {**os.environ, "COMPLAINT_TRIAGE__STORE__URL": f"sqlite:///{database}"}
    start = time.perf_counter()
    child = subprocess.Popen(
        [*CLI, "process", str(directory), "--format", "jsonl", "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak_kib = 0
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        peak_kib = max(peak_kib, peak_rss_kib(child.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"process failed with status {status}")
    return wall, usage.ru_utime + usage.ru_stime, peak_kib / 1024


def cold_start(*args: str) -> float:
    """Seconds for one command, interpreter start included."""
    start = time.perf_counter()
    subprocess.run([*CLI, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure_mix(name: str, size: int, scratch: Path, workers: int) -> tuple[dict, list[Path]]:
    """Floor, one process and WORKERS processes on SIZE messages of one mix."""
    directory = scratch / f"{name}{size}"
    paths = MIXES[name](size, directory)
    floor, floor_cpu = floor_rate(paths)
    wall, cpu, rss = run_process(directory, 1, scratch / f"{name}-one{size}.db")
    wall_w, _cpu_w, rss_w = run_process(directory, workers, scratch / f"{name}-many{size}.db")
    return {
        "floor": floor,
        "ours": size / wall,
        "cpu_ratio": (size / cpu) / floor_cpu,
        "rss": rss,
        "ours_w": size / wall_w,
        "rss_w": rss_w,
    }, paths


def _cells(figures: dict) -> str:
    ratio, speedup = figures["ours"] / figures["floor"], figures["ours_w"] / figures["ours"]
    return (
        f"{figures['floor']:>7.0f} {figures['ours']:>6.0f} {ratio:>5.2f} {figures['cpu_ratio']:>5.2f} {figures['rss']:>6.0f}"
        f" {figures['ours_w']:>6.0f} {speedup:>5.2f} {figures['rss_w']:>6.0f}"
    )


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, load average at start {os.getloadavg()[0]:.2f}"
    )
    head = f"{'floor/s':>7} {'ours/s':>6} {'ratio':>5} {'cpu':>5} {'RSS MB':>6} {'w=' + str(args.workers) + '/s':>6} {'vs 1':>5} {'RSS MB':>6}"
    print(f"{'':>6} | {'complaint-only mail':^51} | {'inbox mix (90% everyday)':^51}")
    print(f"{'N':>6} | {head} | {head}")
    with tempfile.TemporaryDirectory() as scratch:
        for size in args.sizes:
            notices, paths = measure_mix("notices", size, Path(scratch), args.workers)
            inbox, _ = measure_mix("inbox", size, Path(scratch), args.workers)
            print(
                f"{size:>6} | {_cells(notices)} | {_cells(inbox)}  (load {os.getloadavg()[0]:.2f})",
                flush=True,
            )
        help_start = min(cold_start("--help") for _ in range(3))
        cold = min(cold_start("process", str(paths[0]), "--no-store") for _ in range(3))
    print(
        f"start of `--help`: {help_start:.2f} s; `process` on one message: {cold:.2f} s; load average at end {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
