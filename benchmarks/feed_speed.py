"""Feed speed: catch-up throughput and subscriber lag of ``ledger serve``, against reading the log in-process.

Imports a generated rule-abiding trial (``benchmarks.generate.write_scale``, default ≈ 50k
events) with ``ledger import`` into a fresh SQLite file and, when reachable, a fresh
PostgreSQL database (``ledger_bench_<pid>``, dropped afterwards); the two imports run at once,
and PostgreSQL's tables are then analyzed, as autovacuum soon does where it runs
(``--no-analyze``: not; see ``analyze``). Then, for each backend in turn, it starts
``ledger serve --port 0`` as a subprocess and measures:

1. catch-up throughput (events/s): every event from position 0, best of ``--rounds``, the
   readers taking turns (in reverse order every other round) so that a slow spell of the
   machine hits each of them:

   - baseline: the rows of ``ledger_events`` selected in pages of 1,000 and decoded, in
     this process (``ledger.eventlog``: what the feed itself reads);
   - ``Feed.page`` in this process: the baseline plus the entry index's page and each event's
     document;
   - the same pages encoded to JSON and decoded again: all the CPU a page costs the server and
     a client, without HTTP;
   - ``ledger.client.Subscription`` over HTTP (``/events``, pages of 1,000);
   - the live stream over HTTP (``/events/stream``, Server-Sent Events, each event's ``data``
     decoded);

2. subscriber lag under a steady write load: a writer in another process enrolls new patients
   (unique ids, three a stratum: 2-3 events each) at ``--rate`` commands/s for ``--seconds``,
   while a long-polling Subscription (``wait=20``) and a live stream follow the feed from the
   head; each event's lag is the time it reached the consumer minus its ``recorded_at`` (one
   machine, one clock). The writer records straight into the database (another process, as
   ``ledger import``: the server notices the commit by polling the head every
   ``--poll-interval``), then posts to the server's ``/commands`` (the server wakes its readers
   at the commit).

    python -m benchmarks.feed_speed [--events 50000] [--rounds 3] [--rate 20] [--seconds 20]
                                    [--postgres SERVER_URL | --no-postgres] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from benchmarks.generate import scale_events, scale_patient_lines, write_scale
from benchmarks.scale import DEFAULT_POSTGRES, postgres_database, postgres_unreachable
from ledger.application import TrialLedger
from ledger.bootstrap import Settings, build_ledger
from ledger.client import MemoryCheckpoint, Subscription
from ledger.domain.values import Actor, Role
from ledger.eventlog import decoder, event_rows_between
from ledger.interfaces.schemas import parse_command
from ledger.streams.feed import MAX_LIMIT, Feed

ROOT = Path(__file__).resolve().parents[1]  # what the subprocesses import ``ledger`` from
EVENTS_PER_PATIENT = 250
PAGE = MAX_LIMIT  # events a page for every reader: the feed's largest
LONG_POLL_WAIT = 20.0
STREAM_HEARTBEAT = 1.0  # seconds: how soon an idle stream reader notices it should stop
SERVER_START_SECONDS = 60.0
DRAIN_SECONDS = 30.0  # how long the followers may take to receive the last event written
USER = "bench"

Reader = Callable[[], tuple[int, float]]


# --- the ledger and its server ----------------------------------------------------------------


def ledger_env(url: str) -> dict[str, str]:
    """The environment of a ``ledger`` subprocess on ``url``, running this tree's code."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_USER": USER, "PYTHONPATH": path}


def ledger_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ledger.interfaces.cli", *args]


