"""Verification speed: ``ledger verify`` over an untouched ledger, against reading the same rows.

Imports a generated rule-abiding trial (``benchmarks.generate.write_scale``, default ≈ 100k
events) into a fresh database, then alternates, three times each: ``verify`` (the whole hash
chain recomputed: every event and its index row encoded, hashed and linked, per-record chains,
version order, the head) and the baseline, the same paged select through the same driver
cursor with nothing computed. Prints events/s of both (best of three), their ratio, and the
target of the issue: at least 100,000 events/s.

    python -m benchmarks.verify_speed [--events 100000] [--postgres SERVER_URL | --no-postgres] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.generate import write_scale
from benchmarks.scale import DEFAULT_POSTGRES, postgres_database, postgres_unreachable
from ledger.bootstrap import Settings, build_ledger
from ledger.domain.values import Actor, Role
from ledger.integrity.verify import driver_cursor, last_event_position, pages, verify
from ledger.interfaces.importer import Progress, count_lines, import_file

TARGET = 100_000
EVENTS_PER_PATIENT = 250


def read_only(url: str) -> tuple[int, float]:
    """The baseline: the verify pass's reading of events and index rows, page by page, nothing hashed; (rows, seconds)."""
    ledger = build_ledger(Settings(database_url=url, user="bench"))
    raw = ledger.engine.raw_connection()
    started = time.perf_counter()
    cursor = driver_cursor(raw, ledger.engine.dialect.name)
    rows = sum(len(page) for page in pages(cursor, ledger.engine.dialect.name, last_event_position(cursor)))
    spent = time.perf_counter() - started
    raw.close()
    ledger.close()
    return rows, spent


def verified(url: str) -> tuple[int, float]:
    ledger = build_ledger(Settings(database_url=url, user="bench"))
    started = time.perf_counter()
    report = verify(ledger.engine)
    spent = time.perf_counter() - started
    ledger.close()
    if not report.intact:
        raise SystemExit(f"the generated ledger does not verify: {report.problems[0]}")
    return report.events, spent


def run(backend: str, url: str, trial: Path) -> dict[str, Any]:
    ledger = build_ledger(Settings(database_url=url, user="bench"))
    progress = Progress(count_lines(trial), label=f"{backend}: importing")
    try:
        import_file(ledger, trial, Actor("bench", Role.INVESTIGATOR), on_line=progress)
    finally:
        progress.close()
        ledger.close()
    mine, base = [], []
    for _ in range(3):
        events, seconds = verified(url)
        mine.append(events / seconds)
        rows, seconds = read_only(url)
        base.append(rows / seconds)
    rate, baseline = max(mine), max(base)
    return {"backend": backend, "events": events, "verify_events_per_s": round(rate), "read_events_per_s": round(baseline),
            "ratio": round(rate / baseline, 3), "target_events_per_s": TARGET, "met": rate >= TARGET}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="about how many events to generate (default 100,000)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--postgres", metavar="SERVER_URL")
    group.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="ledger-verify-") as tmp_dir:
        trial = Path(tmp_dir) / "trial.jsonl"
        with trial.open("w", encoding="utf-8") as out:
            write_scale(max(args.events // EVENTS_PER_PATIENT, 6), out)
        results.append(run("SQLite", f"sqlite:///{Path(tmp_dir) / 'ledger.sqlite'}", trial))
        if not args.no_postgres:
            server = args.postgres or DEFAULT_POSTGRES
            why = postgres_unreachable(server)
            if why is None:
                with postgres_database(server) as (url, _):
                    results.append(run("PostgreSQL", url, trial))
            elif args.postgres:
                print(f"PostgreSQL at {server} cannot be reached: {why}", file=sys.stderr)
                return 5
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'backend':<11} {'events':>8} {'verify (events/s)':>18} {'read only (events/s)':>21} {'ratio':>6}  target              met")
    for r in results:
        print(f"{r['backend']:<11} {r['events']:>8,} {r['verify_events_per_s']:>18,} {r['read_events_per_s']:>21,} {r['ratio']:>6.2f}  "
              f">= {TARGET:,} events/s  {'yes' if r['met'] else 'NO'}")
    print("verify: the whole chain recomputed (ledger.integrity.verify); read only: the same paged select, nothing computed; best of 3, alternating.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
