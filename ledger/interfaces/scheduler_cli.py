"""``ledger scheduler run`` and ``ledger schedule show``: what time makes due."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from ledger.application import TrialLedger
from ledger.bootstrap import Settings
from ledger.interfaces import documents, render
from ledger.interfaces.importer import Progress
from ledger.interfaces.options import EXIT_OK, catch_up


def add_parsers(sub: Any) -> None:
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


def _scheduler_run(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    from ledger.scheduling import RunReport, Scheduling
    from ledger.scheduling.driver import SchedulerDriver

    if args.once:
        progress = Progress(0, label="recording due entries", unit="entries")
        try:
            report = Scheduling(ledger).run_due(on_progress=progress.position)
        finally:
            progress.close()
        catch_up(ledger)
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
            catch_up(ledger)

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
