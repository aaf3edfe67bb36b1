"""Import speed: commands per second of ``ledger import``, against the bare event store.

Writes a synthetic, rule-abiding file (benchmarks/generate.py), imports it into a fresh
database through the whole write path (schema, rules, events, entry index, command ids,
one transaction per line), and, as the baseline in the same run, saves the same number of
events one transaction each with eventsourcing alone (no rules, no index). Prints both and
their ratio.

    python -m benchmarks.import_speed [--patients 80] [--batch-size 100] [--postgres SERVER_URL]

With ``--postgres`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) both runs
use fresh databases created on that server and dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from sqlalchemy import create_engine, text

from benchmarks.generate import write
from ledger.bootstrap import Settings, build_ledger
from ledger.domain.values import Actor, Role
from ledger.interfaces.importer import DEFAULT_BATCH_SIZE, import_file


class Counter(Aggregate):
    @event("Ticked")
    def tick(self, n: int) -> None:
        self.n = n


def bare_store_rate(url: str, saves: int, patients: int) -> float:
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing_sqlalchemy", "SQLALCHEMY_URL": url, "CREATE_TABLE": "y",
                           "AGGREGATE_CACHE_MAXSIZE": "1000"})
    counters = [Counter() for _ in range(patients)]
    app.save(*counters)
    started = time.perf_counter()
    for i in range(saves):
        counter = app.repository.get(counters[i % patients].id)
        counter.tick(i)
        app.save(counter)
    elapsed = time.perf_counter() - started
    app.close()
    return saves / elapsed


@contextmanager
def fresh_database(server: str | None, tmp: Path, name: str) -> Iterator[str]:
    if server is None:
        yield f"sqlite:///{tmp / (name + '.sqlite')}"
        return
    database = f"ledger_bench_{name}_{os.getpid()}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", pool_pre_ping=True)  # the server may have restarted meanwhile
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {database}"))
    try:
        yield server.rsplit("/", 1)[0] + "/" + database
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=80)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--postgres", metavar="SERVER_URL", help="run on PostgreSQL (default: SQLite files)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        path = tmp / "trial.jsonl"
        with path.open("w") as out:
            lines = write(args.patients, out)
        with fresh_database(args.postgres, tmp, "import") as url:
            ledger = build_ledger(Settings(database_url=url, user="bench"))
            report = import_file(ledger, path, Actor("bench", Role.INVESTIGATOR), batch_size=args.batch_size)
            ledger.close()
        if not report.ok:
            raise SystemExit(f"the generated file was refused: {report.problems[:3]}")
        with fresh_database(args.postgres, tmp, "baseline") as url:
            baseline = bare_store_rate(url, lines, args.patients)
    store = "PostgreSQL" if args.postgres else "SQLite"
    print(f"{store}, batches of {args.batch_size} lines")
    print(f"import: {lines} lines, {report.entries} events in {report.seconds:.2f} s = {report.rate:.0f} commands/s")
    print(f"baseline (eventsourcing get+save, one transaction each, no rules): {baseline:.0f} saves/s")
    print(f"ratio import/baseline: {report.rate / baseline:.2f}")


if __name__ == "__main__":
    main()
