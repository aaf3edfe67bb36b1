"""Import speed: commands per second of ``ledger import``, against the bare event store.

Writes a synthetic, rule-abiding file (benchmarks/generate.py), imports it into a fresh
database through the whole write path (schema, rules, events, entry index, command ids,
one transaction per line), and, as the baseline in the same run, saves the same number of
events one transaction each with eventsourcing alone (no rules, no index). Prints both and
their ratio.

    python benchmarks/import_speed.py [--patients 80] [--database-url URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from benchmarks.generate import write
from ledger.bootstrap import Settings, build_ledger
from ledger.domain.values import Actor, Role
from ledger.interfaces.importer import import_file


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=80)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trial.jsonl"
        with path.open("w") as out:
            lines = write(args.patients, out)
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        ledger = build_ledger(Settings(database_url=url, user="bench"))
        report = import_file(ledger, path, Actor("bench", Role.INVESTIGATOR))
        ledger.close()
        assert report.ok, report.problems[:3]
        baseline_url = args.database_url or f"sqlite:///{Path(tmp) / 'baseline.sqlite'}"
        baseline = bare_store_rate(baseline_url, lines, args.patients)
    print(f"import: {lines} lines, {report.entries} events in {report.seconds:.2f} s = {report.rate:.0f} commands/s")
    print(f"baseline (eventsourcing get+save, one transaction each, no rules): {baseline:.0f} saves/s")
    print(f"ratio import/baseline: {report.rate / baseline:.2f}")


if __name__ == "__main__":
    main()
