"""What the CLI's modules share: exit codes, argument types, the time options, a projection catch-up.

Exit codes (contract.md): 0 success; 1 refused by a rule or invalid input (stderr names the
rule or field); 2 usage error; 3 integrity failure; 4 a concurrent-write conflict that
persisted (send again); 5 the database cannot be reached or opened; 6 the database's tables are
at an older revision (run ``ledger migrate``); 7 the ledger has users and no valid credential
was given (``LEDGER_TOKEN``); 8 a subscriber's ``--exec`` command failed on an event; 9 the message
broker cannot be reached, or its stream cannot be extended by the relay (``ledger relay nats``;
stderr says what to check).
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime

from ledger.application import TrialLedger
from ledger.interfaces.importer import Progress
from ledger.projections.projector import Projector

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_INTEGRITY, EXIT_CONFLICT, EXIT_STORE, EXIT_BEHIND, EXIT_AUTH, EXIT_HANDLER, EXIT_BROKER = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9


def add_time_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as-of", type=timestamp, default=None, metavar="TIMESTAMP", help="what the ledger knew then (ISO 8601 with offset)")
    p.add_argument("--valid-on", type=day, default=None, metavar="DATE", help="the clinical state on that date (default today)")


def timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 timestamp") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs an offset, e.g. {text}+00:00")
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise argparse.ArgumentTypeError(f"{text!r} is no time in UTC (out of range)") from None
    return value


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def catch_up(ledger: TrialLedger) -> None:
    progress = Progress(0, label="projecting", unit="events")
    try:
        Projector(ledger).catch_up(on_progress=progress.position)
    finally:
        progress.close()
