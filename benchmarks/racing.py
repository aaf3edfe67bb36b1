"""Racing writers: throughput and conflict rate of writer processes recording facts for the same patients at once.

For SQLite (a fresh file) and PostgreSQL when reachable (a fresh database created on the
server and dropped afterwards): ``--patients`` phase I patients are enrolled (three a stratum)
and their cycle 1 started; then ``--writers`` processes, released together by a barrier, each
send ``--commands`` commands through ``TrialLedger.handle``, one transaction each. Every writer
walks the same courses (``course``: six cycles of daily bosutinib doses, InO on the scheduled
days, the cycle starts, a toxicity and a CR a cycle, the last two under command ids shared by
the writers), each patient's facts in clinical order, the patients interleaved in an order of
the writer's own. So the writers race for the same facts: the first to record one wins, the
others are refused by its rule (BOS-DAILY, INO-ONCE, CYCLE-ORDER, ...) or answered as
duplicates of its command id.

Baseline, in the same run: the same commands (the writers' lists taken in turn) recorded by ONE
writer process on a fresh database.

Figures: commands; accepted, duplicates and refused (by rule); throughput (commands/s of all
writers together, from the barrier to the last writer's last answer) and command latency;
conflicts retried (``TrialLedger.conflicts_retried``) and conflict rate (retries per command);
``ConcurrentWriteError``s reported; and, checked against the final ledger: lost (an entry a
writer was told was recorded that is not there, or a fact sent that is missing without a
reported error) and duplicated (an entry id twice, or one fact recorded twice: two doses on a
day, two infusions on a day, a cycle started twice, a command id's fact twice, an entry told
to two writers). Then ``ledger verify``.

    python -m benchmarks.racing [--writers 4] [--patients 12] [--commands 600] [--postgres SERVER_URL | --no-postgres] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from benchmarks.import_speed import fresh_database
from benchmarks.scale import DEFAULT_POSTGRES, postgres_unreachable
from ledger.bootstrap import Settings, build_ledger
from ledger.commands import AssessResponse, EnrollPatient, PatientCommand, RecordBosutinibDose, RecordInoInfusion, ReportToxicity, StartCycle
from ledger.domain.values import Actor, Attribution, Phase, Response, Role
from ledger.errors import CommandRefused, ConcurrentWriteError, LedgerError
from ledger.handlers import EVENT_OF_COMMAND
from ledger.integrity.verify import verify
from ledger.persistence import EntryRow

START = date(2016, 1, 4)  # day 1 of cycle 1 of every patient
CYCLES = 6
ACTOR_ROLE = Role.INVESTIGATOR
Fact = tuple[str, str, date]  # patient id, event kind, clinical date: what the workload records at most once


def patient_id(n: int) -> str:
    return f"W{n:03d}"


def course(pid: str) -> list[PatientCommand]:
    """A patient's six cycles after the start of cycle 1, in clinical order; one fact a command."""
    commands: list[PatientCommand] = []
    for cycle in range(1, CYCLES + 1):
        first = START + timedelta(days=28 * (cycle - 1))
        if cycle > 1:
            commands.append(StartCycle(patient_id=pid, cycle=cycle, started_on=first))
        for d in range(1, 29):
            on = first + timedelta(days=d - 1)
            if cycle == 1 and d in (1, 8, 15):
                commands.append(RecordInoInfusion(patient_id=pid, given_on=on, dose_mg_m2=0.8 if d == 1 else 0.5))
            elif cycle > 1 and d == 1:  # day 1 only, after the CR of cycle 1 (INO-DAY1-ONLY)
                commands.append(RecordInoInfusion(patient_id=pid, given_on=on, dose_mg_m2=1.0))
            commands.append(RecordBosutinibDose(patient_id=pid, taken_on=on, dose_mg=300))
            if d == 10:
                commands.append(ReportToxicity(patient_id=pid, onset_on=on, term="Nausea", grade=1, attribution=Attribution.POSSIBLE,
                                               command_id=f"{pid}-c{cycle}-nausea"))
            if d == 28:
                commands.append(AssessResponse(patient_id=pid, assessed_on=on, response=Response.CR, command_id=f"{pid}-c{cycle}-response"))
    return commands


