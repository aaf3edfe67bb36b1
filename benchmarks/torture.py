"""Crash torture: processes killed with SIGKILL at random moments and started again; the ledger ends as if nothing had happened.

Three torments, each on SQLite and on PostgreSQL:

1. **import** — ``ledger import FILE`` is killed ``--kills`` times, each time at a random moment
   after it has committed something, and started again; a last run completes it. The ledger must
   then equal a clean import of the same file into a fresh database, event for event (type,
   patient, dates, who, role, reason, source, data and command id, in order), the read models
   must equal a rebuild from the first event, and ``ledger verify`` must pass.
2. **projection follower** — ``ledger project --follow`` is killed ``--kills`` times while a writer
   records; a last ``ledger project`` completes it. The read models must equal a rebuild, and
   verify must pass.
3. **NATS relay** — ``ledger relay nats`` is killed ``--kills`` times while a writer records; a last
   ``--once`` run completes it. The stream must hold every event of the ledger exactly once, in
   position order (needs NATS with JetStream; ``--no-nats`` leaves it out).

Every kill is at a random moment chosen after the process has shown progress (an event
committed, a page projected, a message published), so it lands in the middle of the work:
between two transactions, inside one, or during a commit. The figures: kills survived, kills
while the process still had work to do, events lost and duplicated (0 and 0), and whether the
chain verifies.

    python -m benchmarks.torture [--kills 50] [--patients N] [--no-postgres] [--no-nats] [--seed S] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

from sqlalchemy import create_engine, select, text

from benchmarks.generate import patient_lines
from benchmarks.import_speed import fresh_database
from ledger.application import TrialLedger
from ledger.bootstrap import Settings, build_ledger
from ledger.domain.values import Actor, Role
from ledger.integrity.verify import verify
from ledger.interfaces.importer import import_file
from ledger.projections.projector import Projector
from ledger.projections.tables import TABLES, read_model_tables
from ledger.streams.feed import Feed

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NATS = "nats://127.0.0.1:4222"
IMPORTER = Actor("site.importer", Role.COORDINATOR)


@dataclass
class Kills:
    """How a process fared: kills survived, and how many landed while it still had work to do."""

    requested: int
    kills: int = 0
    mid_work: int = 0
    finished_early: int = 0  # rounds in which the process ended by itself before its kill
    seconds: float = 0.0


@dataclass
class Outcome:
    """One torment's result; ``ok`` when nothing was lost, doubled or left unverifiable."""

    torment: str
    backend: str
    kills: Kills
    events: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: bool = False
    read_models_equal_rebuild: bool | None = None
    verified: bool | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.kills.kills == self.kills.requested and self.lost == 0 and self.duplicated == 0 and not self.out_of_order
            and self.read_models_equal_rebuild is not False and self.verified is not False
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


# --- the processes ------------------------------------------------------------------------


def ledger_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ledger.interfaces.cli", *args]


def ledger_env(url: str) -> dict[str, str]:
    return {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_USER": IMPORTER.user, "LEDGER_ROLE": IMPORTER.role.value,
            "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def write_trial(path: Path, first: int, patients: int) -> int:
    """Patients ``first`` … ``first + patients - 1`` of the generator's shape (37 lines each, every line with its command id)."""
    count = 0
    with path.open("w") as out:
        for n in range(first, first + patients):
            for line in patient_lines(n):
                out.write(json.dumps(line) + "\n")
                count += 1
    return count


def kill_at_random_moments(
    start: Callable[[], subprocess.Popen[bytes]],
    progress: Callable[[], int],
    kills: int,
    rng: random.Random,
    *,
    max_delay: float,
    has_work: Callable[[], bool],
    meanwhile: Callable[[], None] = lambda: None,
    on_round: Callable[[int], None] = lambda _: None,
) -> Kills:
    """Start the process ``kills`` times; each time, once ``progress()`` has moved, wait a random moment and SIGKILL it.

    Stops early when a process ends by itself (an import that finished). ``has_work`` is asked
    right after each kill: did the process still have something to do? ``meanwhile`` runs while
    waiting for progress (a writer's next file).
    """
    result = Kills(kills)
    started = time.perf_counter()
    while result.kills < kills:
        before = progress()
        process = start()
        deadline = time.monotonic() + 120
        while progress() == before and process.poll() is None and time.monotonic() < deadline:
            meanwhile()
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, max_delay))
        if process.poll() is not None:
            result.finished_early += 1
            if process.returncode != 0:
                raise RuntimeError(f"{' '.join(map(str, process.args))} failed by itself (exit {process.returncode})")  # type: ignore[arg-type]
            break
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        result.kills += 1
        result.mid_work += has_work()
        on_round(result.kills)
    result.seconds = round(time.perf_counter() - started, 1)
    return result


