"""Four processes recording facts for the same two patients at once, on SQLite and on PostgreSQL.

Every writer is given every fact of the race, in an order of its own (``plan``): the 28
bosutinib doses and the three InO infusions of cycle 1, an infusion off the schedule, the start
of cycle 2 and of cycle 3 (on a date of the writer's own), a response that makes cycle 2
day-1-only racing a day-8 infusion of cycle 2 (INO-DAY1-ONLY lets only one of them in), a
toxicity of the writer's own and one that every writer sends under the same ``command_id``.
Two writers record one command at a time, two in batches (``handle_batch``), while this process
keeps the read models caught up. Afterwards every accepted command's entries are in the ledger
exactly once and nothing else is; every refusal names a rule that the race explains; the final
history keeps the rules, checked here from the entries alone; the hash chain verifies; and the
read models equal a rebuild from the first event.

A conflict is provoked by a real competing writer: a transaction holding the store's write lock
(as the ledger's writers take it) while a ledger waits at most 0.2 s for it.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, select, text

from ledger.application import Outcome, TrialLedger
from ledger.bootstrap import Settings, build_ledger
from ledger.clock import FixedClock
from ledger.commands import AssessResponse, Command, EnrollPatient, RecordBosutinibDose, RecordInoInfusion, ReportToxicity, StartCycle
from ledger.domain.values import Actor, Attribution, Phase, Response, Role
from ledger.errors import CommandRefused, ConcurrentWriteError, LedgerError
from ledger.handlers import EVENT_OF_COMMAND
from ledger.integrity.verify import verify
from ledger.persistence import EntryRow
from ledger.projections.projector import Projector
from ledger.projections.tables import TABLES, read_model_tables
from ledger.queries import patient_history

WRITERS = 4
BATCH = 4  # commands a transaction, for the writers that record in batches
PATIENTS = ("R1", "R2")
START = date(2016, 2, 1)  # day 1 of cycle 1 of both patients
NEVER: frozenset[str] = frozenset()
ONCE = frozenset({"INO-ONCE", "INO-DOSE"})  # a second infusion on a scheduled day, which also passes the cycle's 1.8 mg/m²


def day(n: int) -> date:
    """Day ``n`` of the patients' course, counted from day 1 of cycle 1."""
    return START + timedelta(days=n - 1)


@dataclass(frozen=True)
class Fact:
    """A command of the race and the rules that may refuse it because another writer got there first."""

    command: Command
    may_refuse: frozenset[str]


@dataclass(frozen=True)
class Answer:
    """What the ledger told a writer about one command."""

    entry_ids: tuple[str, ...] = ()
    duplicate: bool = False
    refused_by: tuple[str, ...] = ()  # the rule ids of a refusal
    reported: str | None = None  # any other error: its class and message

    @property
    def accepted(self) -> bool:
        return bool(self.entry_ids) and not self.duplicate


def course(patient_id: str, writer: int) -> list[list[Fact]]:
    """The facts of one patient as strands: a strand's facts are sent in order, strands in any order."""
    pid = patient_id
    strands = [[Fact(RecordBosutinibDose(patient_id=pid, taken_on=day(n), dose_mg=300), frozenset({"BOS-DAILY"}))] for n in range(1, 29)]
    strands += [
        [Fact(RecordInoInfusion(patient_id=pid, given_on=day(n), dose_mg_m2=mg), ONCE)] for n, mg in ((1, 0.8), (8, 0.5), (15, 0.5))
    ]
    # off the schedule: refused by every writer (and, once day 15's is in, as passing the cycle's 1.8 mg/m² too)
    strands.append([Fact(RecordInoInfusion(patient_id=pid, given_on=day(9), dose_mg_m2=0.5), frozenset({"INO-DAYS", "INO-DOSE"}))])
    strands.append([
        Fact(StartCycle(patient_id=pid, cycle=2, started_on=day(29)), frozenset({"CYCLE-ORDER"})),
        # day 8 of cycle 2: refused once the response below is in (a 0.5 mg/m² day-8 dose in a day-1-only cycle), or once another writer's is
        Fact(RecordInoInfusion(patient_id=pid, given_on=day(36), dose_mg_m2=0.5), frozenset({"INO-ONCE", "INO-DAY1-ONLY", "INO-DOSE"})),
        Fact(StartCycle(patient_id=pid, cycle=3, started_on=day(57 + writer)), frozenset({"CYCLE-ORDER"})),
    ])
    # a CR on the last day of cycle 1 makes cycle 2 day-1-only: refused once a day-8 infusion of cycle 2 is in
    strands.append([Fact(AssessResponse(patient_id=pid, assessed_on=day(28), response=Response.CR, command_id=f"{pid}-cr"),
                         frozenset({"INO-DAY1-ONLY", "INO-DOSE"}))])
    strands.append([Fact(ReportToxicity(patient_id=pid, onset_on=day(3 + writer), term="Fatigue", grade=1, attribution=Attribution.POSSIBLE), NEVER)])
    strands.append([Fact(ReportToxicity(patient_id=pid, onset_on=day(20), term="Nausea", grade=2, attribution=Attribution.POSSIBLE,
                                        command_id=f"{pid}-nausea"), NEVER)])
    return strands