def writer_commands(writer: int, patients: int, count: int) -> list[PatientCommand]:
    """The first ``count`` commands of writer ``writer``: every patient's course in order, the patients interleaved at random."""
    rng = random.Random(2311998 + writer)
    courses = [course(patient_id(n)) for n in range(patients)]
    positions = [0] * patients
    commands: list[PatientCommand] = []
    while len(commands) < count:
        open_ = [n for n in range(patients) if positions[n] < len(courses[n])]
        if not open_:
            break
        n = rng.choice(open_)
        commands.append(courses[n][positions[n]])
        positions[n] += 1
    return commands


def fact_of(command: PatientCommand) -> Fact:
    return command.patient_id, EVENT_OF_COMMAND[type(command)].__name__, command.occurred_on


@dataclass
class Answers:
    """One writer's run: what it was told about each command, in order, and its own figures."""

    recorded: list[list[str]] = field(default_factory=list)  # the entry ids of each command it recorded
    duplicates: list[list[str]] = field(default_factory=list)  # the entry ids of each command acknowledged as recorded before
    refused: Counter[str] = field(default_factory=Counter)  # by the first rule named
    reported: list[int] = field(default_factory=list)  # indexes of the commands answered by ConcurrentWriteError
    conflicts_retried: int = 0
    latencies: list[float] = field(default_factory=list)
    started: float = 0.0  # wall clock, comparable between processes
    ended: float = 0.0


def write(url: str, writer: int, commands: list[PatientCommand], barrier: Any) -> Answers:
    """Record ``commands`` one transaction each, once every writer is ready."""
    user = f"writer.{writer}"
    ledger = build_ledger(Settings(database_url=url, user=user))
    actor = Actor(user, ACTOR_ROLE)
    answers = Answers()
    barrier.wait()
    answers.started = time.time()
    for index, command in enumerate(commands):
        began = time.perf_counter()
        try:
            outcome = ledger.handle(command, actor)
            (answers.duplicates if outcome.duplicate else answers.recorded).append(outcome.entry_ids)
        except CommandRefused as refusal:
            answers.refused[refusal.rule_id] += 1
        except ConcurrentWriteError:
            answers.reported.append(index)
        answers.latencies.append(time.perf_counter() - began)
    answers.ended = time.time()
    answers.conflicts_retried = ledger.conflicts_retried
    ledger.close()
    return answers


def enroll(url: str, patients: int) -> None:
    ledger = build_ledger(Settings(database_url=url, user="bench.setup"))
    actor = Actor("bench.setup", ACTOR_ROLE)
    try:
        for n in range(patients):
            pid = patient_id(n)
            ledger.handle(EnrollPatient(patient_id=pid, enrolled_on=START, diagnosis="PH_POS_ALL", phase=Phase.I, stratum=f"S{n // 3:03d}",
                                        cd22_percent=60.0, abl_mutations=[], bsa_m2=1.8), actor)
            ledger.handle(StartCycle(patient_id=pid, cycle=1, started_on=START), actor)
    except LedgerError as error:
        raise SystemExit(f"setting up the patients failed: {error}") from error
    finally:
        ledger.close()


@dataclass
class Run:
    """One configuration's figures: several writers racing, or one writer alone."""

    writers: int
    commands: int
    accepted: int
    duplicates: int
    refused: int
    refused_by_rule: dict[str, int]
    seconds: float
    commands_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    conflicts_retried: int
    conflict_rate: float  # retries per command
    concurrent_write_errors: int
    lost: int
    duplicated: int
    verified: bool


