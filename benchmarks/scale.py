"""The ledger at scale, against bare eventsourcing measured in the same run (``make bench``).

Generates a rule-abiding trial (``benchmarks.generate.write_scale``: ~250 events a patient,
every third patient with 300–349 events) and, for SQLite (fresh files in a temporary
directory) and PostgreSQL when reachable (a fresh database ``ledger_bench_<pid>`` created on
the server and dropped afterwards), measures:

1. import rate: ``import_file`` in batches of 100 lines (commands/s), then the projector's
   catch-up; baseline: a bare ``eventsourcing`` application doing a get and a save of one
   event per line (an enrollment: a new aggregate and its stratum's), 100 lines a
   transaction, the same events on aggregates of the same sizes, no rules, no index, no
   projections (commands/s);
2. full rebuild rate: ``Projector.rebuild()`` (events/s); baseline: reading every
   notification of the bare application in pages of 1,000 and decoding it (events/s);
3. patient as-of latency: ``patient_document(ledger, pid, as_of, valid_on)`` through a ledger
   opened for reading, for patients with 300–349 events, at a random recorded time between
   the patient's enrollment and half-way through the import, and a random date of the
   patient's course; the same queries when half the file is imported and again at the end;
   each query twice: as the first read of the patient in the process (aggregate cache
   emptied: ``ledger patient show``) and read again (a long-running reader); baseline: bare
   ``repository.get(id, version)`` of an aggregate with the same number of events (no
   snapshot, no cache), called in turn with the ledger's (p50/p99).

The ledger's and the baseline's phases alternate (save and import of each half; a read before
and after the rebuild) so that a slow or fast spell of the machine hits both.

Targets (from the issue): import ≥ 50 % and rebuild ≥ 50 % of the baseline rate; patient
as-of p99 < 10 ms for a running reader (a first read of each patient in a process is shown
beside it), not growing with the size of the ledger: the p99 at the end over the p99 at
half-way, divided by the baseline's p50 at the end over its p50 at half-way (which tracks
the machine's speed only), at most 1.5, for both.

    python -m benchmarks.scale [--patients 1000] [--postgres SERVER_URL | --no-postgres] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, Application, Cache, LRUCache
from eventsourcing.domain import Aggregate, event
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import create_engine, make_url, text

from benchmarks.generate import CYCLE_DAYS, CYCLES, enrollment_date, is_long, scale_patient_id, scale_patient_lines
from ledger.bootstrap import Settings, build_ledger
from ledger.domain.values import Actor, Role
from ledger.interfaces.importer import ImportReport, Progress, import_file
from ledger.projections.projector import Projector
from ledger.queries import patient_document

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BATCH_SIZE = 100  # lines a transaction, as ``ledger import`` (and the baseline)
READ_PAGE = 1000  # notifications a page, as the projector
IMPORT_TARGET = 0.5
REBUILD_TARGET = 0.5
AS_OF_P99_TARGET_MS = 10.0
AS_OF_GROWTH_TARGET = 1.5
QUERIED_PATIENTS = 12


# --- the generated file -------------------------------------------------------------------


@dataclass
class TrialFile:
    halves: tuple[Path, Path]
    lines: int
    first_half_patients: int
    queried: list[int]  # long patients of the first half, queried at half-way and at the end


def write_trial(directory: Path, patients: int) -> TrialFile:
    half = (patients + 1) // 2
    paths = (directory / "trial-1.jsonl", directory / "trial-2.jsonl")
    lines = 0
    for path, numbers in zip(paths, (range(half), range(half, patients)), strict=True):
        with path.open("w", encoding="utf-8") as out:
            for n in numbers:
                for item in scale_patient_lines(n):
                    out.write(json.dumps(item) + "\n")
                    lines += 1
    longs = [n for n in range(half) if is_long(n)]
    step = max(len(longs) // QUERIED_PATIENTS, 1)
    return TrialFile(paths, lines, half, longs[::step][:QUERIED_PATIENTS])


# --- the bare eventsourcing baseline --------------------------------------------------------


class Subject(Aggregate):
    """A patient or a stratum with nothing but a count: each line's fields are its events."""

    @staticmethod
    def create_id(key: str) -> UUID:
        return uuid5(NAMESPACE_URL, "bench:" + key)

    @event("Opened")
    def __init__(self, key: str, fields: dict[str, Any]) -> None:
        self.key = key
        self.count = 1

    @event("Recorded")
    def record(self, fields: dict[str, Any]) -> None:
        self.count += 1


class Baseline(Application[UUID]):
    """Bare eventsourcing on the same store (tables ``baseline_events``, ...)."""