def plan(writer: int) -> list[Fact]:
    """Every fact of the race for both patients, in the writer's own (seeded) order."""
    rng = random.Random(writer)
    strands = [strand for pid in PATIENTS for strand in course(pid, writer)]
    order = []
    while strands:
        strand = rng.choice(strands)
        order.append(strand.pop(0))
        if not strand:
            strands.remove(strand)
    return order


def answer(result: Outcome | LedgerError) -> Answer:
    if isinstance(result, Outcome):
        return Answer(tuple(result.entry_ids), result.duplicate)
    if isinstance(result, CommandRefused):
        return Answer(refused_by=tuple(v.rule_id for v in result.violations))
    return Answer(reported=f"{type(result).__name__}: {result}")


def record_one(ledger: TrialLedger, command: Command, actor: Actor) -> Outcome | LedgerError:
    try:
        return ledger.handle(command, actor)
    except LedgerError as error:
        return error


def race(url: str, writer: int, commands: list[Command], barrier: multiprocessing.synchronize.Barrier) -> list[Answer]:
    """Record ``commands`` as writer number ``writer`` (odd writers in batches); the answers, in order."""
    user = f"writer.{writer}"
    ledger = build_ledger(Settings(database_url=url, user=user))
    actor = Actor(user, Role.INVESTIGATOR)
    size = BATCH if writer % 2 else 1
    answers: list[Answer] = []
    barrier.wait()
    try:
        for start in range(0, len(commands), size):
            chunk = commands[start : start + size]
            results = ledger.handle_batch(chunk, actor, stop_at_refusal=False) if size > 1 else [record_one(ledger, chunk[0], actor)]
            answers += [answer(result) for result in results]
        return answers
    finally:
        ledger.close()


def run_writers(url: str, plans: list[list[Fact]], meanwhile: Callable[[], object]) -> list[list[Answer]]:
    """The writers in processes of their own, released together; ``meanwhile`` is called here until they are done."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(len(plans))
        with context.Pool(len(plans)) as pool:
            jobs = [pool.apply_async(race, (url, writer, [fact.command for fact in facts], barrier)) for writer, facts in enumerate(plans)]
            deadline = time.monotonic() + 180
            while not all(job.ready() for job in jobs) and time.monotonic() < deadline:
                meanwhile()
                time.sleep(0.05)
            return [job.get(timeout=1) for job in jobs]


def enroll(ledger: TrialLedger, actor: Actor) -> set[str]:
    """Both patients enrolled, cycle 1 started on ``START``; the entry ids."""
    entry_ids: set[str] = set()
    for pid in PATIENTS:
        enrolled = ledger.handle(
            EnrollPatient(patient_id=pid, enrolled_on=START, diagnosis="PH_POS_ALL", phase=Phase.I, stratum="race",
                          cd22_percent=60.0, abl_mutations=[], bsa_m2=1.8),
            actor,
        )
        entry_ids.update(enrolled.entry_ids, ledger.handle(StartCycle(patient_id=pid, cycle=1, started_on=START), actor).entry_ids)
    return entry_ids


def ledger_entry_ids(ledger: TrialLedger) -> list[str]:
    with ledger.engine.connect() as connection:
        return list(connection.execute(select(EntryRow.entry_id)).scalars())


def read_models(ledger: TrialLedger) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model table's rows, sorted."""
    tables = read_model_tables()
    with ledger.engine.connect() as connection:
        return {name: sorted(tuple(row) for row in connection.execute(select(tables[name]))) for names in TABLES.values() for name in names}


def doses_in_read_model(ledger: TrialLedger) -> dict[str, int]:
    patients = read_model_tables()["rm_patients"]
    with ledger.engine.connect() as connection:
        return dict(connection.execute(select(patients.c.patient_id, patients.c.bosutinib_doses)).tuples().all())


def _value(field: Any) -> Any:
    return getattr(field, "value", field)