def import_all(ledgers: list[tuple[str, str]], trial: Path, logs: Path) -> None:
    """``ledger import`` of the trial into every ledger at once (it brings the read models up to date too)."""
    running = []
    for backend, url in ledgers:
        log = logs / f"import-{backend.lower()}.log"
        with log.open("w") as out:
            process = subprocess.Popen(ledger_command("import", str(trial)), env=ledger_env(url), stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        running.append((backend, process, log))
    for backend, process, log in running:
        if process.wait() != 0:
            raise SystemExit(f"{backend}: ledger import failed:\n{log.read_text()[-2000:]}")
        print(f"{backend}: {log.read_text().strip().splitlines()[-1]}", file=sys.stderr, flush=True)


def analyze(url: str) -> None:
    """PostgreSQL: gather the new tables' statistics, as autovacuum does soon after a large import where it runs.

    Without them (autovacuum off, as on the test server, or a fresh database before its first
    pass) the planner takes a range of positions for a handful of rows, and reads each page of
    1,000 entries or events by sorting every row from the position to the head: a page then
    costs time in proportion to what lies after it, and a catch-up from 0 time quadratic in the
    ledger's size. ``--no-analyze`` measures the tables as the import leaves them.
    """
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("ANALYZE"))
    finally:
        engine.dispose()


@contextlib.contextmanager
def served(url: str, threads: int, poll_interval: float) -> Iterator[str]:
    """``ledger serve`` on a free port of 127.0.0.1 for the duration; its base URL."""
    args = ["serve", "--port", "0", "--threads", str(threads), "--poll-interval", f"{poll_interval:g}"]
    process = subprocess.Popen(ledger_command(*args), env=ledger_env(url), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    said: deque[str] = deque(maxlen=40)
    address: list[str] = []
    listening = threading.Event()

    errors = process.stderr

    def drain() -> None:  # read the server's standard error throughout, so that it never blocks writing to it
        for line in errors or ():
            said.append(line.rstrip())
            found = re.search(r"serving the ledger on (http://\S+)", line)
            if found and not address:
                address.append(found.group(1))
                listening.set()
        listening.set()

    threading.Thread(target=drain, name="server-stderr", daemon=True).start()
    try:
        if not listening.wait(SERVER_START_SECONDS) or not address:
            raise SystemExit("ledger serve did not start:\n" + "\n".join(said))
        yield address[0]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def head_of(base: str) -> int:
    """The last committed position, as the server's health check gives it."""
    with _connect(base) as connection:
        connection.request("GET", "/health")
        response = connection.getresponse()
        document = json.loads(response.read())
    if response.status != 200:
        raise RuntimeError(f"the server is not healthy: {document}")
    return int(document["head"])


@contextlib.contextmanager
def _connect(base: str, timeout: float = 60.0) -> Iterator[http.client.HTTPConnection]:
    parts = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        yield connection
    finally:
        connection.close()


# --- catch-up readers: (events, seconds) ---------------------------------------------------------


def bare_read(ledger: TrialLedger) -> tuple[int, float]:
    """The baseline: every row of the log selected in pages and decoded, nothing else."""
    engine, store = ledger.engine, ledger.store
    started = time.perf_counter()
    end = Feed(ledger).head()
    position = count = 0
    while position < end:
        with engine.connect() as connection:
            rows = event_rows_between(connection, store, position + 1, end, limit=PAGE)
            decode = decoder(connection, store)
            for row in rows:
                decode(row)
        if not rows:
            break
        count += len(rows)
        position = int(rows[-1][0])
    return count, time.perf_counter() - started


def feed_read(ledger: TrialLedger, through_json: bool) -> tuple[int, float]:
    """``Feed.page`` after page in this process; with ``through_json`` each page encoded as the server does and decoded as a client does."""
    feed = Feed(ledger)
    started = time.perf_counter()
    position = count = 0
    while True:
        page = feed.page(position, PAGE)
        if through_json:
            document = json.loads(json.dumps(page.document(), ensure_ascii=False, separators=(",", ":")))
            count += len(document["events"])
        else:
            count += len(page.events)
        if not page.events:
            break
        position = page.next_after
    return count, time.perf_counter() - started


def subscription_read(base: str) -> tuple[int, float]:
    """A Subscription from position 0 until a poll finds nothing new."""
    subscription = Subscription(base, checkpoint=MemoryCheckpoint(), limit=PAGE, wait=0, save_every=10**9, until_idle=True)
    started = time.perf_counter()
    count = sum(1 for _ in subscription)
    return count, time.perf_counter() - started


def stream_read(base: str, head: int) -> tuple[int, float]:
    """The live stream from position 0 until the event at ``head``."""
    count = 0
    started = time.perf_counter()
    for kind, position, data in stream(base, 0):
        if kind != "heartbeat":
            json.loads(data)
            count += 1
        if position >= head:
            break
    return count, time.perf_counter() - started


def stream(base: str, after: int) -> Iterator[tuple[str, int, bytes]]:
    """The Server-Sent Events of ``/events/stream`` after ``after``: (event type, position, data); heartbeats too."""
    with _connect(base) as connection:
        connection.request("GET", f"/events/stream?after={after}&heartbeat={STREAM_HEARTBEAT:g}", headers={"Accept": "text/event-stream"})
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"/events/stream answered {response.status}: {response.read()[:200]!r}")
        kind, position, data = "message", -1, b""
        for line in iter(response.readline, b""):
            if line == b"\n":
                if position >= 0:
                    yield kind, position, data
                kind, position, data = "message", -1, b""
            elif line.startswith(b"id: "):
                position = int(line[4:])
            elif line.startswith(b"event: "):
                kind = line[7:].strip().decode()
            elif line.startswith(b"data: "):
                data = line[6:]