class Writer:
    """Records generated patients into a ledger in a process of its own (no projection), one file after another, until stopped."""

    def __init__(self, url: str, tmp: Path, patients_per_file: int = 20) -> None:
        self.url = url
        self.tmp = tmp
        self.per_file = patients_per_file
        self.next_patient = 10_000  # clear of the import torment's patients
        self.process: subprocess.Popen[bytes] | None = None
        self.files = 0

    def keep_writing(self) -> None:
        """Start the next file when the last one is done."""
        if self.process is not None and self.process.poll() is None:
            return
        if self.process is not None and self.process.returncode != 0:
            raise RuntimeError(f"the writer failed (exit {self.process.returncode})")
        path = self.tmp / f"writer-{self.files}.jsonl"
        write_trial(path, self.next_patient, self.per_file)
        self.next_patient += self.per_file
        self.files += 1
        self.process = subprocess.Popen([sys.executable, "-m", "benchmarks.torture", "write", self.url, str(path)], env=ledger_env(self.url))

    def writing(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def finish(self) -> None:
        if self.process is not None and self.process.wait(timeout=600) != 0:
            raise RuntimeError(f"the writer failed (exit {self.process.returncode})")


def write_without_projecting(url: str, path: Path) -> None:
    """The writer's process: import ``path`` in small batches and leave the read models to the follower."""
    ledger = build_ledger(Settings(database_url=url, user=IMPORTER.user))
    try:
        report = import_file(ledger, path, IMPORTER, batch_size=10)
        if not report.ok:
            raise SystemExit(f"the writer's file was refused: {report.problems[0].message}")
    finally:
        ledger.close()


# --- what the ledger holds ----------------------------------------------------------------


def scalar(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(sql)).scalar() or 0)
    except Exception:  # the table does not exist yet
        return 0
    finally:
        engine.dispose()


@contextmanager
def opened(url: str, create: bool = False) -> Iterator[TrialLedger]:
    ledger = build_ledger(Settings(database_url=url, user="torture.checker"), create=create)
    try:
        yield ledger
    finally:
        ledger.close()


def canonical_events(url: str) -> list[str]:
    """Every event as what it says, in commit order: no position, entry id or recorded time (a clean import has others).

    Entry ids that the data refers to are replaced by the referred event's ordinal, so that a
    correction of "the 12th event" compares equal across two ledgers.
    """
    with opened(url) as ledger:
        events = list(Feed(ledger).events())
        with ledger.engine.connect() as connection:
            command_ids = dict(connection.execute(text("SELECT position, command_id FROM ledger_entries")).tuples().all())
    ordinal = {event["entry_id"]: n for n, event in enumerate(events)}
    positions = [event["position"] for event in events]
    if positions != sorted(set(positions)):
        raise AssertionError("the feed's positions are not strictly increasing")

    def cited(value: Any) -> Any:
        if isinstance(value, str) and value in ordinal:
            return f"#event-{ordinal[value]}"
        if isinstance(value, dict):
            return {k: cited(v) for k, v in value.items()}
        if isinstance(value, list):
            return [cited(v) for v in value]
        return value

    return [
        json.dumps({**{k: v for k, v in event.items() if k not in ("position", "entry_id", "recorded_at")},
                    "data": cited(event["data"]), "command_id": command_ids.get(event["position"])}, sort_keys=True)
        for event in events
    ]


def compare(outcome: Outcome, expected: list[str], actual: list[str]) -> None:
    """Lost and duplicated events, and whether the order differs."""
    want, have = Counter(expected), Counter(actual)
    outcome.events = len(actual)
    outcome.lost = sum((want - have).values())
    outcome.duplicated = sum((have - want).values())
    outcome.out_of_order = not outcome.lost and not outcome.duplicated and expected != actual


def read_models(url: str) -> dict[str, list[tuple[Any, ...]]]:
    tables = read_model_tables()
    with opened(url) as ledger, ledger.engine.connect() as connection:
        return {name: sorted(tuple(row) for row in connection.execute(select(tables[name]))) for names in TABLES.values() for name in names}


def check_read_models_and_chain(url: str, outcome: Outcome) -> None:
    """The read models as the killed processes left them (then caught up) against a rebuild; the hash chain."""
    kept = read_models(url)
    with opened(url) as ledger:
        Projector(ledger).rebuild()
        outcome.verified = verify(ledger.engine).intact
    rebuilt = read_models(url)
    outcome.read_models_equal_rebuild = kept == rebuilt
    if kept != rebuilt:
        outcome.notes.append("read models differ from a rebuild in " + ", ".join(n for n in kept if kept[n] != rebuilt[n]))


