"""Horizontal scaling: a CPU-bound pipeline on 1, 2 and 3 processes, as ratios to one.

    python bench/scale.py [--messages 6000] [--rounds 2]

The pipeline is bench/engine.py's `cpu` case (bench/pipelines/cpu.yaml: sha256 rounds
for ~0.2 ms a message, calibrated here) on file queues, run as Bytewax processes with
`-i/-a` on 127.0.0.1 (bench/engine.py's `run_case`: timed from the first output to the
last exit, every input line must come out once). Beside each ratio, the same hash loop
in as many plain Python processes (no Bytewax, no factflow), measured in the same
round: the scaling the machine itself offers at that moment. On a 2-core machine a
third process has no core of its own; the table shows what that costs. Every case runs
`--rounds` times, interleaved; the fastest run of each is kept.

Not measured here: processes on other hosts, or a broker between them (the processes
compete for the file queue's partitions).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine import (
    HASH_ROUNDS_ENV,
    HASH_TARGET_MS,
    Result,
    _hash_many,
    calibrate_rounds,
    factflow_case,
    generate,
    run_case,
)

PROCESSES = (1, 2, 3)


def plain_loop(processes: int, rounds: int, messages: int) -> float:
    """Seconds the hash loop takes for `messages` split over `processes` processes."""
    started = time.perf_counter()
    workers = [
        multiprocessing.Process(target=_hash_many, args=(b"x" * 64, rounds, messages // processes))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ffscale-") as tmp:
        work = Path(tmp)
        data = work / "input.jsonl"
        generate(data, args.messages)
        rounds = calibrate_rounds()
        os.environ[HASH_ROUNDS_ENV] = str(rounds)
        print(
            f"bench: {args.messages} messages at {rounds} sha256 rounds (~{HASH_TARGET_MS} ms)"
            f" each; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        best: dict[int, Result] = {}
        plain: dict[int, float] = {}
        for round_index in range(args.rounds):
            for n in PROCESSES:
                case = factflow_case(f"cpu {n}", "cpu.yaml", data, processes=n)
                result = run_case(case, work / f"r{round_index}-p{n}", args.messages)
                if n not in best or result.rate > best[n].rate:
                    best[n] = result
                seconds = plain_loop(n, rounds, args.messages)
                plain[n] = min(plain.get(n, seconds), seconds)
        print(f"{'processes':<10}{'msg/s':>9}{'x 1':>7}{'cores':>7}{'plain x 1':>11}")
        for n in PROCESSES:
            r = best[n]
            print(
                f"{n:<10}{r.rate:>9,.0f}{r.rate / best[1].rate:>7.2f}{r.cores:>7.2f}"
                f"{plain[1] / plain[n]:>11.2f}"
            )
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