def warm_up(ledger: TrialLedger, base: str, head: int) -> None:
    """A page through each path, untimed: connections, statement caches and the server's threads are ready for the first round."""
    Feed(ledger).page(0, PAGE)
    Subscription(base, limit=PAGE, wait=0).fetch(0)
    for _kind, position, _data in stream(base, 0):
        if position >= min(head, PAGE):
            break


def catch_up(url: str, base: str, rounds: int) -> list[Rate]:
    """Every reader ``rounds`` times, in turns; the best rate of each and its ratio to the baseline's."""
    ledger = build_ledger(Settings(database_url=url, user=USER), create=False)
    try:
        head = Feed(ledger).head()
        readers: dict[str, Reader] = {
            "baseline: log rows selected and decoded, in-process": lambda: bare_read(ledger),
            "Feed.page, in-process": lambda: feed_read(ledger, through_json=False),
            "Feed.page + JSON encode and decode, in-process": lambda: feed_read(ledger, through_json=True),
            "HTTP /events, Subscription (long polling)": lambda: subscription_read(base),
            "HTTP /events/stream (Server-Sent Events)": lambda: stream_read(base, head),
        }
        warm_up(ledger, base, head)
        rates: dict[str, list[float]] = {name: [] for name in readers}
        seconds: dict[str, list[float]] = {name: [] for name in readers}
        counts: dict[str, int] = {}
        for number in range(rounds):
            names = list(readers) if number % 2 == 0 else list(reversed(readers))
            for name in names:
                events, spent = readers[name]()
                counts[name] = events
                rates[name].append(events / spent)
                seconds[name].append(spent)
    finally:
        ledger.close()
    if len(set(counts.values())) != 1:
        raise SystemExit(f"the readers did not read the same events: {counts}")
    baseline = max(rates[next(iter(readers))])
    return [Rate(name, counts[name], max(r), max(r) / baseline, min(seconds[name]), r) for name, r in rates.items()]


# --- lag under a steady write load -------------------------------------------------------------


def enrollment(run: int, n: int) -> dict[str, Any]:
    """A new patient's enrollment, three a stratum, with ids the generated trial never uses."""
    line = scale_patient_lines(n)[0]
    pid = f"W{run}-{n:06d}"
    return {**line, "patient_id": pid, "stratum": f"W{run}-S{n // 3:05d}", "command_id": f"{pid}-enroll"}