def run(url: str, plans: list[list[PatientCommand]], patients: int) -> Run:
    """Enroll, then let one writer process per plan record it, all released together; check the final ledger."""
    enroll(url, patients)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(len(plans))
        with context.Pool(len(plans)) as pool:
            jobs = [pool.apply_async(write, (url, writer, plan, barrier)) for writer, plan in enumerate(plans)]
            results: list[Answers] = [job.get() for job in jobs]
    commands = sum(len(plan) for plan in plans)
    seconds = max(a.ended for a in results) - min(a.started for a in results)
    latencies = sorted(s for a in results for s in a.latencies)
    refused: Counter[str] = Counter()
    for a in results:
        refused.update(a.refused)
    retried = sum(a.conflicts_retried for a in results)
    lost, duplicated, verified = check(url, plans, results)
    return Run(
        writers=len(plans), commands=commands, accepted=sum(len(a.recorded) for a in results), duplicates=sum(len(a.duplicates) for a in results),
        refused=sum(refused.values()),
        refused_by_rule=dict(refused.most_common()), seconds=seconds, commands_per_s=commands / seconds,
        latency_p50_ms=1000 * statistics.median(latencies), latency_p99_ms=1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        conflicts_retried=retried, conflict_rate=retried / commands, concurrent_write_errors=sum(len(a.reported) for a in results),
        lost=lost, duplicated=duplicated, verified=verified,
    )


def check(url: str, plans: list[list[PatientCommand]], results: list[Answers]) -> tuple[int, int, bool]:
    """(lost, duplicated, the hash chain verifies), from the final ledger."""
    ledger = build_ledger(Settings(database_url=url, user="bench.check"))
    try:
        with ledger.engine.connect() as connection:
            rows = connection.execute(select(EntryRow.entry_id, EntryRow.patient_id, EntryRow.kind, EntryRow.occurred_on, EntryRow.command_id)).all()
        verified = verify(ledger.engine).intact
    finally:
        ledger.close()
    in_ledger = Counter(row.entry_id for row in rows)
    facts = Counter((row.patient_id, row.kind, row.occurred_on) for row in rows if row.patient_id is not None)
    recorded = [entry_id for a in results for ids in a.recorded for entry_id in ids]
    acknowledged = {entry_id for a in results for ids in a.duplicates for entry_id in ids}
    failed = {fact_of(plan[i]) for a, plan in zip(results, plans, strict=True) for i in a.reported}
    sent = {fact_of(command) for plan in plans for command in plan}
    lost = sum(1 for entry_id in set(recorded) | acknowledged if entry_id not in in_ledger)
    lost += sum(1 for fact in sent if fact not in facts and fact not in failed)
    duplicated = sum(n - 1 for n in in_ledger.values() if n > 1)  # an entry id twice in the index
    duplicated += sum(n - 1 for fact, n in facts.items() if n > 1 and fact in sent)  # one fact recorded twice
    duplicated += len(recorded) - len(set(recorded))  # one entry told to two writers as theirs
    return lost, duplicated, verified


# --- output ---------------------------------------------------------------------------------