def assert_the_rules_hold(entries: list[dict[str, Any]]) -> None:
    """CYCLE-ORDER, BOS-DAILY, INO-DAYS, INO-ONCE and INO-DAY1-ONLY, checked from the entries alone."""

    def of(kind: str) -> list[dict[str, Any]]:
        return [e["data"] for e in entries if e["type"] == kind]

    cycles = sorted((c["started_on"], c["cycle"]) for c in of("CycleStarted"))
    assert [n for _, n in cycles] == list(range(1, len(cycles) + 1)), f"cycles start in order, each once: {cycles}"
    assert all(later - earlier >= timedelta(days=28) for (earlier, _), (later, _) in pairwise(cycles)), cycles

    def cycle_day(on: date) -> tuple[int, date, int]:
        started_on, number = max(c for c in cycles if c[0] <= on)
        return number, started_on, (on - started_on).days + 1

    doses = [d["taken_on"] for d in of("BosutinibDoseRecorded")]
    assert len(doses) == len(set(doses)), "at most one bosutinib dose a day"
    assert all(cycle_day(on)[2] <= 28 for on in doses), "bosutinib on days 1-28 of a cycle only"
    qualifying = [a["assessed_on"] for a in of("ResponseAssessed")
                  if _value(a["response"]) in ("CR", "CRi") or _value(a["cytogenetic"]) == "CCyR" or _value(a["mrd"]) == "NEGATIVE"]
    responded = min(qualifying, default=None)
    infusions = [cycle_day(i["given_on"]) for i in of("InoInfusionRecorded")]
    assert all(n_day in (1, 8, 15) for _, _, n_day in infusions), f"InO on days 1, 8 and 15 only: {infusions}"
    assert len({(n, n_day) for n, _, n_day in infusions}) == len(infusions), f"one InO infusion a scheduled day: {infusions}"
    assert all(n_day == 1 for _, started_on, n_day in infusions if responded is not None and started_on > responded), "day 1 only after a response"


def test_four_writers_racing_for_the_same_patients_lose_nothing_double_nothing_and_keep_the_rules(
    ledger: TrialLedger, database_url: str, investigator: Actor
) -> None:
    setup_ids = enroll(ledger, investigator)
    plans = [plan(writer) for writer in range(WRITERS)]
    projector = Projector(ledger)

    # the writers race while this process keeps the read models caught up
    results = run_writers(database_url, plans, meanwhile=projector.catch_up)
    told = [(fact, said) for facts, answers in zip(plans, results, strict=True) for fact, said in zip(facts, answers, strict=True)]

    # every answer is a recording, a duplicate or a refusal the race explains; no conflict outlasted the bound
    assert [a.reported for _, a in told if a.reported] == []
    unexplained = [(f.command, a.refused_by) for f, a in told if a.refused_by and not set(a.refused_by) <= f.may_refuse]
    assert unexplained == []

    # no lost update and no duplicate: the ledger holds exactly the setup's entries and the accepted commands', each once
    accepted = [entry_id for _, a in told if a.accepted for entry_id in a.entry_ids]
    in_ledger = ledger_entry_ids(ledger)
    assert len(accepted) == len(set(accepted)) and len(in_ledger) == len(set(in_ledger))
    assert set(in_ledger) == setup_ids | set(accepted)
    recorded_under = {f.command.command_id: a.entry_ids for f, a in told if a.accepted}
    assert all(a.entry_ids == recorded_under[f.command.command_id] for f, a in told if a.duplicate)

    # each fact of the race is in once, whoever won it
    patients = {pid: patient_history(ledger, pid)["entries"] for pid in PATIENTS}
    entry = {e["entry_id"]: e for entries in patients.values() for e in entries}
    assert entry.keys() <= set(in_ledger)
    assert all((entry[a.entry_ids[0]]["type"], entry[a.entry_ids[0]]["occurred_on"]) == (EVENT_OF_COMMAND[type(f.command)].__name__, f.command.occurred_on)
               for f, a in told if a.accepted)
    for pid, entries in patients.items():
        kinds = Counter(e["type"] for e in entries)
        assert kinds["BosutinibDoseRecorded"] == 28 and kinds["CycleStarted"] == 3 and kinds["ToxicityReported"] == WRITERS + 1
        assert kinds["InoInfusionRecorded"] + kinds["ResponseAssessed"] == 4, f"{pid}: the CR or the day-8 infusion of cycle 2, not both"
        assert_the_rules_hold(entries)

    assert verify(ledger.engine).intact
    projector.catch_up()
    caught_up = read_models(ledger)
    assert doses_in_read_model(ledger) == dict.fromkeys(PATIENTS, 28)
    Projector(ledger).rebuild()
    assert read_models(ledger) == caught_up


