"""Engine throughput: raw Bytewax against factflow pipelines, same input, one run.

    python bench/engine.py [--messages 200000] [--cpu-messages N] [--rounds 2] [--keep DIR]

Generates one JSON-lines file of small payloads (not timed), then runs each case as the
worker processes of `python -m bytewax.run` (epoch interval `-s 1`, no recovery
directory, 127.0.0.1 only). Every case must write exactly one output line per input line
and no dead letter, or the bench fails.

  raw                   a hand-written Bytewax dataflow (`raw_flow` below): file source in
                        batches of 1000 lines, json.loads, identity map, json.dumps, file sink
  identity              bench/pipelines/identity.yaml: one passthrough route, file queues
  chain3                bench/pipelines/chain3.yaml: three passthrough routes in one flow
  identity -w 2 / 2 processes   the identity pipeline on two workers / two processes
  cpu 1 / 2 processes   bench/pipelines/cpu.yaml: sha256 rounds for ~0.2 ms a message
                        (calibrated here), on the first `--cpu-messages` lines

Timing: the bench watches each case's output file. msg/s counts the messages written
after the first output appeared, over the time from then until the last process exited:
interpreter start, imports, compiling the pipeline and joining the cluster are excluded
(shown as "1st out s"), so the ratios compare engines. "cpu us/msg" is the processes' CPU
time over the same span per message, "cores" that CPU time over the span's wall time:
when other work shares the machine, "cores" shows how much of it a case got. The cpu
cases also print their msg/s from 10% to 90% of the output ("steady state"): the
processes' start and end (batches growing from one message, the last partial batch, the
exits) left out, which a short run's 2-process figure otherwise carries twice.
Stage storage is off (`FACTFLOW_STORE_STAGES=0`); factflow's file sink fsyncs every
batch, as it does in production, the raw sink does not.

Every case runs `--rounds` times, interleaved, and the table keeps each case's fastest
run. Each round also times the hash loop alone in one and two plain processes: the
scaling the machine itself offers at that moment, printed next to factflow's.

Targets (issue 20): identity >= 0.5x raw, the 3-route chain >= 0.4x raw, cpu 2 processes
>= 1.85x cpu 1 process (exit status 1 when one is missed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from factflow.adapters.base import Adapter, Context
from factflow.connectors.file import BATCH_LINES
from factflow.dataflows.launch import free_ports
from factflow.messages import Message

HERE = Path(__file__).resolve().parent
PIPELINES = HERE / "pipelines"
REPO = HERE.parent

EPOCH_SECONDS = "1"
HASH_ROUNDS_ENV = "BENCH_HASH_ROUNDS"
HASH_TARGET_MS = 0.2
TIMEOUT_SECONDS = 300
POLL_SECONDS = 0.02
MACHINE_CHECK_MESSAGES = 5000  # about a second of hashing
TARGET_IDENTITY = 0.5
TARGET_CHAIN = 0.4
TARGET_CPU_SCALING = 1.85


# -- worker side: imported as `engine` by the bytewax.run processes ---------------------


class _LinesPartition(StatefulSourcePartition[bytes, int]):
    def __init__(self, path: str, at: int) -> None:
        self._file = Path(path).open("rb")  # noqa: SIM115 - closed in close()
        self._file.seek(at)

    def next_batch(self) -> list[bytes]:
        batch = [line for line in islice(self._file, BATCH_LINES) if line.strip()]
        if not batch:
            raise StopIteration
        return batch

    def snapshot(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


class LinesSource(FixedPartitionedSource[bytes, int]):
    """Lines of one file, one partition, batches as large as factflow's file source."""

    def __init__(self, path: str) -> None:
        self.path = path

    def list_parts(self) -> list[str]:
        return ["0"]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _LinesPartition:
        return _LinesPartition(self.path, resume_state or 0)


class _LinesSinkPartition(StatelessSinkPartition[str]):
    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write_batch(self, items: list[str]) -> None:
        os.write(self._fd, "".join(f"{item}\n" for item in items).encode())

    def close(self) -> None:
        os.close(self._fd)


class LinesSink(DynamicSink[str]):
    def __init__(self, path: str) -> None:
        self.path = path

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _LinesSinkPartition:
        return _LinesSinkPartition(self.path)


def raw_flow(source: str, sink: str) -> Dataflow:
    """The baseline: decode, identity, encode, one item at a time."""
    flow = Dataflow("raw_bytewax")
    lines = op.input("read", flow, LinesSource(source))
    decoded = op.map("decode", lines, json.loads)
    same = op.map("identity", decoded, lambda item: item)
    encoded = op.map("encode", same, json.dumps)
    op.output("write", encoded, LinesSink(sink))
    return flow