def baseline_app(url: str, cache: bool) -> Baseline:
    env = {"PERSISTENCE_MODULE": "eventsourcing_sqlalchemy", "SQLALCHEMY_URL": url, "CREATE_TABLE": "y"}
    if cache:
        env["AGGREGATE_CACHE_MAXSIZE"] = "1000"  # as the ledger's store
    return Baseline(env=env)


def baseline_line(app: Baseline, line: dict[str, Any]) -> None:
    """One line: get the aggregates and save one event each, as the ledger's command does."""
    key = line["patient_id"]
    if line["command"] == "enroll_patient":
        stratum_key = "stratum:" + line["stratum"]
        try:
            stratum: Subject = app.repository.get(Subject.create_id(stratum_key))
        except AggregateNotFoundError:
            stratum = Subject(stratum_key, {"stratum": line["stratum"]})
        stratum.record({"patient_id": key, "dose_mg": 300, "assigned_on": line["enrolled_on"]})
        app.save(Subject(key, line), stratum)
    else:
        subject: Subject = app.repository.get(Subject.create_id(key))
        subject.record(line)
        app.save(subject)


def baseline_save(app: Baseline, path: Path, progress: Progress, done: int) -> tuple[int, float]:
    """Save one half of the file's events, BATCH_SIZE lines a transaction; (lines, seconds)."""
    count = 0
    started = time.perf_counter()
    with path.open(encoding="utf-8") as stream:
        batch: list[dict[str, Any]] = []
        for raw in stream:
            batch.append(json.loads(raw))
            if len(batch) == BATCH_SIZE:
                _save_batch(app, batch)
                count += len(batch)
                batch = []
                progress.draw(done + count, done + count)
        if batch:
            _save_batch(app, batch)
            count += len(batch)
    spent = time.perf_counter() - started
    progress.close()
    return count, spent


def _save_batch(app: Baseline, batch: list[dict[str, Any]]) -> None:
    with cast(SQLAlchemyApplicationRecorder, app.recorder).transaction(commit=True):
        for line in batch:
            baseline_line(app, line)


def baseline_read(app: Baseline, progress: Progress) -> tuple[int, float]:
    """Select every notification in pages and decode it; (events, seconds)."""
    started = time.perf_counter()
    end = app.recorder.max_notification_id() or 0
    position, count = 0, 0
    while position < end:
        notifications = app.recorder.select_notifications(position + 1, READ_PAGE, stop=end)
        if not notifications:
            break
        for notification in notifications:
            app.mapper.to_domain_event(notification)
        count += len(notifications)
        position = notifications[-1].id
        progress.position(position, end)
    spent = time.perf_counter() - started
    progress.close()
    return count, spent


# --- measuring ----------------------------------------------------------------------------


@dataclass
class Latency:
    p50_ms: float
    p99_ms: float
    calls: int

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        ms = sorted(s * 1000 for s in seconds)
        return cls(statistics.median(ms), _percentile(ms, 0.99), len(ms))


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(math.ceil(q * len(sorted_values)) - 1, 0)
    return sorted_values[min(rank, len(sorted_values) - 1)]


