"""Worker memory over a long run: a stateless and a stateful pipeline, 1M messages each.

    python bench/memory.py [--messages 1000000] [--recovery] [--keep DIR]

Runs two pipelines as `python -m bytewax.run factflow.flow` worker processes, the way
bench/engine.py runs its cases (its helpers start, watch and check them):

  identity      bench/pipelines/identity.yaml: one passthrough route
  deduplicate   bench/pipelines/deduplicate.yaml: the stream keyed by `user` (997 users),
                `deduplicate` on `id`; every id comes twice in a row, so half the messages
                are dropped and the state grows by one id every second message

While a case runs, the bench reads each process's VmHWM (peak resident set) from
/proc/<pid>/status and how far it has read its input (the file offset in
/proc/<pid>/fdinfo), and prints the peak at 10%, 50% and 100% of the input (100%: the last
sample before the process exited).

Verdicts: the identity pipeline must not grow after warm-up: its peak at 100% at most
GROWTH_LIMIT above the peak at 50%, or the bench exits with status 1. The deduplicate
pipeline's state grows by design; it prints the bytes of resident memory each distinct
id added between 10% and 100%, and with `--recovery` (a Bytewax recovery directory, as
`factflow run` uses) the bytes per id of the step's last snapshot in the recovery store.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bytewax.recovery import init_db_dir
from engine import Case, factflow_case, generate, run_case

USERS = 997  # the same spread as engine.generate's `user`
MARKS = (0.10, 0.50, 1.00)
GROWTH_LIMIT = 0.05
DEDUP_STEP = "dedup__0_deduplicate"
KIB = 1024


def generate_pairs(path: Path, count: int) -> int:
    """`count` lines where every id comes twice in a row; returns the distinct ids."""
    with path.open("w") as out:
        for i in range(count):
            ident = i // 2
            record = {"id": ident, "user": f"user-{ident % USERS}", "value": i % 1000}
            out.write(json.dumps(record) + "\n")
    return (count + 1) // 2


def status_kib(pid: int, field_name: str) -> int | None:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM); None once the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    return None


def read_offset(pid: int, path: Path) -> int | None:
    """The offset of `pid`'s open file descriptor on `path` (None until it opened it)."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return None
    for fd in fds:
        try:
            if Path(fd.readlink()) != path:
                continue
            info = Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text()
        except OSError:
            continue  # closed between the listing and the read
        for line in info.splitlines():
            if line.startswith("pos:"):
                return int(line.split()[1])
    return None


@dataclass
class MemoryWatch:
    """Samples every process of a case at each poll of engine.run_case."""

    source: Path
    size: int = field(init=False)
    peaks: dict[int, dict[float, int]] = field(default_factory=dict)  # pid -> mark -> KiB
    last: dict[int, int] = field(default_factory=dict)  # pid -> the last VmHWM read

    def __post_init__(self) -> None:
        self.size = self.source.stat().st_size

    def __call__(self, procs: list[subprocess.Popen[bytes]]) -> None:
        for proc in procs:
            peak = status_kib(proc.pid, "VmHWM")
            if peak is None:
                continue
            self.last[proc.pid] = peak
            offset = read_offset(proc.pid, self.source)
            done = self.peaks.setdefault(proc.pid, {})
            for mark in MARKS[:-1]:
                if mark not in done and offset is not None and offset >= mark * self.size:
                    done[mark] = peak

    def at(self, pid: int, mark: float) -> int | None:
        """Peak KiB of `pid` at `mark` of the input (the last sample for 100%)."""
        return self.last.get(pid) if mark == MARKS[-1] else self.peaks.get(pid, {}).get(mark)


def with_recovery(case: Case, directory: Path) -> Case:
    """The case with a Bytewax recovery directory, one partition per worker."""
    directory.mkdir(parents=True)
    init_db_dir(directory, case.workers * case.processes)  # type: ignore[no-untyped-call]
    env = {
        **case.env,
        "BYTEWAX_RECOVERY_DIRECTORY": str(directory),
        # no older snapshots kept: the store holds what a resume needs, nothing more
        "BYTEWAX_RECOVERY_BACKUP_INTERVAL": "0",
    }
    return dataclasses.replace(case, env=env)