def hash_rounds(payload: bytes, rounds: int) -> str:
    digest = payload
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


class HashLoop(Adapter):
    """CPU-bound: sha256 over the payload `rounds` times (BENCH_HASH_ROUNDS wins)."""

    name: ClassVar[str] = "bench_hash_loop"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"rounds": {"type": "integer", "minimum": 1}},
        "additionalProperties": False,
    }

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.rounds = int(os.environ.get(HASH_ROUNDS_ENV) or self.config.get("rounds", 500))

    def process(self, message: Message, context: Context) -> list[Message]:
        body = json.dumps(message.payload, sort_keys=True).encode()
        digest = hash_rounds(body, self.rounds)
        return [message.with_changes(payload={**message.payload, "digest": digest})]


# -- driver ------------------------------------------------------------------------


def generate(path: Path, count: int) -> None:
    with path.open("w") as out:
        for i in range(count):
            record = {"id": i, "user": f"user-{i % 997}", "value": i * 7 % 1000, "tag": "bench"}
            out.write(json.dumps(record) + "\n")


def head(source: Path, target: Path, count: int) -> None:
    with source.open("rb") as lines, target.open("wb") as out:
        for _, line in zip(range(count), lines, strict=False):
            out.write(line)


def calibrate_rounds() -> int:
    """sha256 rounds that take about HASH_TARGET_MS on this machine."""
    body = json.dumps({"id": 1, "user": "user-1", "value": 7, "tag": "bench"}).encode()
    rounds = 20_000
    started = time.process_time()  # CPU time: other work on the machine does not count
    hash_rounds(body, rounds)
    per_round_ms = (time.process_time() - started) * 1000 / rounds
    return max(1, round(HASH_TARGET_MS / per_round_ms))