@contextmanager
def own_heap() -> Iterator[None]:
    """Time a reader as if in a process of its own: the benchmark's objects so far (the baseline's
    aggregate cache, the queries, the results) are set aside from the garbage collector's scans."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass
class Query:
    patient: int
    as_of: datetime
    valid_on: date
    version: int  # the patient's events recorded by ``as_of``: what the ledger loads and the baseline replays


def plan_queries(url: str, trial: TrialFile, calls: int, seed: int = 2311998) -> list[Query]:
    """Random queries, asked at half-way and again at the end: a queried patient, a recorded
    time between the patient's enrollment and now (half-way), a date of the patient's course."""
    rng = random.Random(seed)
    span = CYCLES * CYCLE_DAYS + 168 + 30
    now = datetime.now(UTC)
    reader = build_ledger(Settings(database_url=url, user="bench"))
    try:
        courses = {n: [e.recorded_at for e in reader.load_patient(scale_patient_id(n)).entries] for n in trial.queried}
    finally:
        reader.close()
    queries = []
    for _ in range(calls):
        n = rng.choice(trial.queried)
        recorded = courses[n]
        as_of = recorded[0] + (now - recorded[0]) * rng.random()
        queries.append(Query(n, as_of, enrollment_date(n) + timedelta(days=rng.randrange(span)), bisect_right(recorded, as_of)))
    return queries


def as_of_latencies(ledger_url: str, baseline_url: str, queries: list[Query]) -> dict[str, Latency]:
    """p50/p99 of patient_document through a ledger opened for reading (as a long-running reader
    or ``ledger patient show``), and of a bare repository.get(id, version) of the mirror
    aggregate at the same version (no snapshot, no cache); the calls alternate so that both see
    the machine in the same state.

    ``warm``: the reader has read the patient before (its aggregate cache holds it); ``cold``:
    the first read of the patient in the process (the cache emptied before the call).
    """
    reader = build_ledger(Settings(database_url=ledger_url, user="bench"))
    app = baseline_app(baseline_url, cache=False)
    repository = reader.store.repository
    try:
        for q in {q.patient: q for q in queries}.values():  # untimed: connections, statement caches
            patient_document(reader, scale_patient_id(q.patient), as_of=q.as_of, valid_on=q.valid_on)
            app.repository.get(Subject.create_id(scale_patient_id(q.patient)), version=q.version)
        times: dict[str, list[float]] = {"cold": [], "warm": [], "bare": []}
        with own_heap():
            for q in queries:
                pid = scale_patient_id(q.patient)
                if isinstance(repository.cache, LRUCache):
                    repository.cache = LRUCache(maxsize=repository.cache.maxsize)
                elif repository.cache is not None:
                    repository.cache = Cache()
                for mode in ("cold", "warm"):
                    started = time.perf_counter()
                    patient_document(reader, pid, as_of=q.as_of, valid_on=q.valid_on)
                    times[mode].append(time.perf_counter() - started)
                aggregate_id = Subject.create_id(pid)
                started = time.perf_counter()
                app.repository.get(aggregate_id, version=q.version)
                times["bare"].append(time.perf_counter() - started)
        return {mode: Latency.of(seconds) for mode, seconds in times.items()}
    finally:
        reader.close()
        app.close()


@dataclass
class Metric:
    metric: str
    unit: str
    ledger: float
    baseline: float | None
    ratio: float | None
    target: str
    met: bool | None


@dataclass
class BackendResult:
    backend: str
    lines: int
    events: int
    baseline_events: int
    events_per_query: int  # mean events of the patient recorded by the query's as_of
    events_per_query_min: int
    events_per_query_max: int
    seconds: dict[str, float] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)


def import_half(backend: str, url: str, path: Path, progress: Progress, offset: int) -> ImportReport:
    """``ledger import`` of one half of the file, by a ledger of its own (as a process would)."""
    ledger = build_ledger(Settings(database_url=url, user="bench"))
    try:
        report = import_file(ledger, path, Actor("bench", Role.INVESTIGATOR), on_line=_drawer(progress, offset), batch_size=BATCH_SIZE)
    finally:
        ledger.close()
        progress.close()
    if not report.ok:
        raise SystemExit(f"{backend}: the generated file was refused: {report.problems[:3]}")
    return report


def project(url: str, progress: Progress, rebuild: bool) -> tuple[int, float]:
    """Catch the read models up, or rebuild them; (events applied, seconds)."""
    ledger = build_ledger(Settings(database_url=url, user="bench"))
    try:
        projector = Projector(ledger)
        started = time.perf_counter()
        if rebuild:
            projector.rebuild(on_progress=progress.position)
            events = ledger.recorder.max_notification_id() or 0
        else:
            events = projector.catch_up(on_progress=progress.position)
        return events, time.perf_counter() - started
    finally:
        ledger.close()
        progress.close()


def run_backend(backend: str, ledger_url: str, baseline_url: str, trial: TrialFile, calls: int) -> BackendResult:
    """The ledger and its baseline in turn, so that slow and fast spells of the machine hit both:
    baseline save and import of the first half, as-of latencies, baseline save and import of the
    second half, catch-up, as-of latencies, then a baseline read before and after the rebuild."""
    wall = time.perf_counter()
    label = backend.lower()
    seconds = {"import": 0.0, "baseline_save": 0.0}
    ledger_lines = base_lines = 0
    latencies: dict[str, Latency] = {}
    queries: list[Query] = []
    app = baseline_app(baseline_url, cache=True)
    try:
        for number, half in enumerate(trial.halves, start=1):
            count, spent = baseline_save(app, half, Progress(trial.lines, label=f"{label} baseline save"), base_lines)
            base_lines += count
            seconds["baseline_save"] += spent
            gc.collect()
            report = import_half(backend, ledger_url, half, Progress(trial.lines, label=f"{label} import"), ledger_lines)
            ledger_lines += report.lines
            seconds["import"] += report.seconds
            gc.collect()
            point = "half" if number == 1 else "full"
            if number == 1:
                queries = plan_queries(ledger_url, trial, calls)
            else:
                caught_up, seconds["catch_up"] = project(ledger_url, Progress(0, label=f"{label} catch-up", unit="events"), rebuild=False)
            for mode, latency in as_of_latencies(ledger_url, baseline_url, queries).items():
                latencies[f"{point} {mode}"] = latency
        read_before, read_seconds_before = baseline_read(app, Progress(0, label=f"{label} baseline read", unit="events"))
        events, seconds["rebuild"] = project(ledger_url, Progress(0, label=f"{label} rebuild", unit="events"), rebuild=True)
        read_after, read_seconds_after = baseline_read(app, Progress(0, label=f"{label} baseline read", unit="events"))
    finally:
        app.close()
    base_events = read_before
    seconds["baseline_read"] = (read_seconds_before + read_seconds_after) / 2
    seconds["wall"] = time.perf_counter() - wall

    import_rate, save_rate = ledger_lines / seconds["import"], base_lines / seconds["baseline_save"]
    rebuild_rate, read_rate = events / seconds["rebuild"], (read_before + read_after) / (read_seconds_before + read_seconds_after)
    catch_up_rate = caught_up / seconds["catch_up"]
    metrics = [
        Metric("import", "commands/s", import_rate, save_rate, import_rate / save_rate, f">= {IMPORT_TARGET:.0%} of baseline",
               import_rate / save_rate >= IMPORT_TARGET),
        Metric("catch-up after import", "events/s", catch_up_rate, read_rate, catch_up_rate / read_rate, "-", None),
        Metric("full rebuild", "events/s", rebuild_rate, read_rate, rebuild_rate / read_rate, f">= {REBUILD_TARGET:.0%} of baseline",
               rebuild_rate / read_rate >= REBUILD_TARGET),
    ]
    for mode, cache in (("warm", "read before"), ("cold", "first read")):
        for point, title in (("half", "half imported"), ("full", "all imported")):
            mine, bare = latencies[f"{point} {mode}"], latencies[f"{point} bare"]
            name = f"patient as-of {{}}, {cache}, {title}"
            metrics.append(Metric(name.format("p50"), "ms", mine.p50_ms, bare.p50_ms, mine.p50_ms / bare.p50_ms, "-", None))
            if mode == "warm":  # the target is a running reader's (see NOTES); a first read is shown beside it
                target, met = f"< {AS_OF_P99_TARGET_MS:g} ms", mine.p99_ms < AS_OF_P99_TARGET_MS
            else:
                target, met = "-", None
            metrics.append(Metric(name.format("p99"), "ms", mine.p99_ms, bare.p99_ms, mine.p99_ms / bare.p99_ms, target, met))
        # the bare store is as big at both points as the ledger's: its p50 tracks only the machine's speed
        growth = latencies[f"full {mode}"].p99_ms / latencies[f"half {mode}"].p99_ms
        drift = latencies["full bare"].p50_ms / latencies["half bare"].p50_ms
        metrics.append(Metric(f"patient as-of p99, {cache}, all / half (baseline p50)", "x", growth, drift, growth / drift,
                              f"ratio <= {AS_OF_GROWTH_TARGET:g} (flat)", growth / drift <= AS_OF_GROWTH_TARGET))
    versions = [q.version for q in queries]
    return BackendResult(backend, ledger_lines, events, base_events, round(statistics.mean(versions)), min(versions), max(versions),
                         {k: round(v, 2) for k, v in seconds.items()}, metrics)


def _drawer(progress: Progress, offset: int) -> Callable[[int, ImportReport], None]:
    """Draw the import's progress over the whole file, the second half after the first."""

    def draw(_line: int, report: ImportReport) -> None:
        progress.draw(offset + report.lines, report.lines)

    return draw


