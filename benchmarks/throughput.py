"""Triage throughput against the floor (mail-parser + blank spaCy tokenizer), in one run.

    python benchmarks/throughput.py [--sizes 1000 5000 20000] [--workers 2]

Prints one table: N, floor msg/s, ours msg/s (single process and with --workers), the ratios,
and peak RSS; then the cold start of `process` on one message.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate  # noqa: E402
from complaint_triage.testing.measure import peak_rss_kib  # noqa: E402

CLI = [sys.executable, "-m", "complaint_triage.cli"]


def floor_rate(paths: list[Path]) -> float:
    """mail-parser parsing plus the blank tokenizer over the extracted text, nothing else."""
    import mailparser
    import spacy

    tokenizer = spacy.blank("en").tokenizer
    raws = [path.read_bytes() for path in paths]
    start = time.perf_counter()
    for raw in raws:
        mail = mailparser.parse_from_bytes(raw)
        tokenizer("\n".join(mail.text_plain) or "\n".join(mail.text_html))
    return len(raws) / (time.perf_counter() - start)


def run_process(directory: Path, workers: int, database: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of `process DIR` into a fresh SQLite file.

    The peak is the child's own VmHWM, read every 50 ms until it exits (wait4's ru_maxrss showed
    this benchmark's own peak, with all N messages held for the floor, once that was the larger).
    Forked triage workers have their own, not counted here.
    """
    env = {**os.environ, "COMPLAINT_TRIAGE__STORE__URL": f"sqlite:///{database}"}
    start = time.perf_counter()
    child = subprocess.Popen([*CLI, "process", str(directory), "--format", "jsonl", "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak_kib = 0
    while True:
        pid, status, _ = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        peak_kib = max(peak_kib, peak_rss_kib(child.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"process failed with status {status}")
    return wall, peak_kib / 1024


def cold_start(path: Path) -> float:
    """Seconds for `process` on a single message, interpreter start included."""
    start = time.perf_counter()
    subprocess.run([*CLI, "process", str(path), "--no-store"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"{'N':>6} {'floor/s':>8} {'ours/s':>8} {'ratio':>6} {'RSS MB':>7} | {'w=' + str(args.workers) + ' /s':>8} {'vs 1':>5} {'RSS MB':>7}")
    with tempfile.TemporaryDirectory() as scratch:
        for size in args.sizes:
            directory = Path(scratch) / f"mail{size}"
            paths = generate(size, directory)
            floor = floor_rate(paths)
            wall, rss = run_process(directory, 1, Path(scratch) / f"one{size}.db")
            wall_w, rss_w = run_process(directory, args.workers, Path(scratch) / f"many{size}.db")
            ours, ours_w = size / wall, size / wall_w
            print(f"{size:>6} {floor:>8.0f} {ours:>8.0f} {ours / floor:>6.2f} {rss:>7.0f} | {ours_w:>8.0f} {ours_w / ours:>5.2f} {rss_w:>7.0f}", flush=True)
        cold = min(cold_start(paths[0]) for _ in range(3))
    print(f"cold start of `process` on one message: {cold:.2f} s")


if __name__ == "__main__":
    main()
