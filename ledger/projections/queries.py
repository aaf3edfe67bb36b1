"""Answers read from the read models: the audit trail and the trial summary."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from ledger.application import TrialLedger
from ledger.persistence import EntryRow
from ledger.policies.follow_up import status_on
from ledger.projections.rows import patient_rows
from ledger.projections.tables import read_model_tables
from ledger.protocol import Protocol


def audit_trail(
    ledger: TrialLedger, patient_id: str | None = None, as_of: datetime | None = None, valid_on: date | None = None, limit: int | None = None
) -> dict[str, Any]:
    """Every entry (a row per corrected field), oldest first: recorded by ``as_of``, dated by ``valid_on``."""
    table = read_model_tables()["rm_audit_trail"]
    query = select(table).order_by(table.c.position, table.c.seq)
    if patient_id is not None:
        query = query.where(table.c.patient_id == patient_id)
    if as_of is not None:
        query = query.where(table.c.recorded_at <= as_of)
    if valid_on is not None:
        query = query.where(table.c.occurred_on <= valid_on)
    if limit is not None:
        query = query.limit(limit)
    with ledger.engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
    for row in rows:
        row["data"] = json.loads(row["data"])
    return {"entries": rows, "as_of": as_of, "valid_on": valid_on}


def row_status(row: dict[str, Any], on: date, protocol: Protocol) -> str:
    """A patient's status on ``on`` from their read-model row."""
    return status_on(on, row["died_on"], row["treatment_ended_on"], row["end_reason"], protocol, row["lost_on"])


def trial_summary(ledger: TrialLedger, valid_on: date | None = None, as_of: datetime | None = None) -> dict[str, Any]:
    """Enrolled per phase and stratum, status counts and best-response counts on ``valid_on``.

    Read from the read models; with ``as_of``, from the courses of the patients enrolled by
    then, each read only up to its last entry recorded by then (found in the entry index).
    """
    on = valid_on or ledger.clock.today()
    if as_of is None:
        patients, responses = _read_model_rows(ledger)
    else:
        patients, responses = _rows_as_of(ledger, as_of)
    rows = [r for r in patients if r["enrolled_on"] <= on]
    rank = ledger.protocol.response_rank
    best: dict[str, str] = {}
    for r in responses:
        response, patient_id = r["response"], r["patient_id"]
        if r["assessed_on"] <= on and response in rank and (patient_id not in best or rank.index(response) < rank.index(best[patient_id])):
            best[patient_id] = response
    enrolled = Counter((r["phase"], r["stratum"]) for r in rows)
    return {
        "as_of": as_of,
        "valid_on": on,
        "patients": len(rows),
        "enrolled": [{"phase": phase, "stratum": stratum, "patients": n} for (phase, stratum), n in sorted(enrolled.items())],
        "status": dict(sorted(Counter(row_status(r, on, ledger.protocol) for r in rows).items())),
        "best_response": {response: n for response in rank if (n := sum(1 for r in rows if best.get(r["patient_id"]) == response))},
    }


Rows = list[dict[str, Any]]


def _read_model_rows(ledger: TrialLedger) -> tuple[Rows, Rows]:
    tables = read_model_tables()
    with ledger.engine.connect() as connection:
        patients = [dict(r._mapping) for r in connection.execute(select(tables["rm_patients"]))]
        responses = [dict(r._mapping) for r in connection.execute(select(tables["rm_responses"]))]
    return patients, responses


def _rows_as_of(ledger: TrialLedger, as_of: datetime) -> tuple[Rows, Rows]:
    with ledger.transaction(commit=False) as session:
        enrolled = session.execute(
            select(EntryRow.patient_id).where(EntryRow.kind == "PatientEnrolled", EntryRow.recorded_at <= as_of).order_by(EntryRow.position)
        ).scalars().all()
    patients: Rows = []
    responses: Rows = []
    for patient_id in enrolled:
        if patient_id is None:
            continue
        rows = patient_rows(patient_id, ledger.load_patient(patient_id, as_of).entries, ledger.protocol)
        patients += rows["rm_patients"]
        responses += rows["rm_responses"]
    return patients, responses


def escalation_levels(ledger: TrialLedger, stratum: str, valid_on: date | None = None) -> list[dict[str, Any]]:
    """Patients, evaluable, DLTs and last decision per dose level on ``valid_on``, from the read models.

    The same counts as ``ledger escalation show`` (rule DLT-WINDOW's evaluability), by a
    scan of the stratum's phase I rows rather than a replay of its patients.
    """
    on = valid_on or ledger.clock.today()
    tables = read_model_tables()
    phase1, decisions = tables["rm_phase1_patients"], tables["rm_escalation_decisions"]
    with ledger.engine.connect() as connection:
        patients = [dict(r._mapping) for r in connection.execute(select(phase1).where(phase1.c.stratum == stratum, phase1.c.enrolled_on <= on))]
        decided = connection.execute(
            select(decisions.c.dose_mg, decisions.c.decision)
            .where(decisions.c.stratum == stratum, decisions.c.decided_on <= on)
            .order_by(decisions.c.decided_on, decisions.c.recorded_at)
        ).tuples().all()
    last_decision = dict(decided)
    levels = []
    for dose in ledger.protocol.dose_levels_mg:
        rows = [p for p in patients if p["dose_mg"] == dose]
        dlts = [p for p in rows if p["first_dlt_on"] is not None and p["first_dlt_on"] <= on]
        evaluable = len(dlts) + sum(1 for p in rows if p not in dlts and _window_passed(p, on))
        levels.append({"dose_mg": dose, "patients": len(rows), "evaluable": evaluable, "dlts": len(dlts), "decision": last_decision.get(dose)})
    return levels


def _window_passed(p: dict[str, Any], on: date) -> bool:
    """Evaluable without a DLT: the window has ended, and the patient did not leave before its last day."""
    last = p["dlt_window_ends_on"]
    if last is None or on <= last:
        return False
    left = p["left_on"]
    return left is None or left > on or left >= last