# --- databases ------------------------------------------------------------------------------


@contextmanager
def sqlite_files(directory: Path) -> Iterator[tuple[str, str]]:
    yield f"sqlite:///{directory / 'ledger.sqlite'}", f"sqlite:///{directory / 'baseline.sqlite'}"


@contextmanager
def postgres_database(server: str) -> Iterator[tuple[str, str]]:
    """A fresh database on the server for this run (ledger and baseline tables), dropped after."""
    name = f"ledger_bench_{os.getpid()}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            connection.execute(text(f"CREATE DATABASE {name}"))
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        yield url, url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def postgres_unreachable(server: str) -> str | None:
    """Why the server cannot be used, or None."""
    try:
        engine = create_engine(server, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as error:  # the driver's errors vary
        return str(error).strip().splitlines()[0]
    return None


# --- output ---------------------------------------------------------------------------------


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "x":
        return f"{value:.2f}"
    return f"{value:,.0f}"


def render(result: BackendResult, patients: int) -> str:
    s = result.seconds
    head = (
        f"{result.backend}: {patients:,} patients, {result.lines:,} commands, {result.events:,} events "
        f"(baseline {result.baseline_events:,}); as-of queries load {result.events_per_query} events on average "
        f"({result.events_per_query_min}-{result.events_per_query_max})\n"
        f"  wall {s['wall']:.0f} s: import {s['import']:.0f} s, catch-up {s['catch_up']:.0f} s, rebuild {s['rebuild']:.0f} s, "
        f"baseline save {s['baseline_save']:.0f} s, baseline read {s['baseline_read']:.1f} s"
    )
    rows = [("metric", "ledger", "baseline", "ratio", "target", "met")]
    for m in result.metrics:
        unit = "" if m.unit in ("ms", "x") else f" ({m.unit})"
        rows.append((m.metric + unit, _figure(m.ledger, m.unit), _figure(m.baseline, m.unit), "-" if m.ratio is None else f"{m.ratio:.2f}",
                     m.target, "-" if m.met is None else ("yes" if m.met else "NO")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [head, ""]
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:4], widths[1:4], strict=True)] + [row[4].ljust(widths[4]), row[5]]
        lines.append("  " + "  ".join(cells).rstrip())
        if i == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