def render(result: BackendResult, patients: int) -> str:
    backend, race, alone = result.backend, result.race, result.alone
    rows: list[tuple[str, str, str, str]] = [("", f"{race.writers} writers", "1 writer", "ratio")]

    def row(name: str, a: Any, b: Any, ratio: str = "") -> None:
        rows.append((name, _text(a), _text(b), ratio))

    row("commands", race.commands, alone.commands)
    row("accepted", race.accepted, alone.accepted)
    row("duplicates (command id)", race.duplicates, alone.duplicates)
    row("refused", race.refused, alone.refused)
    row("throughput (commands/s)", race.commands_per_s, alone.commands_per_s, f"{result.ratio:.2f}")
    row("latency p50 / p99 (ms)", f"{race.latency_p50_ms:.1f} / {race.latency_p99_ms:.1f}", f"{alone.latency_p50_ms:.1f} / {alone.latency_p99_ms:.1f}")
    row("conflicts retried", race.conflicts_retried, alone.conflicts_retried)
    row("conflict rate (retries/command)", f"{race.conflict_rate:.4f}", f"{alone.conflict_rate:.4f}")
    row("ConcurrentWriteErrors reported", race.concurrent_write_errors, alone.concurrent_write_errors)
    row("lost", race.lost, alone.lost)
    row("duplicated", race.duplicated, alone.duplicated)
    row("ledger verify", "intact" if race.verified else "BROKEN", "intact" if alone.verified else "BROKEN")
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"{backend}: {race.writers} writers x {race.commands // race.writers:,} commands for the same {patients} patients, "
             f"{race.seconds:.1f} s; baseline: the same {alone.commands:,} commands by one writer, {alone.seconds:.1f} s", ""]
    for i, r in enumerate(rows):
        lines.append("  " + "  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]).rstrip())
        if i == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    lines.append("  refused by rule: " + ", ".join(f"{rule} {n:,}" for rule, n in race.refused_by_rule.items()))
    return "\n".join(lines)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


NOTES = """\
throughput: all commands over the time from the barrier to the last writer's last answer; ratio: racing / one writer.
The writers take the store's write lock before they read (SQLite BEGIN IMMEDIATE, PostgreSQL LOCK TABLE ... IN EXCLUSIVE
MODE), so they queue rather than conflict: a retry follows only a lock wait that ran out (SQLite's 30 s busy timeout, a
PostgreSQL lock_timeout) or a unique index. A writer whose cached patient another writer changed reads it again."""


# --- main -----------------------------------------------------------------------------------


@dataclass
class BackendResult:
    backend: str
    race: Run
    alone: Run
    ratio: float  # the racing writers' throughput over the one writer's


def run_backend(backend: str, server: str | None, tmp: Path, args: argparse.Namespace) -> BackendResult:
    plans = [writer_commands(w, args.patients, args.commands) for w in range(args.writers)]
    in_turn = [plan[i] for i in range(max(len(p) for p in plans)) for plan in plans if i < len(plan)]
    print(f"{backend}: {args.writers} writers racing", file=sys.stderr, flush=True)
    with fresh_database(server, tmp, f"race_{backend.lower()}") as url:
        race = run(url, plans, args.patients)
    print(f"{backend}: one writer, the same commands", file=sys.stderr, flush=True)
    with fresh_database(server, tmp, f"alone_{backend.lower()}") as url:
        alone = run(url, [in_turn], args.patients)
    return BackendResult(backend, race, alone, race.commands_per_s / alone.commands_per_s)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--writers", type=int, default=4, help="writer processes racing (default 4)")
    parser.add_argument("--patients", type=int, default=12, help="patients the writers share (default 12)")
    parser.add_argument("--commands", type=int, default=600, help="commands each writer sends (default 600)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--postgres", metavar="SERVER_URL", help=f"PostgreSQL server to create the benchmark databases on (default {DEFAULT_POSTGRES})")
    group.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.writers < 2 or args.patients < 1 or args.commands < 1:
        parser.error("--writers must be at least 2; --patients and --commands positive")

    started = time.perf_counter()
    backends: list[tuple[str, str | None]] = [("SQLite", None)]
    skipped: dict[str, str] = {}
    if not args.no_postgres:
        server = args.postgres or DEFAULT_POSTGRES
        why = postgres_unreachable(server)
        if why is None:
            backends.append(("PostgreSQL", server))
        elif args.postgres:
            print(f"PostgreSQL at {server} cannot be reached: {why}", file=sys.stderr)
            return 5
        else:
            skipped["PostgreSQL"] = f"not reachable at {DEFAULT_POSTGRES} ({why})"
    results: list[BackendResult] = []
    with tempfile.TemporaryDirectory(prefix="ledger-racing-") as tmp_dir:
        for backend, server_url in backends:
            result = run_backend(backend, server_url, Path(tmp_dir), args)
            results.append(result)
            if not args.json:
                print(render(result, args.patients), end="\n\n", flush=True)
    wall = time.perf_counter() - started
    if args.json:
        print(json.dumps({"writers": args.writers, "patients": args.patients, "commands_per_writer": args.commands, "wall_seconds": round(wall, 1),
                          "backends": [_rounded(asdict(r)) for r in results], "skipped": skipped}, indent=2, default=_rounded))
    else:
        for backend, why in skipped.items():
            print(f"{backend}: skipped, {why}")
        print(NOTES)
        print(f"total wall time {wall:.0f} s")
    failed = any(r.lost or r.duplicated or not r.verified for result in results for r in (result.race, result.alone))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
