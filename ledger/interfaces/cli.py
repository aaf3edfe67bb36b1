"""The ``ledger`` command line: one subcommand per command of contract.md, plus queries.

Exit codes (contract.md): 0 success; 1 refused by a rule or invalid input (stderr names the
rule or field); 2 usage error; 3 integrity failure; 4 a concurrent-write conflict that
persisted (send again); 5 the database cannot be reached or opened; 6 the database's tables are
at an older revision (run ``ledger migrate``); 7 the ledger has users and no valid credential
was given (``LEDGER_TOKEN``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO, cast

from eventsourcing.persistence import PersistenceError
from marshmallow import fields
from sqlalchemy.exc import SQLAlchemyError

from ledger.application import TrialLedger
from ledger.audit import FORMATS, AuditFilter, export
from ledger.audit.export import record_export
from ledger.bootstrap import Settings, build_ledger
from ledger.database import current_revision
from ledger.domain.values import Role
from ledger.encoding import plain
from ledger.errors import ChainBroken, CommandRefused, ConcurrentWriteError, DatabaseBehind, InvalidCommand, NotAuthenticated, StoreUnavailable
from ledger.integrity.checkpoint import Checkpoint, CheckpointError, load_or_create_key, public_hex, read_checkpoint, seal
from ledger.integrity.verify import VerifyReport, verify
from ledger.interfaces import documents, identity_cli, render
from ledger.interfaces.importer import DEFAULT_BATCH_SIZE, ImportFailed, Progress, count_lines, import_file
from ledger.interfaces.schemas import COMMON_FIELDS, SCHEMAS, parse_command
from ledger.policies import access
from ledger.projections.projector import Projector
from ledger.projections.queries import audit_trail, trial_summary
from ledger.projections.tables import PROJECTIONS
from ledger.protocol import ProtocolError

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_INTEGRITY, EXIT_CONFLICT, EXIT_STORE, EXIT_BEHIND, EXIT_AUTH = 0, 1, 2, 3, 4, 5, 6, 7

Handler = Callable[[argparse.Namespace, TrialLedger, Settings], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    ledger: TrialLedger | None = None
    try:
        settings = Settings.from_env()
        ledger = build_ledger(settings, migrate=getattr(args, "migrates", False), create=not getattr(args, "reads_only", False))
        settings = identity_cli.signed_in(args, ledger, settings)
        return int(args.handler(args, ledger, settings))
    except NotAuthenticated as error:
        print(f"not authenticated: {error}", file=sys.stderr)
        return EXIT_AUTH
    except ChainBroken as error:
        print(f"integrity: {error}", file=sys.stderr)
        return EXIT_INTEGRITY
    except InvalidCommand as error:
        print(f"invalid: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except CommandRefused as error:
        print(f"refused: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except ConcurrentWriteError as error:
        print(f"conflict: {error}", file=sys.stderr)
        return EXIT_CONFLICT
    except ProtocolError as error:
        print(f"configuration: {error} (LEDGER_PROTOCOL_VERSION)", file=sys.stderr)
        return EXIT_USAGE
    except DatabaseBehind as error:
        print(f"database behind: {error}", file=sys.stderr)
        return EXIT_BEHIND
    except BrokenPipeError:
        # the reader went away (``ledger ... | head``): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (StoreUnavailable, PersistenceError, SQLAlchemyError) as error:
        print(f"database error: {error}\ncheck LEDGER_DATABASE_URL and that the database server is running", file=sys.stderr)
        return EXIT_STORE
    finally:
        if ledger is not None:
            ledger.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ledger", description="Event-sourced audit ledger of trial NCT02311998.")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name, schema_cls in SCHEMAS.items():
        _add_command(sub, name, schema_cls)

    imp = sub.add_parser("import", help="run a JSON Lines file of commands, one transaction per line")
    imp.add_argument("file", type=Path)
    imp.add_argument("--keep-going", action="store_true", help="report refused lines and go on")
    imp.add_argument(
        "--batch-size", type=_positive, default=DEFAULT_BATCH_SIZE, metavar="N",
        help=f"lines committed per transaction (default {DEFAULT_BATCH_SIZE}; 1 = one transaction per line)",
    )
    imp.add_argument("--json", action="store_true", help="print the report as JSON")
    imp.set_defaults(handler=_import, action="import")

    patient = sub.add_parser("patient", help="a patient's state or history").add_subparsers(title="patient", metavar="ACTION")
    show = patient.add_parser("show", help="the patient's state (contract.md)")
    show.add_argument("patient_id")
    _add_time_options(show)
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_patient_show, reads_only=True, action="patient show")
    history = patient.add_parser("history", help="every entry: who recorded what, when and why")
    history.add_argument("patient_id")
    history.add_argument("--json", action="store_true")
    history.set_defaults(handler=_patient_history, reads_only=True, action="patient history")

    escalation = sub.add_parser("escalation", help="the phase I 3+3 escalation").add_subparsers(title="escalation", metavar="ACTION")
    esc_show = escalation.add_parser("show", help="levels, DLTs, decisions and the next action per stratum")
    esc_show.add_argument("--stratum")
    _add_time_options(esc_show)
    esc_show.add_argument("--json", action="store_true")
    esc_show.set_defaults(handler=_escalation_show, reads_only=True, action="escalation show")

    decisions = sub.add_parser("decisions", help="each 3+3 decision, its basis, and whether the rule would still give it")
    decisions.add_argument("--stratum")
    decisions.add_argument("--json", action="store_true")
    decisions.set_defaults(handler=_decisions, reads_only=True, action="decisions")

    project = sub.add_parser("project", help="bring the read models up to date with the events")
    project.add_argument("--follow", action="store_true", help="keep them current for writers in other processes (Ctrl-C stops)")
    project.add_argument("--interval", type=float, default=1.0, metavar="SECONDS", help="polling interval with --follow")
    project.set_defaults(handler=_project_command, action="project")

    rebuild = sub.add_parser("rebuild", help="rebuild the read models from the first event and swap them in")
    rebuild.add_argument("--projection", choices=PROJECTIONS, help="one projection (default: all)")
    rebuild.add_argument("--json", action="store_true")
    rebuild.set_defaults(handler=_rebuild, action="rebuild")

    audit = sub.add_parser("audit", help="the audit trail: every entry, who, when, why; old and new value of corrections")
    _add_audit_listing_options(audit)  # ``ledger audit`` alone lists, as ``ledger audit show`` does
    audit_actions = audit.add_subparsers(title="audit", metavar="ACTION")
    _add_audit_listing_options(audit_actions.add_parser("show", help="list the audit trail (the default action)"))
    export = audit_actions.add_parser("export", help="write the audit trail as CSV, JSON or CDISC ODM 1.3.2 (docs/audit-export.md)")
    export.add_argument("--format", choices=FORMATS, required=True)
    export.add_argument("--patient", help="one patient's entries")
    export.add_argument("--user", help="the entries this user recorded")
    export.add_argument("--from", dest="recorded_from", type=_timestamp, metavar="TIMESTAMP", help="recorded at or after")
    export.add_argument("--to", dest="recorded_to", type=_timestamp, metavar="TIMESTAMP", help="recorded before")
    export.add_argument("--type", dest="event_types", action="append", default=[], metavar="EVENT_TYPE", help="one event type (repeatable)")
    export.add_argument("--as-of", type=_timestamp, default=None, metavar="TIMESTAMP", help="what the ledger had recorded then (transaction time)")
    export.add_argument("--output", type=Path, metavar="FILE", help="write to FILE (default: standard output)")
    export.set_defaults(handler=_audit_export, reads_only=True, action="audit export")

    summary = sub.add_parser("summary", help="enrolled per phase and stratum, status and best-response counts")
    _add_time_options(summary)
    summary.add_argument("--json", action="store_true")
    summary.set_defaults(handler=_summary, reads_only=True, action="summary")

    scheduler = sub.add_parser("scheduler", help="record what time makes due (missed visits, follow-up ends, DLT windows)")
    scheduler_actions = scheduler.add_subparsers(title="scheduler", metavar="ACTION")
    run = scheduler_actions.add_parser("run", help="run the scheduler in the foreground (Ctrl-C stops)")
    run.add_argument("--once", action="store_true", help="record every action due now, then exit (for cron or CI)")
    run.add_argument("--poll", type=float, default=60.0, metavar="SECONDS", help="how often to look for new facts (default 60)")
    run.add_argument("--json", action="store_true", help="with --once: print the report as JSON")
    run.set_defaults(handler=_scheduler_run, action="scheduler run")

    plan = sub.add_parser("schedule", help="what time makes due").add_subparsers(title="schedule", metavar="ACTION")
    plan_show = plan.add_parser("show", help="pending actions and when they fall due, overdue first")
    plan_show.add_argument("--patient")
    plan_show.add_argument("--json", action="store_true")
    plan_show.set_defaults(handler=_schedule_show, reads_only=True, action="schedule show")

    check = sub.add_parser("verify", help="recompute the hash chain over every stored event; exit 3 naming the first that does not verify")
    check.add_argument("--checkpoint", type=Path, metavar="FILE", help="also prove the ledger still extends this signed checkpoint")
    check.add_argument("--public-key", metavar="HEX", help="the checkpoint must be signed with this Ed25519 public key")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=_verify, reads_only=True, action="verify")

    sealing = sub.add_parser("seal", help="verify, then write a signed checkpoint of the chain's head to keep outside the system")
    sealing.add_argument("--key", type=Path, required=True, metavar="FILE", help="Ed25519 private key (PEM); created when missing")
    sealing.add_argument("--out", type=Path, metavar="FILE", help="write the checkpoint here (default: print it)")
    sealing.set_defaults(handler=_seal, reads_only=True, action="seal")

    migrate = sub.add_parser("migrate", help="bring the database's tables to the newest revision")
    migrate.set_defaults(handler=_migrate, migrates=True, action="migrate")

    demo = sub.add_parser("demo", help="record a clearly labelled synthetic trial into an empty database")
    demo.set_defaults(handler=_demo, action="demo")
    identity_cli.add_parsers(sub)
    return parser


def _add_command(sub: Any, name: str, schema_cls: type) -> None:
    schema = schema_cls()
    p = sub.add_parser(name.replace("_", "-"), help=f"record {name}")
    p.set_defaults(handler=_record, command=name, action=name)
    if "patient_id" in schema.fields:
        p.add_argument("patient_id")
    for field_name, field in schema.fields.items():
        if field_name in COMMON_FIELDS:
            continue
        option = "--" + field_name.replace("_", "-")
        if isinstance(field, fields.Boolean):
            p.add_argument(option, dest=field_name, action=argparse.BooleanOptionalAction, default=None)
        elif isinstance(field, fields.List):
            p.add_argument(option, dest=field_name, nargs="*", default=None, metavar="VALUE")
        elif isinstance(field, fields.Dict):
            p.add_argument("--set", dest="set_changes", action="append", default=[], metavar="FIELD=VALUE", help="a corrected value (repeatable)")
            p.add_argument("--changes", dest="changes_json", default=None, metavar="JSON", help="corrected values as a JSON object")
        else:
            p.add_argument(option, dest=field_name, default=None, metavar=field_name.upper())
    p.add_argument("--reason", default=None)
    p.add_argument("--source", default=None)
    p.add_argument("--command-id", dest="command_id", default=None)
    p.add_argument("--deviation", action="store_true", default=None, help="record a rule-breaking fact as an acknowledged deviation (needs --reason)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")


def _record(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    schema_fields = SCHEMAS[args.command]().fields
    data: dict[str, Any] = {"command": args.command}
    for name in schema_fields:
        value = getattr(args, name, None)
        if value is not None:
            data[name] = value
    if args.command == "correct_entry":
        data["changes"] = _changes(args)
    outcome = ledger.handle(parse_command(data), settings.actor)
    Projector(ledger).catch_up()
    if args.json:
        print(documents.to_json(documents.OutcomeDocument(), outcome))
    else:
        print(render.outcome(outcome))
    return EXIT_OK


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if args.changes_json:
        try:
            loaded = json.loads(args.changes_json)
        except json.JSONDecodeError:
            raise InvalidCommand({"changes": "is not a JSON object"}) from None
        if not isinstance(loaded, dict):
            raise InvalidCommand({"changes": "is not a JSON object"})
        changes.update(loaded)
    for item in args.set_changes:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidCommand({"changes": f"--set {item!r} is not FIELD=VALUE"})
        changes[name] = value
    return changes


def _import(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    if not args.file.is_file():
        print(f"usage: no such file: {args.file}", file=sys.stderr)
        return EXIT_USAGE
    progress = Progress(count_lines(args.file))
    try:
        report = import_file(ledger, args.file, settings.actor, keep_going=args.keep_going, on_line=progress, batch_size=args.batch_size)
    except ImportFailed as failure:
        print(f"{failure.report.summary()}; failed at line {failure.line}", file=sys.stderr)
        raise failure.__cause__ from None  # type: ignore[misc]
    finally:
        progress.close()
        _catch_up(ledger)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        for problem in report.problems:
            print(f"line {problem.line}: {problem.kind}: {problem.message}", file=sys.stderr)
        print(report.summary())
    return EXIT_OK if report.ok else EXIT_REFUSED


def _patient_show(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    from ledger.queries import patient_document

    doc = _shown_to(settings, patient_document(ledger, args.patient_id, as_of=args.as_of, valid_on=args.valid_on))
    print(documents.to_json(documents.PatientDocument(), doc) if args.json else render.patient(doc))
    return EXIT_OK


def _patient_history(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    from ledger.queries import patient_history

    doc = patient_history(ledger, args.patient_id)
    print(documents.to_json(documents.HistoryDocument(), doc) if args.json else render.history(doc))
    return EXIT_OK


def _escalation_show(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    from ledger.queries import escalation_document

    doc = escalation_document(ledger, args.stratum, as_of=args.as_of, valid_on=args.valid_on)
    print(documents.to_json(documents.EscalationDocument(), doc) if args.json else render.escalation(doc))
    return EXIT_OK


def _decisions(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    from ledger.provenance import decisions_document

    doc = _shown_to(settings, decisions_document(ledger, args.stratum))
    print(documents.to_json(documents.DecisionsDocument(), doc) if args.json else render.decisions(doc))
    return EXIT_OK


def _demo(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    from ledger.demo import run_demo

    code = run_demo(ledger, sys.stdout)
    _catch_up(ledger)
    return code


def _catch_up(ledger: TrialLedger) -> None:
    progress = Progress(0, label="projecting", unit="events")
    try:
        Projector(ledger).catch_up(on_progress=progress.position)
    finally:
        progress.close()


def _project_command(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    projector = Projector(ledger)
    if not args.follow:
        print(f"{projector.catch_up()} events applied; read models are current")
        return EXIT_OK
    print(f"following the ledger every {args.interval:g} s (Ctrl-C stops)", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        projector.follow(args.interval)
    return EXIT_OK


def _rebuild(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    projections = [args.projection] if args.projection else list(PROJECTIONS)
    progress = Progress(0, label="rebuilding", unit="events")
    try:
        last = Projector(ledger, projections).rebuild(on_progress=progress.position)
    finally:
        progress.close()
    if args.json:
        print(json.dumps({"projections": projections, "position": last}))
    else:
        print(f"rebuilt {', '.join(projections)} up to position {last}")
    return EXIT_OK


def _audit(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    doc = audit_trail(ledger, patient_id=args.patient, as_of=args.as_of, valid_on=args.valid_on, limit=args.limit)
    print(json.dumps(plain(doc), indent=2) if args.json else render.audit(doc))
    return EXIT_OK


def _add_audit_listing_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--patient")
    _add_time_options(p)
    p.add_argument("--limit", type=_positive, default=None, metavar="N")
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


def _summary(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    doc = trial_summary(ledger, args.valid_on, args.as_of)
    print(json.dumps(plain(doc), indent=2) if args.json else render.summary(doc))
    return EXIT_OK


def _shown_to(settings: Settings, doc: dict[str, Any]) -> dict[str, Any]:
    """The document as the acting role may see it: the sponsor's without free text (rule ACCESS-SPONSOR)."""
    return cast(dict[str, Any], access.sponsor_view(doc)) if settings.role is Role.SPONSOR else doc