def snapshot_bytes(directory: Path, step_id: str) -> int:
    """Bytes of `step_id`'s newest snapshot of every key in the recovery partitions
    (Bytewax stores step ids prefixed with the flow's name)."""
    total = 0
    for part in sorted(directory.glob("part-*.sqlite3")):
        with sqlite3.connect(part) as db:
            row = db.execute(
                "SELECT SUM(LENGTH(ser_change)) FROM snaps AS s WHERE step_id LIKE ? AND "
                "snap_epoch = (SELECT MAX(snap_epoch) FROM snaps WHERE step_id = s.step_id "
                "AND state_key = s.state_key)",
                (f"%.{step_id}",),
            ).fetchone()
        total += row[0] or 0
    return total


def report(label: str, watch: MemoryWatch) -> list[int | None]:
    """Print a case's peaks per process; returns the first process's, one per mark."""
    marks = ", ".join(f"{mark:.0%}" for mark in MARKS)
    print(f"{label}: peak RSS per worker process (MiB) at {marks}")
    first: list[int | None] = []
    for index, pid in enumerate(watch.last):
        values = [watch.at(pid, mark) for mark in MARKS]
        shown = "  ".join("-" if v is None else f"{v / KIB:7.1f}" for v in values)
        print(f"  process {index}: {shown}")
        first = first or values
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument(
        "--recovery", action="store_true", help="run with a Bytewax recovery directory"
    )
    parser.add_argument("--keep", type=Path, default=None, help="run folders here, kept")
    args = parser.parse_args(argv)
    messages: int = args.messages
    if messages < 100:
        parser.error("--messages must be >= 100 (the marks are 10% apart)")

    with tempfile.TemporaryDirectory(prefix="ffmemory-") as tmp:
        work: Path = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        plain, pairs = work / "input.jsonl", work / "pairs.jsonl"
        generate(plain, messages)
        distinct = generate_pairs(pairs, messages)
        print(f"bench: {messages} messages; deduplicate: {distinct} distinct ids", flush=True)

        identity = factflow_case("identity", "identity.yaml", plain)
        dedup = factflow_case("deduplicate", "deduplicate.yaml", pairs)
        recovery = work / "recovery"
        if args.recovery:
            identity = with_recovery(identity, work / "recovery-identity")
            dedup = with_recovery(dedup, recovery)

        stateless = MemoryWatch(plain)
        result = run_case(identity, work / "identity", messages, stateless)
        print(f"identity: {result.rate:,.0f} msg/s")
        flat = report("identity", stateless)
        stateful = MemoryWatch(pairs)
        result = run_case(dedup, work / "deduplicate", distinct, stateful)
        print(f"deduplicate: {result.rate:,.0f} msg/s")
        grown = report("deduplicate", stateful)
        snapshot = snapshot_bytes(recovery, DEDUP_STEP) if args.recovery else None

    print()
    ok = True
    at_half, at_end = flat[1], flat[2]
    if at_half is None or at_end is None:
        print("identity: too short a run to sample 50% (try more --messages)")
        ok = False
    else:
        growth = at_end / at_half - 1
        ok = growth <= GROWTH_LIMIT
        verdict = "no growth after warm-up" if ok else "GROWS after warm-up"
        print(
            f"identity: {verdict}: 50% -> 100% {growth:+.1%} "
            f"({(at_end - at_half) / KIB:+.1f} MiB; limit {GROWTH_LIMIT:.0%})"
        )
    start, end = grown[0], grown[2]
    if start is not None and end is not None:
        ids = distinct * (MARKS[-1] - MARKS[0])
        print(
            f"deduplicate: {(end - start) * KIB / ids:.0f} bytes of RSS per distinct id "
            f"(10% -> 100%: {(end - start) / KIB:+.1f} MiB over {ids:,.0f} ids, "
            f"{USERS} keyed instances)"
        )
    if snapshot is not None:
        print(
            f"deduplicate: last recovery snapshot {snapshot / KIB / KIB:.1f} MiB, "
            f"{snapshot / distinct:.0f} bytes per distinct id"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