NOTES = """\
ratio: ledger / baseline (rates: higher is better; latencies: lower is better).
baseline: bare eventsourcing on the same backend in the same run, alternating with the ledger.
save: a get and a save of the same events (one a line, on aggregates of the same sizes), 100
lines a transaction, aggregate cache 1000. read: every notification in pages of 1,000, decoded
(before and after the rebuild). as-of: repository.get(id, version) of an aggregate with as many
events as the ledger's patient had by the query's as_of (no snapshot, no cache), called in turn
with the ledger's. as-of queries: patient_document(pid, as_of = a random time between the
patient's enrollment and half-way through the import, valid_on = a random date of the course),
the same queries at half-way and at the end; "first read": the reader's aggregate cache emptied
before the call (a new process), "read before": the same query again (a long-running reader).
The < 10 ms target is a running reader's (ledger serve, reports, a notebook): a first read of a
patient also decodes its latest snapshot, once per process, and a new CLI process spends far
more than that starting Python; its figures are shown and must stay flat, too."""


def _rounded(value: Any) -> Any:
    """Floats to 3 decimals, all the way down."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000, help="patients in the generated trial (default 1,000 ≈ 250k events)")
    parser.add_argument("--calls", type=int, default=400, help="patient as-of calls per measurement (default 400)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--postgres", metavar="SERVER_URL", help=f"PostgreSQL server to create the benchmark database on (default {DEFAULT_POSTGRES})")
    group.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--check", action="store_true", help="exit with 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.patients < 6:
        parser.error("--patients must be at least 6")
    if args.calls < 1:
        parser.error("--calls must be at least 1")

    started = time.perf_counter()
    results: list[BackendResult] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        trial = write_trial(tmp, args.patients)
        backends: list[tuple[str, Callable[[], Any]]] = []
        if not args.no_sqlite:
            backends.append(("SQLite", lambda: sqlite_files(tmp)))
        if not args.no_postgres:
            server = args.postgres or DEFAULT_POSTGRES
            why = postgres_unreachable(server)
            if why is None:
                backends.append(("PostgreSQL", lambda: postgres_database(server)))
            elif args.postgres:
                print(f"PostgreSQL at {server} cannot be reached: {why}", file=sys.stderr)
                return 5
            else:
                skipped["PostgreSQL"] = f"not reachable at {DEFAULT_POSTGRES} ({why})"
        for backend, databases in backends:
            with databases() as (ledger_url, baseline_url):
                result = run_backend(backend, ledger_url, baseline_url, trial, args.calls)
            results.append(result)
            if not args.json:
                print(render(result, args.patients), end="\n\n", flush=True)
    wall = time.perf_counter() - started
    if args.json:
        print(json.dumps({"patients": args.patients, "calls": args.calls, "wall_seconds": round(wall, 1),
                          "backends": [_rounded(asdict(r)) for r in results], "skipped": skipped}, indent=2))
    else:
        for backend, why in skipped.items():
            print(f"{backend}: skipped, {why}")
        print(NOTES)
        print(f"total wall time {wall:.0f} s")
    missed = any(m.met is False for r in results for m in r.metrics)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
