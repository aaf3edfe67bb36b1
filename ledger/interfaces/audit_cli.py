"""``ledger audit``: the audit trail listed, and exported as CSV, JSON or CDISC ODM (docs/audit-export.md)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from ledger.application import TrialLedger
from ledger.audit import FORMATS, AuditFilter, export
from ledger.audit.export import record_export
from ledger.bootstrap import Settings
from ledger.encoding import plain
from ledger.interfaces import render
from ledger.interfaces.options import EXIT_OK, EXIT_USAGE, add_time_options, positive, timestamp
from ledger.projections.projector import Projector
from ledger.projections.queries import audit_trail


def add_parsers(sub: Any) -> None:
    audit = sub.add_parser("audit", help="the audit trail: every entry, who, when, why; old and new value of corrections")
    _add_audit_listing_options(audit)  # ``ledger audit`` alone lists, as ``ledger audit show`` does
    audit_actions = audit.add_subparsers(title="audit", metavar="ACTION")
    _add_audit_listing_options(audit_actions.add_parser("show", help="list the audit trail (the default action)"))
    export = audit_actions.add_parser("export", help="write the audit trail as CSV, JSON or CDISC ODM 1.3.2 (docs/audit-export.md)")
    export.add_argument("--format", choices=FORMATS, required=True)
    export.add_argument("--patient", help="one patient's entries")
    export.add_argument("--user", help="the entries this user recorded")
    export.add_argument("--from", dest="recorded_from", type=timestamp, metavar="TIMESTAMP", help="recorded at or after")
    export.add_argument("--to", dest="recorded_to", type=timestamp, metavar="TIMESTAMP", help="recorded before")
    export.add_argument("--type", dest="event_types", action="append", default=[], metavar="EVENT_TYPE", help="one event type (repeatable)")
    export.add_argument("--as-of", type=timestamp, default=None, metavar="TIMESTAMP", help="what the ledger had recorded then (transaction time)")
    export.add_argument("--output", type=Path, metavar="FILE", help="write to FILE (default: standard output)")
    export.set_defaults(handler=_audit_export, reads_only=True, action="audit export")


def _audit(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    doc = audit_trail(ledger, patient_id=args.patient, as_of=args.as_of, valid_on=args.valid_on, limit=args.limit)
    print(json.dumps(plain(doc), indent=2) if args.json else render.audit(doc))
    return EXIT_OK


def _add_audit_listing_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--patient")
    add_time_options(p)
    p.add_argument("--limit", type=positive, default=None, metavar="N")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_audit, reads_only=True, action="audit show")


def _audit_export(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    filters = AuditFilter(args.patient, args.user, args.recorded_from, args.recorded_to, tuple(args.event_types), args.as_of)
    Projector(ledger).catch_up()  # an export holds every entry recorded so far, whoever recorded it
    try:
        with _output(args.output) as out:
            result = export(ledger, args.format, filters, out)
    except BrokenPipeError:
        raise
    except OSError as error:
        print(f"invalid: --output {args.output}: {error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
    record_export(ledger, result, settings.actor)
    if args.output is not None:
        entries = f"{result.entries} entr{'y' if result.entries == 1 else 'ies'}"
        print(f"{entries} ({result.rows} rows) written to {args.output} as {result.format}", file=sys.stderr)
    return EXIT_OK


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    """Standard output, or ``path`` written whole: a temporary file beside it, renamed into place when complete."""
    if path is None:
        if isinstance(sys.stdout, io.TextIOWrapper):  # the files say UTF-8, whatever the terminal's locale
            sys.stdout.reconfigure(encoding="utf-8", newline="")
        yield sys.stdout
        return
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            yield out
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