def machine_scaling(rounds: int, messages: int) -> float:
    """How much faster two processes hash than one, without Bytewax or factflow: the
    scaling this machine offers right now (other work on it takes its share)."""
    body = b"x" * 64
    started = time.perf_counter()
    _hash_many(body, rounds, messages)
    one = time.perf_counter() - started
    started = time.perf_counter()
    workers = [
        multiprocessing.Process(target=_hash_many, args=(body, rounds, messages // 2))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return one / (time.perf_counter() - started)


def _hash_many(body: bytes, rounds: int, count: int) -> None:
    for _ in range(count):
        hash_rounds(body, rounds)


def count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as lines:
        return sum(1 for _ in lines)


@dataclass(frozen=True)
class Case:
    label: str
    target: str  # the bytewax.run import string
    env: dict[str, str]
    output: str  # relative to the run folder
    workers: int = 1
    processes: int = 1

    def commands(self) -> list[list[str]]:
        base = [
            sys.executable, "-m", "bytewax.run", self.target,
            "-w", str(self.workers), "-s", EPOCH_SECONDS,
        ]  # fmt: skip
        if self.processes == 1:
            return [base]
        addresses = ";".join(f"127.0.0.1:{port}" for port in free_ports(self.processes))
        return [[*base, "-i", str(i), "-a", addresses] for i in range(self.processes)]


def factflow_case(
    label: str, pipeline: str, input_file: Path, *, workers: int = 1, processes: int = 1
) -> Case:
    env = {
        "FACTFLOW_PIPELINE": str(PIPELINES / pipeline),
        "FACTFLOW_EXECUTION_ID": "bench",
        "FACTFLOW_STORE_STAGES": "0",
        "FACTFLOW_INPUTS": json.dumps({"bench.in": str(input_file)}),
        "FACTFLOW_SOURCE_PARTITIONS": str(workers * processes),
    }
    return Case(label, "factflow.flow", env, "queues/bench.out.jsonl", workers, processes)


def raw_case(input_file: Path) -> Case:
    return Case("raw", f"engine:raw_flow({str(input_file)!r}, 'out.jsonl')", {}, "out.jsonl")


@dataclass(frozen=True)
class Result:
    """One case's run: its processes' wall and CPU time, and where output began."""

    label: str
    messages: int
    wall: float
    cpu: float
    first_output: float  # seconds from start until the output file had lines
    lines_at_first: int  # how many it had then
    cpu_at_first: float  # CPU seconds the processes had used by then
    middle: float | None = None  # seconds from 10% to 90% of the output (None: too quick)

    @property
    def _steady(self) -> tuple[int, float, float]:
        """Messages, wall and CPU seconds after the first output: startup excluded."""
        span = self.wall - self.first_output
        if span <= 0 or self.lines_at_first >= self.messages:
            return self.messages, self.wall, self.cpu  # output came all at once
        return self.messages - self.lines_at_first, span, self.cpu - self.cpu_at_first

    @property
    def rate(self) -> float:
        messages, wall, _ = self._steady
        return messages / wall

    @property
    def cpu_us(self) -> float:
        """CPU microseconds per message (all processes)."""
        messages, _, cpu = self._steady
        return cpu / messages * 1e6

    @property
    def middle_rate(self) -> float | None:
        """msg/s from 10% to 90% of the output: the steady state, with the start of the
        processing (batches growing from one message) and the end (the last partial batch,
        the processes' exit) left out as well."""
        return None if not self.middle else 0.8 * self.messages / self.middle

    @property
    def cores(self) -> float:
        _, wall, cpu = self._steady
        return cpu / wall


def run_case(
    case: Case,
    folder: Path,
    messages: int,
    watch: Callable[[list[subprocess.Popen[bytes]]], None] | None = None,
) -> Result:
    """Start the case's processes, watch the output file, wait for them to exit.

    `watch`, if given, is called with the running processes at every poll (bench/memory.py
    samples their memory there)."""
    folder.mkdir(parents=True)
    output = folder / case.output
    # the case's settings only: no FACTFLOW_DATABASE_URL (lineage) or BYTEWAX_* from outside
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("FACTFLOW_", "BYTEWAX_"))}
    env = {
        **inherited,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO), os.environ.get("PYTHONPATH", "")]),
        **case.env,
    }
    logs = [(folder / f"process-{i}.log").open("wb") for i in range(case.processes)]
    cpu_before = _children_cpu()
    started = time.perf_counter()
    procs = [
        subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
        for command, log in zip(case.commands(), logs, strict=True)
    ]
    first: tuple[float, int, float] | None = None
    sizes: list[tuple[float, int]] = []  # (seconds, output bytes): lines are alike in size
    try:
        for _ in range(int(TIMEOUT_SECONDS / POLL_SECONDS)):
            if all(proc.poll() is not None for proc in procs):
                break
            size = output.stat().st_size if output.exists() else 0
            sizes.append((time.perf_counter() - started, size))
            if first is None and size:
                cpu = sum(_process_cpu(proc.pid) for proc in procs)
                first = (time.perf_counter() - started, count_lines(output), cpu)
            if watch is not None:
                watch(procs)
            time.sleep(POLL_SECONDS)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        codes = [proc.wait() for proc in procs]
        for log in logs:
            log.close()
    wall = time.perf_counter() - started
    if any(codes):
        tail = (folder / "process-0.log").read_text(errors="replace")[-3000:]
        msg = f"bench: {case.label} exited with {codes}\n{tail}"
        raise SystemExit(msg)
    check_output(case, folder, messages)
    cpu = _children_cpu() - cpu_before
    at, lines, cpu_at = first or (wall, messages, cpu)
    middle = _middle_seconds(sizes, output.stat().st_size)
    return Result(case.label, messages, wall, cpu, at, lines, cpu_at, middle)