def write_load(url: str, base: str, through: str, run: int, rate: float, seconds: float, pipe: Connection) -> None:
    """The writer (a process of its own): one enrollment every 1/rate seconds, from the "go" on.

    ``through`` is ``database`` (a ledger of this process, as ``ledger import``) or ``http``
    (``POST /commands/enroll_patient`` on one kept-alive connection). A stratum's first three
    enrollments are written before the "ready", untimed, so that the timed ones find the
    connections and caches warm. Sends back the commands recorded, the seconds taken, when it
    began and each command's latency.
    """
    record: Callable[[dict[str, Any]], None]
    with contextlib.ExitStack() as stack:
        if through == "database":
            ledger = build_ledger(Settings(database_url=url, user=USER))
            stack.callback(ledger.close)
            actor = Actor(USER, Role.INVESTIGATOR)

            def record(line: dict[str, Any]) -> None:
                ledger.handle(parse_command(line), actor)
        else:
            connection = stack.enter_context(_connect(base, timeout=30))

            def record(line: dict[str, Any]) -> None:
                connection.request("POST", "/commands/enroll_patient", body=json.dumps(line), headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                answer = response.read()
                if response.status != 201:
                    raise RuntimeError(f"POST /commands/enroll_patient answered {response.status}: {answer[:300]!r}")

        for n in range(3):
            record(enrollment(run, n))
        pipe.send("ready")
        pipe.recv()
        total = max(round(rate * seconds), 1)
        latencies = []
        began, started = time.time(), time.perf_counter()
        for i in range(total):
            pause = started + i / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sent = time.perf_counter()
            record(enrollment(run, 3 + i))
            latencies.append(time.perf_counter() - sent)
        pipe.send({"commands": total, "seconds": time.perf_counter() - started, "began": began, "latencies": latencies})


class Follower:
    """A consumer of the feed in a thread of this process: each event's lag, now − recorded_at."""

    def __init__(self, name: str, base: str, after: int) -> None:
        self.name = name
        self.base = base
        self.after = after
        self.last = after
        self.lags: dict[int, float] = {}  # position: seconds
        self.arrived: list[float] = []
        self.error: Exception | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def note(self, position: int, recorded_at: str) -> None:
        now = time.time()
        if self.stopping.is_set():  # a poll that outlived the run
            return
        self.lags[position] = now - datetime.fromisoformat(recorded_at).timestamp()
        self.arrived.append(now)
        self.last = position

    def _run(self) -> None:
        try:
            self.follow()
        except Exception as error:  # reported by the main thread
            self.error = error

    def follow(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.stopping.set()


class LongPollFollower(Follower):
    def __init__(self, name: str, base: str, after: int) -> None:
        super().__init__(name, base, after)
        self.subscription = Subscription(base, checkpoint=MemoryCheckpoint(after), limit=PAGE, wait=LONG_POLL_WAIT, save_every=10**9,
                                         on_retry=lambda message: None)

    def follow(self) -> None:
        for event in self.subscription:
            self.note(int(event["position"]), event["recorded_at"])

    def stop(self) -> None:
        super().stop()
        # a poll waiting on the server ends by its own time limit, or when the server stops: the thread is not waited for
        self.subscription.stop()


class StreamFollower(Follower):
    def follow(self) -> None:
        for kind, position, data in stream(self.base, self.after):
            if kind != "heartbeat":
                self.note(position, json.loads(data)["recorded_at"])
            if self.stopping.is_set():
                return


def lag_run(url: str, base: str, through: str, run: int, rate: float, seconds: float) -> list[Lag]:
    """The writer at its steady rate, a long-polling Subscription and a live stream following the feed."""
    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    writer = spawn.Process(target=write_load, args=(url, base, through, run, rate, seconds, theirs), name=f"writer-{through}", daemon=True)
    writer.start()
    try:
        if not ours.poll(SERVER_START_SECONDS):
            raise SystemExit(f"the writer ({through}) did not start")
        ours.recv()
        start = head_of(base)
        followers: list[Follower] = [LongPollFollower("long poll", base, start), StreamFollower("live stream", base, start)]
        for follower in followers:
            follower.start()
        time.sleep(1.0)  # both are waiting on the server
        ours.send("go")
        if not ours.poll(seconds * 3 + 60):
            raise SystemExit(f"the writer ({through}) did not finish")
        written: dict[str, Any] = ours.recv()
        end = head_of(base)
        deadline = time.monotonic() + DRAIN_SECONDS
        while any(f.last < end and f.error is None and f.thread.is_alive() for f in followers) and time.monotonic() < deadline:
            time.sleep(0.05)
        for follower in followers:
            follower.stop()
    finally:
        writer.join(timeout=10)
        if writer.is_alive():
            writer.kill()
    results = []
    write_ms = sorted(s * 1000 for s in written["latencies"])
    for follower in followers:
        if follower.error is not None:
            raise SystemExit(f"{follower.name}: {type(follower.error).__name__}: {follower.error}")
        lags = sorted(lag * 1000 for position, lag in list(follower.lags.items()) if start < position <= end)
        if not lags or follower.last < end:
            raise SystemExit(f"{follower.name} ({through}): received up to {follower.last} of {start}..{end} within {DRAIN_SECONDS:g} s")
        span = max(follower.arrived) - written["began"]
        results.append(Lag(
            writer=through, reader=follower.name, events=len(lags), events_per_s=len(lags) / span,
            commands=written["commands"], commands_per_s=written["commands"] / written["seconds"],
            p50_ms=percentile(lags, 0.50), p95_ms=percentile(lags, 0.95), p99_ms=percentile(lags, 0.99), max_ms=lags[-1],
            write_p50_ms=percentile(write_ms, 0.50), write_p99_ms=percentile(write_ms, 0.99),
        ))
    return results


def percentile(ascending: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(math.ceil(q * len(ascending)) - 1, 0)
    return ascending[min(rank, len(ascending) - 1)]


# --- results ---------------------------------------------------------------------------------------


@dataclass
class Rate:
    reader: str
    events: int
    events_per_s: float
    ratio: float  # to the baseline's best
    best_seconds: float
    rounds: list[float]  # events/s of each round


@dataclass
class Lag:
    writer: str  # "database": another process's ledger; "http": POST /commands to the server
    reader: str
    events: int
    events_per_s: float  # delivered: events over the time from the writer's start to the last arrival
    commands: int
    commands_per_s: float  # what the writer achieved
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    write_p50_ms: float  # the writer's command latency (commit included)
    write_p99_ms: float


@dataclass
class BackendResult:
    backend: str
    events: int
    catch_up: list[Rate] = field(default_factory=list)
    lag: list[Lag] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def run_backend(backend: str, url: str, args: argparse.Namespace) -> BackendResult:
    wall = time.perf_counter()
    with served(url, args.threads, args.poll_interval) as base:
        head_of(base)  # answering
        print(f"{backend}: catch-up, {args.rounds} rounds", file=sys.stderr, flush=True)
        rates = catch_up(url, base, args.rounds)
        measured = time.perf_counter()
        lags: list[Lag] = []
        for run, through in enumerate(("database", "http"), start=1):
            print(f"{backend}: lag, writer through {through}, {args.rate:g} commands/s for {args.seconds:g} s", file=sys.stderr, flush=True)
            lags += lag_run(url, base, through, run, args.rate, args.seconds)
    done = time.perf_counter()
    return BackendResult(backend, rates[0].events, rates, lags, {"catch_up": round(measured - wall, 1), "lag": round(done - measured, 1)})


WRITERS = {"database": "another process records into the database", "http": "POST /commands to the server"}


def render(result: BackendResult, args: argparse.Namespace) -> str:
    lines = [f"{result.backend}: {result.events:,} events; ledger serve --threads {args.threads} --poll-interval {args.poll_interval:g}; "
             f"catch-up {result.seconds['catch_up']:.0f} s, lag {result.seconds['lag']:.0f} s", ""]
    rows: list[tuple[str, ...]] = [(f"catch-up from position 0 (best of {args.rounds})", "events/s", "ratio", "best s")]
    rows += [(r.reader, f"{r.events_per_s:,.0f}", f"{r.ratio:.2f}", f"{r.best_seconds:.2f}") for r in result.catch_up]
    lines += _table(rows)
    lines.append("")
    rows = [(f"lag at {args.rate:g} commands/s for {args.seconds:g} s", "commands/s", "events/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "write p50/p99 ms")]
    for lag in result.lag:
        rows.append((f"{lag.reader}; writer: {WRITERS[lag.writer]}", f"{lag.commands_per_s:.1f}", f"{lag.events_per_s:.1f}", f"{lag.p50_ms:.1f}",
                     f"{lag.p95_ms:.1f}", f"{lag.p99_ms:.1f}", f"{lag.max_ms:.1f}", f"{lag.write_p50_ms:.1f} / {lag.write_p99_ms:.1f}"))
    lines += _table(rows)
    return "\n".join(lines)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for i, row in enumerate(rows):
        out.append("  " + "  ".join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]))
        if i == 0:
            out.append("  " + "  ".join("-" * w for w in widths))
    return out


NOTES = """\
ratio: the reader's events/s over the baseline's, both the best of the rounds, measured in turns in the same run.
baseline: the rows of ledger_events in pages of 1,000, selected and decoded in this process (what Feed.page reads).
HTTP readers: pages of 1,000 (Subscription, wait=0) or one stream; the server is a subprocess on the same machine.
lag: arrival at the consumer minus the event's recorded_at (taken inside the writer's transaction, before its commit);
events/s: the events received over the time from the writer's start to the last arrival. The writer enrolls new
patients (2-3 events a command); write p50/p99: its command's latency, commit included."""


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


# --- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000, help="about how many events to generate (default 50,000)")
    parser.add_argument("--rounds", type=int, default=3, help="catch-up rounds of each reader; the best counts (default 3)")
    parser.add_argument("--rate", type=float, default=20.0, help="the writer's commands/s during the lag runs (default 20)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each lag run writes (default 20)")
    parser.add_argument("--threads", type=int, default=16, help="ledger serve --threads (default 16, as the server's)")
    parser.add_argument("--poll-interval", type=float, default=0.05, help="ledger serve --poll-interval (default 0.05, as the server's)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--postgres", metavar="SERVER_URL", help=f"PostgreSQL server to create the benchmark database on (default {DEFAULT_POSTGRES})")
    group.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--no-analyze", action="store_true", help="PostgreSQL: measure the tables as the import leaves them, without statistics")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.events < 1000 or args.rounds < 1 or args.rate <= 0 or args.seconds <= 0:
        parser.error("--events must be at least 1,000; --rounds, --rate and --seconds positive")

    started = time.perf_counter()
    patients = max(args.events // EVENTS_PER_PATIENT, 6)
    results: list[BackendResult] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="ledger-feed-") as tmp_dir, contextlib.ExitStack() as databases:
        tmp = Path(tmp_dir)
        ledgers: list[tuple[str, str]] = []
        if not args.no_sqlite:
            ledgers.append(("SQLite", f"sqlite:///{tmp / 'ledger.sqlite'}"))
        if not args.no_postgres:
            server = args.postgres or DEFAULT_POSTGRES
            why = postgres_unreachable(server)
            if why is None:
                url, _ = databases.enter_context(postgres_database(server))
                ledgers.append(("PostgreSQL", url))
            elif args.postgres:
                print(f"PostgreSQL at {server} cannot be reached: {why}", file=sys.stderr)
                return 5
            else:
                skipped["PostgreSQL"] = f"not reachable at {DEFAULT_POSTGRES} ({why})"
        trial = tmp / "trial.jsonl"
        with trial.open("w", encoding="utf-8") as out:
            write_scale(patients, out)
        print(f"importing {patients} patients (≈ {scale_events(patients):,} events) into {', '.join(b for b, _ in ledgers)}", file=sys.stderr, flush=True)
        import_all(ledgers, trial, tmp)
        if not args.no_analyze:
            for backend, url in ledgers:
                if backend == "PostgreSQL":
                    analyze(url)
        built = time.perf_counter() - started
        for backend, url in ledgers:
            result = run_backend(backend, url, args)
            results.append(result)
            if not args.json:
                print(render(result, args), end="\n\n", flush=True)
    wall = time.perf_counter() - started
    if args.json:
        print(json.dumps({"events": args.events, "patients": patients, "rate": args.rate, "seconds": args.seconds, "rounds": args.rounds,
                          "build_seconds": round(built, 1), "wall_seconds": round(wall, 1),
                          "backends": [_rounded(asdict(r)) for r in results], "skipped": skipped}, indent=2))
    else:
        for backend, why in skipped.items():
            print(f"{backend}: skipped, {why}")
        print(NOTES)
        print(f"total wall time {wall:.0f} s (building the ledgers {built:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
