"""The ``ledger`` command line: one subcommand per command of contract.md, plus queries.

Exit codes: ``ledger.interfaces.options``. The audit trail, the scheduler, verification and
users each have a module of their own (``audit_cli``, ``scheduler_cli``, ``integrity_cli``,
``identity_cli``, ``report_cli``) that adds its subcommands.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from eventsourcing.persistence import PersistenceError
from marshmallow import fields
from sqlalchemy.exc import SQLAlchemyError

from ledger import outages
from ledger.application import TrialLedger
from ledger.bootstrap import Settings, build_ledger
from ledger.database import current_revision
from ledger.domain.values import Role
from ledger.encoding import plain
from ledger.errors import ChainBroken, CommandRefused, ConcurrentWriteError, DatabaseBehind, InvalidCommand, NotAuthenticated, StoreUnavailable
from ledger.interfaces import (
    audit_cli,
    documents,
    identity_cli,
    integrity_cli,
    relay_cli,
    render,
    report_cli,
    scheduler_cli,
    serve_cli,
    subscribe_cli,
)
from ledger.interfaces.importer import DEFAULT_BATCH_SIZE, ImportFailed, Progress, count_lines, import_file
from ledger.interfaces.options import (
    EXIT_AUTH,
    EXIT_BEHIND,
    EXIT_CONFLICT,
    EXIT_INTEGRITY,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_STORE,
    EXIT_USAGE,
    add_time_options,
    catch_up,
    positive,
)
from ledger.interfaces.schemas import COMMON_FIELDS, SCHEMAS, parse_command
from ledger.policies import access
from ledger.projections.projector import Projector
from ledger.projections.queries import trial_summary
from ledger.projections.tables import PROJECTIONS
from ledger.protocol import ProtocolError

Handler = Callable[[argparse.Namespace, TrialLedger, Settings], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "client_handler"):  # a client of another ledger's API: no database of its own
        return int(args.client_handler(args))
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    ledger: TrialLedger | None = None
    try:
        settings = Settings.from_env()
        ledger = build_ledger(settings, migrate=getattr(args, "migrates", False), create=not getattr(args, "reads_only", False))
        ledger.on_outage = lambda message: print(f"database: {message}", file=sys.stderr, flush=True)
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
    except StoreUnavailable as error:
        print(f"database error: {error}", file=sys.stderr)
        return EXIT_STORE
    except (PersistenceError, SQLAlchemyError) as error:
        print(f"database error: {outages.explain(error)}", file=sys.stderr)
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
        "--batch-size", type=positive, default=DEFAULT_BATCH_SIZE, metavar="N",
        help=f"lines committed per transaction (default {DEFAULT_BATCH_SIZE}; 1 = one transaction per line)",
    )
    imp.add_argument("--json", action="store_true", help="print the report as JSON")
    imp.set_defaults(handler=_import, action="import")

    patient = sub.add_parser("patient", help="a patient's state or history").add_subparsers(title="patient", metavar="ACTION")
    show = patient.add_parser("show", help="the patient's state (contract.md)")
    show.add_argument("patient_id")
    add_time_options(show)
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_patient_show, reads_only=True, action="patient show")
    history = patient.add_parser("history", help="every entry: who recorded what, when and why")
    history.add_argument("patient_id")
    history.add_argument("--json", action="store_true")
    history.set_defaults(handler=_patient_history, reads_only=True, action="patient history")

    escalation = sub.add_parser("escalation", help="the phase I 3+3 escalation").add_subparsers(title="escalation", metavar="ACTION")
    esc_show = escalation.add_parser("show", help="levels, DLTs, decisions and the next action per stratum")
    esc_show.add_argument("--stratum")
    add_time_options(esc_show)
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


    summary = sub.add_parser("summary", help="enrolled per phase and stratum, status and best-response counts")
    add_time_options(summary)
    summary.add_argument("--json", action="store_true")
    summary.set_defaults(handler=_summary, reads_only=True, action="summary")


    migrate = sub.add_parser("migrate", help="bring the database's tables to the newest revision")
    migrate.set_defaults(handler=_migrate, migrates=True, action="migrate")

    demo = sub.add_parser("demo", help="record a clearly labelled synthetic trial into an empty database")
    demo.set_defaults(handler=_demo, action="demo")
    for module in (audit_cli, scheduler_cli, integrity_cli, identity_cli, serve_cli, subscribe_cli, relay_cli, report_cli):
        module.add_parsers(sub)
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
        catch_up(ledger)
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
    catch_up(ledger)
    return code


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


def _summary(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    doc = trial_summary(ledger, args.valid_on, args.as_of)
    print(json.dumps(plain(doc), indent=2) if args.json else render.summary(doc))
    return EXIT_OK


def _shown_to(settings: Settings, doc: dict[str, Any]) -> dict[str, Any]:
    """The document as the acting role may see it: the sponsor's without free text (rule ACCESS-SPONSOR)."""
    return cast(dict[str, Any], access.sponsor_view(doc)) if settings.role is Role.SPONSOR else doc


def _migrate(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    # build_ledger(migrate=True) has upgraded the database; a read model a revision recreated is filled again
    catch_up(ledger)
    print(f"database is at revision {current_revision(ledger.engine)} (the newest)")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