def _middle_seconds(sizes: list[tuple[float, int]], final: int) -> float | None:
    """Seconds between the first polls that saw 10% and 90% of the final output."""
    t10 = next((t for t, size in sizes if size >= final * 0.1), None)
    t90 = next((t for t, size in sizes if size >= final * 0.9), None)
    if t10 is None or t90 is None or t90 - t10 < 10 * POLL_SECONDS:
        return None  # over between two polls: no steady state to measure
    return t90 - t10


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pid: int) -> float:
    """User + system seconds of a running process (Linux /proc; 0 where unavailable)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check_output(case: Case, folder: Path, expected: int) -> None:
    got = count_lines(folder / case.output)
    dead = {p.name: count_lines(p) for p in folder.glob("queues/*.dlq.jsonl")}
    if got != expected or any(dead.values()):
        msg = (
            f"bench: {case.label} wrote {got} lines for {expected} input lines "
            f"(dead letters: {dead or 'none'}) in {folder}"
        )
        raise SystemExit(msg)


def rows(results: list[Result], raw: Result) -> Iterator[str]:
    yield (
        f"{'case':<22}{'messages':>9}{'wall s':>8}{'1st out s':>10}{'msg/s':>9}{'x raw':>7}"
        f"{'cpu us/msg':>11}{'cores':>6}"
    )
    for r in results:
        yield (
            f"{r.label:<22}{r.messages:>9}{r.wall:>8.2f}{r.first_output:>10.2f}{r.rate:>9,.0f}"
            f"{r.rate / raw.rate:>7.2f}{r.cpu_us:>11.1f}{r.cores:>6.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--cpu-messages", type=int, default=None, help="default: messages / 6")
    parser.add_argument(
        "--rounds", type=int, default=2, help="run every case this often, keep the fastest"
    )
    parser.add_argument("--keep", type=Path, default=None, help="run folders here, kept")
    args = parser.parse_args(argv)
    messages: int = args.messages
    cpu_messages: int = min(messages, args.cpu_messages or messages // 6)
    if messages < 1 or cpu_messages < 1 or args.rounds < 1:
        parser.error("--messages, --cpu-messages and --rounds must be >= 1")

    with tempfile.TemporaryDirectory(prefix="ffbench-") as tmp:
        work: Path = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        data, cpu_data = work / "input.jsonl", work / "cpu-input.jsonl"
        generate(data, messages)
        head(data, cpu_data, cpu_messages)
        rounds = calibrate_rounds()
        os.environ[HASH_ROUNDS_ENV] = str(rounds)
        print(
            f"bench: {messages} messages ({data.stat().st_size / messages:.0f} bytes a line); "
            f"cpu cases: {cpu_messages} at {rounds} sha256 rounds (~{HASH_TARGET_MS} ms) each; "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        plan = [
            (raw_case(data), messages),
            (factflow_case("identity", "identity.yaml", data), messages),
            (factflow_case("chain3", "chain3.yaml", data), messages),
            (factflow_case("identity -w 2", "identity.yaml", data, workers=2), messages),
            (factflow_case("identity 2 processes", "identity.yaml", data, processes=2), messages),
            (factflow_case("cpu 1 process", "cpu.yaml", cpu_data), cpu_messages),
            (factflow_case("cpu 2 processes", "cpu.yaml", cpu_data, processes=2), cpu_messages),
        ]
        best: dict[str, Result] = {}
        machine = 0.0
        for round_ in range(1, args.rounds + 1):
            machine = max(machine, machine_scaling(rounds, MACHINE_CHECK_MESSAGES))
            for index, (case, count) in enumerate(plan):
                folder = work / f"{round_}-{index}-{case.label.replace(' ', '_')}"
                result = run_case(case, folder, count)
                print(f"  round {round_}: {case.label}: {result.wall:.2f} s", flush=True)
                if case.label not in best or result.rate > best[case.label].rate:
                    best[case.label] = result
        results = [best[case.label] for case, _ in plan]

    by_label = {r.label: r for r in results}
    raw = by_label["raw"]
    print()
    for line in rows(results, raw):
        print(line)
    identity = by_label["identity"].rate / raw.rate
    identity_cpu = raw.cpu_us / by_label["identity"].cpu_us
    print()
    print(f"identity / raw:               {identity:.2f}x (target >= {TARGET_IDENTITY}x)")
    print(f"  the same in CPU per message: {identity_cpu:.2f}x")
    chain = by_label["chain3"].rate / raw.rate
    print(f"chain3 / raw:                 {chain:.2f}x (target >= {TARGET_CHAIN}x)")
    print(f"  the same in CPU per message: {raw.cpu_us / by_label['chain3'].cpu_us:.2f}x")
    cpu1, cpu2 = by_label["cpu 1 process"], by_label["cpu 2 processes"]
    scaling = cpu2.rate / cpu1.rate
    print(f"cpu 2 processes / 1 process:  {scaling:.2f}x (target >= {TARGET_CPU_SCALING}x)")
    print(
        f"  CPU per message, 2 processes / 1: {cpu2.cpu_us / cpu1.cpu_us:.2f}x; "
        f"cores busy {cpu1.cores:.2f} -> {cpu2.cores:.2f}"
    )
    print(f"  the same hash loop without Bytewax, 2 processes / 1: {machine:.2f}x (the machine)")
    if cpu1.middle_rate and cpu2.middle_rate:
        steady = cpu2.middle_rate / cpu1.middle_rate
        print(
            f"  steady state (10% -> 90% of the output): {steady:.2f}x "
            f"({cpu1.middle_rate:,.0f} -> {cpu2.middle_rate:,.0f} msg/s)"
        )
    print(f"load average at the end:      {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    missed = identity < TARGET_IDENTITY or chain < TARGET_CHAIN or scaling < TARGET_CPU_SCALING
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
