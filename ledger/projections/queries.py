"""Answers read from the read models: the audit trail and the trial summary."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from ledger.application import TrialLedger
from ledger.persistence import EntryRow
from ledger.projections.rows import patient_rows
from ledger.projections.tables import read_model_tables


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


def status_on(row: dict[str, Any], on: date) -> str:
    """A patient's status on ``on`` from their read-model row (contract.md's statuses)."""
    if row["died_on"] is not None and row["died_on"] <= on:
        return "DEAD"
    ended = row["treatment_ended_on"]
    if ended is None or ended > on:
        return "ON_TREATMENT"
    if row["end_reason"] == "WITHDRAWAL":
        return "OFF_STUDY"
    return "COMPLETED" if on > row["follow_up_ends_on"] else "FOLLOW_UP"


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
        "status": dict(sorted(Counter(status_on(r, on) for r in rows).items())),
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