def _add_time_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as-of", type=_timestamp, default=None, metavar="TIMESTAMP", help="what the ledger knew then (ISO 8601 with offset)")
    p.add_argument("--valid-on", type=_date, default=None, metavar="DATE", help="the clinical state on that date (default today)")


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 timestamp") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs an offset, e.g. {text}+00:00")
    return value


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _scheduler_run(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    from ledger.scheduling import RunReport, Scheduling
    from ledger.scheduling.driver import SchedulerDriver

    if args.once:
        progress = Progress(0, label="recording due entries", unit="entries")
        try:
            report = Scheduling(ledger).run_due(on_progress=progress.position)
        finally:
            progress.close()
        _catch_up(ledger)
        doc = report.as_dict()
        if args.json:
            print(documents.to_json(documents.SchedulerRunDocument(), doc))
        else:
            print(f"{doc['due']} due: {doc['recorded']} recorded, {doc['duplicates']} recorded before, {len(report.refused)} refused")
            for command_id, why in report.refused.items():
                print(f"  {command_id}: {why}")
        return EXIT_OK

    def announce(report: RunReport) -> None:
        if report.recorded or report.refused:
            print(f"{ledger.clock.now().isoformat()}  {len(report.recorded)} recorded, {len(report.refused)} refused", flush=True)
            _catch_up(ledger)

    driver = SchedulerDriver(ledger, poll_seconds=args.poll, on_run=announce)
    print(f"scheduler running: looking for new facts every {args.poll:g} s (Ctrl-C stops)", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        driver.run_forever()
    return EXIT_OK


def _schedule_show(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    from ledger.queries import schedule_document

    doc = schedule_document(ledger, args.patient)
    print(documents.to_json(documents.ScheduleDocument(), doc) if args.json else render.schedule(doc))
    return EXIT_OK


def _verify_with_progress(ledger: TrialLedger, checkpoint: Checkpoint | None = None) -> VerifyReport:
    progress = Progress(0, label="verifying", unit="events")
    try:
        return verify(ledger.engine, checkpoint, on_progress=progress.position)
    finally:
        progress.close()


def _verify(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    checkpoint = None
    if args.checkpoint is not None:
        try:
            checkpoint = read_checkpoint(args.checkpoint, args.public_key)
        except CheckpointError as error:
            print(f"integrity: {error}", file=sys.stderr)
            return EXIT_INTEGRITY
    report = _verify_with_progress(ledger, checkpoint)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    elif report.intact:
        extends = f"; it extends the checkpoint at position {checkpoint.position} sealed {checkpoint.sealed_at}" if checkpoint else ""
        print(f"intact: {report.events} events up to position {report.position}, chain hash {report.chain_hash}{extends}")
    else:
        first = report.problems[0]
        print(f"NOT INTACT at position {first.position}: {first.why}", file=sys.stderr)
        for other in report.problems[1:]:
            print(f"  also at position {other.position}: {other.why}", file=sys.stderr)
    return EXIT_OK if report.intact else EXIT_INTEGRITY


def _seal(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    report = _verify_with_progress(ledger)
    if not report.intact:
        first = report.problems[0]
        print(f"NOT INTACT at position {first.position}: {first.why}; nothing sealed", file=sys.stderr)
        return EXIT_INTEGRITY
    try:
        key, created = load_or_create_key(args.key)
    except (CheckpointError, ValueError, OSError) as error:
        print(f"invalid: --key {args.key}: {error}", file=sys.stderr)
        return EXIT_USAGE
    if created:
        print(f"created Ed25519 key {args.key} (public key {public_hex(key)}); keep it private", file=sys.stderr)
    document = seal(key, report.position, report.chain_hash, report.events, ledger.clock.now().isoformat(), settings.user)
    text = json.dumps(document, indent=2)
    if args.out is None:
        print(text)
    else:
        args.out.write_text(text + "\n")
        print(f"sealed position {report.position} ({report.events} events), chain hash {report.chain_hash}, into {args.out}", file=sys.stderr)
    return EXIT_OK


def _migrate(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    # build_ledger(migrate=True) has upgraded the database; a read model a revision recreated is filled again
    _catch_up(ledger)
    print(f"database is at revision {current_revision(ledger.engine)} (the newest)")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