# --- a conflict that lasts --------------------------------------------------------------------


@contextmanager
def write_lock_held(database_url: str) -> Iterator[None]:
    """Another writer's transaction holding the store's write lock, as the ledger's writers take it, until the block ends."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.execute(text("LOCK TABLE ledger_events IN EXCLUSIVE MODE"))
            yield
            connection.rollback()
    finally:
        engine.dispose()


def impatient_ledger(database_url: str, clock: FixedClock, wait_ms: int) -> TrialLedger:
    """A ledger whose writers wait at most ``wait_ms`` for the store's write lock (SQLite's busy timeout, PostgreSQL's lock_timeout)."""
    trial = build_ledger(Settings(database_url=database_url, user="impatient"), clock=clock)
    if not database_url.startswith("sqlite"):
        trial.lock_wait_seconds = wait_ms / 1000
        return trial

    @event.listens_for(trial.engine, "connect")
    def _wait_less(dbapi_connection: Any, _record: Any) -> None:  # runs after the ledger's own listener, which waits 30 s
        dbapi_connection.execute(f"PRAGMA busy_timeout = {wait_ms}")

    trial.engine.dispose()
    return trial


def entries_recorded(ledger: TrialLedger) -> int:
    with ledger.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(EntryRow)).scalar_one())


def one_patient(ledger: TrialLedger, actor: Actor) -> None:
    ledger.handle(
        EnrollPatient(patient_id="R1", enrolled_on=START, diagnosis="PH_POS_ALL", phase=Phase.I, cd22_percent=60.0, abl_mutations=[], bsa_m2=1.8),
        actor,
    )
    ledger.handle(StartCycle(patient_id="R1", cycle=1, started_on=START), actor)


def dose(n: int) -> RecordBosutinibDose:
    return RecordBosutinibDose(patient_id="R1", taken_on=day(n), dose_mg=300)


@pytest.fixture
def impatient(ledger: TrialLedger, database_url: str, clock: FixedClock, investigator: Actor) -> Iterator[TrialLedger]:
    """A second writer on the ledger of one enrolled patient, waiting at most 0.2 s for the write lock."""
    one_patient(ledger, investigator)
    trial = impatient_ledger(database_url, clock, wait_ms=200)
    yield trial
    trial.close()


def test_a_write_lock_held_beyond_the_bound_is_reported_after_max_attempts_with_nothing_recorded(
    ledger: TrialLedger, impatient: TrialLedger, database_url: str, investigator: Actor
) -> None:
    impatient.max_attempts = 3
    before = entries_recorded(ledger)
    with write_lock_held(database_url):
        started = time.monotonic()
        with pytest.raises(ConcurrentWriteError, match="3 attempts"):
            impatient.handle(dose(1), investigator)
        waited = time.monotonic() - started
    assert impatient.conflicts_retried == 2
    assert waited >= 3 * 0.2  # each attempt waited for the lock
    assert entries_recorded(ledger) == before


def test_a_batch_whose_write_lock_stays_held_is_reported_with_nothing_recorded(
    ledger: TrialLedger, impatient: TrialLedger, database_url: str, investigator: Actor
) -> None:
    impatient.max_attempts = 2
    before = entries_recorded(ledger)
    with write_lock_held(database_url), pytest.raises(ConcurrentWriteError):
        impatient.handle_batch([dose(1), dose(2)], investigator)
    assert impatient.conflicts_retried == 2  # the batch, recorded again command by command; the first command's second attempt
    assert entries_recorded(ledger) == before


def test_a_write_lock_released_within_the_bound_is_waited_out_and_the_command_recorded_once(
    ledger: TrialLedger, impatient: TrialLedger, database_url: str, investigator: Actor
) -> None:
    held = threading.Event()

    def hold() -> None:
        with write_lock_held(database_url):
            held.set()
            time.sleep(0.6)  # 8 attempts waiting 0.2 s each, and their pauses, take more than 2 s

    competitor = threading.Thread(target=hold)
    competitor.start()
    assert held.wait(10)
    outcome = impatient.handle(dose(1), investigator)
    competitor.join()
    assert impatient.conflicts_retried >= 1
    doses = [e for e in patient_history(ledger, "R1")["entries"] if e["type"] == "BosutinibDoseRecorded"]
    assert [e["entry_id"] for e in doses] == outcome.entry_ids