# --- the torments -------------------------------------------------------------------------


def import_torment(url: str, clean_url: str, tmp: Path, patients: int, kills: int, rng: random.Random, backend: str) -> Outcome:
    """``ledger import`` killed ``kills`` times and run again; then equal to a clean import, a rebuild and a verifying chain."""
    path = tmp / f"import-{backend}.jsonl"
    lines = write_trial(path, 0, patients)
    path.write_text("".join(json.dumps({k: v for k, v in json.loads(line).items() if k != "command_id"}) + "\n"
                            for line in path.read_text().splitlines()))  # the import derives each line's id from the file
    env = ledger_env(url)
    subprocess.run(ledger_command("migrate"), env=env, check=True, capture_output=True)
    result = kill_at_random_moments(
        lambda: subprocess.Popen(ledger_command("import", str(path), "--batch-size", "20"), env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        lambda: scalar(url, "SELECT count(*) FROM ledger_events"),
        kills, rng, max_delay=0.4,
        has_work=lambda: scalar(url, "SELECT count(*) FROM ledger_commands") < lines,
        on_round=progress_line(f"{backend} import", kills),
    )
    outcome = Outcome("import", backend, result)
    if result.kills < kills:
        outcome.notes.append(f"the import finished after {result.kills} kills: give it more --patients")
    final = subprocess.run(ledger_command("import", str(path), "--json"), env=env, capture_output=True, text=True, timeout=1800)
    if final.returncode != 0:
        raise RuntimeError(f"the last import run failed: {final.stderr}")
    report = json.loads(final.stdout)
    outcome.notes.append(f"{lines} lines; the last run recorded {report['recorded']} and acknowledged {report['duplicates']} as duplicates")
    with opened(clean_url, create=True) as clean:  # the same file, imported once with nothing killed
        import_file(clean, path, IMPORTER)
    compare(outcome, canonical_events(clean_url), canonical_events(url))
    check_read_models_and_chain(url, outcome)
    return outcome


def follower_torment(url: str, tmp: Path, kills: int, rng: random.Random, backend: str) -> Outcome:
    """``ledger project --follow`` killed ``kills`` times while a writer records; then the read models equal a rebuild."""
    env = ledger_env(url)
    subprocess.run(ledger_command("migrate"), env=env, check=True, capture_output=True)
    writer = Writer(url, tmp)
    projected = "SELECT coalesce(min(position), 0) FROM ledger_projections"

    def start() -> subprocess.Popen[bytes]:
        writer.keep_writing()
        return subprocess.Popen(ledger_command("project", "--follow", "--interval", "0.05"), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    result = kill_at_random_moments(
        start, lambda: scalar(url, projected), kills, rng, max_delay=1.0, meanwhile=writer.keep_writing,
        has_work=lambda: writer.writing() or scalar(url, projected) < scalar(url, "SELECT coalesce(max(position), 0) FROM ledger_entries"),
        on_round=progress_line(f"{backend} projection follower", kills),
    )
    writer.finish()
    outcome = Outcome("projection follower", backend, result)
    left = scalar(url, "SELECT coalesce(max(position), 0) FROM ledger_entries") - scalar(url, projected)
    subprocess.run(ledger_command("project"), env=env, check=True, capture_output=True)
    outcome.events = scalar(url, "SELECT count(*) FROM ledger_events")
    outcome.notes.append(f"{writer.files} writer files; {left} positions left for the last catch-up")
    check_read_models_and_chain(url, outcome)
    return outcome


def relay_torment(url: str, nats_url: str, tmp: Path, kills: int, rng: random.Random, backend: str) -> Outcome:
    """``ledger relay nats`` killed ``kills`` times while a writer records; then the stream holds every event once, in order."""
    from tests.jetstream_probes import delete_stream, message_count, stored_messages

    env = ledger_env(url)
    subprocess.run(ledger_command("migrate"), env=env, check=True, capture_output=True)
    token = uuid4().hex[:12]
    stream, prefix = f"TORTURE_{token}", f"torture.{token}"
    relay = ledger_command("relay", "nats", "--url", nats_url, "--stream", stream, "--subject-prefix", prefix, "--interval", "0.05", "--page-size", "40")
    writer = Writer(url, tmp)

    def start() -> subprocess.Popen[bytes]:
        writer.keep_writing()
        return subprocess.Popen(relay, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    try:
        result = kill_at_random_moments(
            start, lambda: message_count(nats_url, stream), kills, rng, max_delay=0.5, meanwhile=writer.keep_writing,
            has_work=lambda: writer.writing() or message_count(nats_url, stream) < scalar(url, "SELECT count(*) FROM ledger_events"),
            on_round=progress_line(f"{backend} NATS relay", kills),
        )
        writer.finish()
        published = message_count(nats_url, stream)
        final = subprocess.run([*relay, "--once"], env=env, capture_output=True, text=True, timeout=600)
        if final.returncode != 0:
            raise RuntimeError(f"the last relay run failed: {final.stderr}")
        outcome = Outcome("NATS relay", backend, result)
        with opened(url) as ledger:
            expected = [event["entry_id"] for event in Feed(ledger).events()]
        stored = [m.headers["Nats-Msg-Id"] for m in stored_messages(nats_url, stream)]
        compare(outcome, expected, stored)
        outcome.notes.append(f"{published} of {len(expected)} events published by the killed relays")
        with opened(url) as ledger:
            outcome.verified = verify(ledger.engine).intact
        return outcome
    finally:
        delete_stream(nats_url, stream)


def progress_line(label: str, kills: int) -> Callable[[int], None]:
    """A line on a terminal that counts the kills."""
    if not sys.stderr.isatty():
        return lambda _: None

    def draw(done: int) -> None:
        print(f"\r{label}: {done}/{kills} kills", end="\n" if done == kills else "", file=sys.stderr, flush=True)

    return draw


# --- the script ---------------------------------------------------------------------------


def nats_answers(url: str) -> str | None:
    """None when NATS with JetStream answers at ``url``; otherwise why not."""
    try:
        from tests.jetstream_probes import jetstream_answers

        jetstream_answers(url)
    except Exception as error:  # any client error means: not reachable
        return f"{error.__class__.__name__}: {error}"
    return None


def run(args: argparse.Namespace) -> list[Outcome]:
    rng = random.Random(args.seed)
    backends: list[tuple[str, str | None]] = [("SQLite", None)]
    if not args.no_postgres:
        backends.append(("PostgreSQL", args.postgres))
    why_no_nats = None if args.no_nats else nats_answers(args.nats)
    outcomes = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for backend, server in backends:
            with fresh_database(server, tmp, "torture_import") as url, fresh_database(server, tmp, "torture_clean") as clean:
                outcomes.append(import_torment(url, clean, tmp, args.patients, args.kills, rng, backend))
            with fresh_database(server, tmp, "torture_follower") as url:
                outcomes.append(follower_torment(url, tmp, args.kills, rng, backend))
            if not args.no_nats and why_no_nats is None:
                with fresh_database(server, tmp, "torture_relay") as url:
                    outcomes.append(relay_torment(url, args.nats, tmp, args.kills, rng, backend))
    if why_no_nats is not None and not args.no_nats:
        print(f"NATS relay left out: no NATS with JetStream at {args.nats} ({why_no_nats})", file=sys.stderr)
    return outcomes


def render(outcomes: list[Outcome], seed: int) -> str:
    rows = [("torment", "store", "kills", "mid-work", "events", "lost", "duplicated", "in order", "= rebuild", "verify", "seconds")]
    for o in outcomes:
        rows.append((
            o.torment, o.backend, str(o.kills.kills), str(o.kills.mid_work), f"{o.events:,}", str(o.lost), str(o.duplicated),
            "no" if o.out_of_order else "yes", {None: "-", True: "yes", False: "NO"}[o.read_models_equal_rebuild],
            {None: "-", True: "ok", False: "FAILED"}[o.verified], f"{o.kills.seconds:g}",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for o in outcomes:
        lines.extend(f"  {o.backend} {o.torment}: {note}" for note in o.notes)
    verdict = "every torment ended with nothing lost or doubled" if all(o.ok for o in outcomes) else "A TORMENT FAILED (see above)"
    lines.append(f"random seed {seed}; {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["write"]:  # the writer's own process (Writer)
        write_without_projecting(argv[1], Path(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50, help="kills per torment (default 50)")
    parser.add_argument("--patients", type=int, help="patients in the import torment's file (37 lines each; default 6 per kill)")
    parser.add_argument("--postgres", default=SERVER, help=f"the PostgreSQL server to make databases on (default {SERVER})")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--nats", default=NATS, help=f"NATS with JetStream for the relay's torment (default {NATS})")
    parser.add_argument("--no-nats", action="store_true")
    parser.add_argument("--seed", type=int, default=random.randrange(2**32))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    args.patients = args.patients or max(10, 6 * args.kills)
    outcomes = run(args)
    if args.json:
        print(json.dumps({"seed": args.seed, "kills": args.kills, "torments": [o.as_dict() for o in outcomes]}, indent=2))
    else:
        print(render(outcomes, args.seed))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
