"""Answers read from the read models: the audit trail and the trial summary."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from ledger.application import TrialLedger
from ledger.projections.tables import read_model_tables


def audit_trail(ledger: TrialLedger, patient_id: str | None = None, as_of: datetime | None = None, limit: int | None = None) -> dict[str, Any]:
    """Every entry (a row per corrected field), oldest first, as recorded by ``as_of``."""
    table = read_model_tables()["rm_audit_trail"]
    query = select(table).order_by(table.c.position, table.c.seq)
    if patient_id is not None:
        query = query.where(table.c.patient_id == patient_id)
    if as_of is not None:
        query = query.where(table.c.recorded_at <= as_of)
    if limit is not None:
        query = query.limit(limit)
    with ledger.engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
    for row in rows:
        row["data"] = json.loads(row["data"])
    return {"entries": rows, "as_of": as_of}


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


def trial_summary(ledger: TrialLedger, valid_on: date | None = None) -> dict[str, Any]:
    """Enrolled per phase and stratum, status counts and best-response counts on ``valid_on``."""
    on = valid_on or ledger.clock.today()
    tables = read_model_tables()
    patients, responses = tables["rm_patients"], tables["rm_responses"]
    rank = ledger.protocol.response_rank
    with ledger.engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(select(patients).where(patients.c.enrolled_on <= on))]
        assessed = connection.execute(
            select(responses.c.patient_id, responses.c.response).where(responses.c.assessed_on <= on)
        ).tuples().all()
    best: dict[str, str] = {}
    for patient_id, response in assessed:
        if response in rank and (patient_id not in best or rank.index(response) < rank.index(best[patient_id])):
            best[patient_id] = response
    enrolled = Counter((r["phase"], r["stratum"]) for r in rows)
    return {
        "valid_on": on,
        "patients": len(rows),
        "enrolled": [{"phase": phase, "stratum": stratum, "patients": n} for (phase, stratum), n in sorted(enrolled.items())],
        "status": dict(sorted(Counter(status_on(r, on) for r in rows).items())),
        "best_response": {response: n for response in rank if (n := sum(1 for r in rows if best.get(r["patient_id"]) == response))},
    }
