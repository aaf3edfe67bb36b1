"""``run_demo``: record the synthetic trial's steps in clinical-date order, narrating them.

Every step goes through ``TrialLedger.handle`` like any other writer's command, labelled with the
source ``SYNTHETIC DEMO``; afterwards the escalation, the responder and its timeline are printed.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date, timedelta
from typing import TextIO

from ledger.application import TrialLedger
from ledger.commands import Command, EnrollPatient
from ledger.demo.cohorts import trial
from ledger.demo.course import RESPONDER, Step
from ledger.errors import CommandRefused
from ledger.interfaces import render
from ledger.queries import escalation_document, patient_document, patient_history
from ledger.scheduling import Scheduling

SOURCE = "SYNTHETIC DEMO"

BANNER = """\
==============================================================================
  SYNTHETIC DEMO DATA -- NOT REAL PATIENTS
  A made-up course of trial NCT02311998 (bosutinib + inotuzumab ozogamicin),
  recorded through the ledger's ordinary write path. Every entry carries
  source "SYNTHETIC DEMO"; patient ids D101-D112 (phase I), D201-D204 (phase II).
=============================================================================="""


def run_demo(ledger: TrialLedger, out: TextIO) -> int:
    """Record the synthetic trial into ``ledger``, which must be empty; print the story.

    Returns 0, or 1 (recording nothing) when the database already holds entries.
    """
    if ledger.store.recorder.max_notification_id() is not None:
        print("The demo needs an empty database: this one already holds ledger entries, so nothing was recorded.", file=out)
        print("Point LEDGER_DATABASE_URL at a new database (e.g. sqlite:////tmp/demo.sqlite) and run it again.", file=out)
        return 1
    protocol = ledger.protocol
    print(BANNER, file=out)
    print(file=out)
    started = time.perf_counter()
    timeline = trial(protocol)
    recorded = _record(ledger, timeline.ordered(), out)
    caught_up = Scheduling(ledger, source=SOURCE).run_due()
    recorded += sum(len(ids) for ids in caught_up.recorded.values())
    elapsed = time.perf_counter() - started
    print(file=out)
    print(f"The scheduler, catching up to today, recorded {len(caught_up.recorded)} entries for windows that closed "
          "(follow-up visits missed, follow-up years completed, DLT evaluations complete).", file=out)

    print(file=out)
    print("Phase I dose escalation (3+3), as recorded:", file=out)
    print(render.escalation(escalation_document(ledger)), file=out)
    print(file=out)
    ended = patient_document(ledger, RESPONDER).get("treatment_ended_on")
    in_follow_up = ended + timedelta(days=200) if isinstance(ended, date) else None
    print(f"Responder {RESPONDER} on {in_follow_up}, during the follow-up year:", file=out)
    print(render.patient(patient_document(ledger, RESPONDER, valid_on=in_follow_up)), file=out)
    print(file=out)
    print(f"Timeline of responder {RESPONDER}:", file=out)
    print(render.history(patient_history(ledger, RESPONDER)), file=out)
    print(file=out)
    patients = sum(isinstance(step.build, EnrollPatient) for _, _, step in timeline.steps)
    print(
        f"SYNTHETIC DEMO: recorded {recorded} entries for {patients} synthetic patients "
        f"in {elapsed:.1f} s; MTD {escalation_document(ledger)['strata'][0]['mtd_mg']} mg.",
        file=out,
    )
    return 0


def _record(ledger: TrialLedger, steps: list[Step], out: TextIO) -> int:
    """Handle every step in order; returns the number of entries recorded."""
    ids: dict[str, str] = {}
    count = 0
    for step in steps:
        built = step.build if isinstance(step.build, Command) else step.build(ids)
        command = replace(built, source=SOURCE)  # every entry is labelled synthetic
        try:
            outcome = ledger.handle(command, step.actor)
        except CommandRefused as error:
            if step.refusal == error.rule_id:
                print(f"{step.on}  {step.say}", file=out)
                print(f"            refused, as the protocol requires -- {error}", file=out)
                continue
            error.add_note(f"demo step on {step.on.isoformat()}: {command!r}")
            raise
        if step.refusal is not None:
            raise RuntimeError(f"demo: {command.name} on {step.on} was expected to be refused by {step.refusal}, but was recorded")
        count += len(outcome.entry_ids)
        if step.label is not None:
            ids[step.label] = outcome.entry_ids[0]
        if step.say:
            print(f"{step.on}  {step.say}", file=out)
        for violation in outcome.deviations:
            print(f"            acknowledged protocol deviation {violation}", file=out)
    return count
