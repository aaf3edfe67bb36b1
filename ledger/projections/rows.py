"""What each event or patient course becomes in the read models: plain row dictionaries.

Rows are pure functions of the entries (no clock, no database), so an incremental catch-up
and a rebuild from the first event write the same rows.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from ledger.domain.values import Entry
from ledger.encoding import dumps, plain
from ledger.policies.dlt import dlt_window
from ledger.policies.follow_up import follow_up_end
from ledger.protocol import Protocol
from ledger.state import PatientState, best_response, patient_state

Rows = dict[str, list[dict[str, Any]]]


#: the columns of ``rm_audit_trail``, in the order of the values of ``audit_rows``
AUDIT_COLUMNS = (
    "position", "seq", "entry_id", "patient_id", "stratum", "event_type", "occurred_on", "recorded_at", "recorded_by", "role", "reason",
    "source", "protocol_version", "command_id", "amends_entry_id", "field", "old_value", "new_value", "data",
)


def audit_rows(position: int, entry: Entry, patient_id: str | None, stratum: str | None) -> list[tuple[Any, ...]]:
    """One row per event; a correction gives one row per corrected field (old and new value).

    Each row holds the values of ``AUDIT_COLUMNS`` in that order.
    """
    data = entry.data
    envelope = (
        entry.entry_id, patient_id, stratum, entry.kind, entry.occurred_on, entry.recorded_at, entry.recorded_by, entry.role, entry.reason,
        entry.source, entry.protocol_version, entry.command_id, data.get("amends_entry_id"),
    )
    encoded = dumps(data)
    if entry.kind != "EntryCorrected":
        return [(position, 0, *envelope, None, None, None, encoded)]
    old, new = data["old_values"], data["changes"]
    return [(position, seq, *envelope, name, _text(old.get(name)), _text(new[name]), encoded) for seq, name in enumerate(sorted(new))]


def _text(value: Any) -> str | None:
    value = plain(value)
    return None if value is None else json.dumps(value) if not isinstance(value, str) else value


def patient_rows(patient_id: str, entries: list[Entry], protocol: Protocol) -> Rows:
    """The rows of every patient-derived table for one patient's whole recorded course."""
    s = patient_state(patient_id, entries, protocol)
    if not s.enrolled:  # cannot happen for a stored patient: the enrollment is never voided
        return {}
    last = s.last_cycle
    rows: Rows = {
        "rm_patients": [
            {
                "patient_id": patient_id,
                "phase": s.phase,
                "stratum": s.stratum,
                "diagnosis": s.diagnosis,
                "enrolled_on": s.enrolled_on,
                "status": recorded_status(s),
                "dose_level_mg": s.dose_level_mg,
                "current_dose_mg": s.prescribed_dose_on(date.max),
                "cycle": last.number if last else 0,
                "bosutinib_doses": len(s.doses),
                "ino_infusions": len(s.infusions),
                "ino_total_mg_m2": round(sum(i.dose_mg_m2 for i in s.infusions), 3),
                "best_response": best_response(s, protocol.response_rank),
                "first_response_on": s.first_response_on,
                "mrd_negative": any(a.mrd == "NEGATIVE" for a in s.assessments),
                "dlt": s.dlt,
                "treatment_ended_on": s.treatment_ended_on,
                "end_reason": s.end_reason,
                "follow_up_visits": len(s.contacts),
                "follow_up_ends_on": follow_up_end(s.treatment_ended_on, protocol) if s.treatment_ended_on else None,
                "lost_on": s.lost_on,
                "died_on": s.died_on,
                "deviations": len(s.deviations),
                "entries": s.entry_count,
            }
        ],
        "rm_toxicities": [
            {
                "entry_id": t.entry_id, "patient_id": patient_id, "term": t.term, "grade": t.grade, "attribution": t.attribution,
                "onset_on": t.onset_on, "resolved_on": t.resolved_on, "serious": t.serious, "hematologic": t.hematologic,
                "ctcae_version": t.ctcae_version, "dose_limiting": t.dose_limiting, "dlt": t.dlt,
            }
            for t in s.toxicities
        ],
        "rm_responses": [
            {
                "entry_id": a.entry_id, "patient_id": patient_id, "assessed_on": a.assessed_on, "response": a.response,
                "cytogenetic": a.cytogenetic, "mrd": a.mrd, "mrd_level": a.mrd_level, "qualifying": a.qualifying,
            }
            for a in s.assessments
        ],
        "rm_dose_exposure": _exposure(patient_id, s),
        "rm_phase1_patients": _phase1(patient_id, s, protocol),
    }
    return rows


def recorded_status(s: PatientState) -> str:
    """The status from the facts alone; ``FOLLOW_UP`` turns ``COMPLETED`` after ``follow_up_ends_on``."""
    if s.died_on is not None:
        return "DEAD"
    if s.treatment_ended_on is None:
        return "ON_TREATMENT"
    return "OFF_STUDY" if s.end_reason == "WITHDRAWAL" or s.lost_on is not None else "FOLLOW_UP"


def _exposure(patient_id: str, s: PatientState) -> list[dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = {}
    for cycle in sorted(s.cycles, key=lambda c: (c.started_on, c.number)):
        end = s.cycle_end(cycle)
        doses = [d for d in s.doses if cycle.started_on <= d[0] and (end is None or d[0] < end)]
        infusions = s.infusions_in(cycle)
        rows.setdefault(  # a cycle number started twice (a recorded deviation) keeps its first start
            cycle.number,
            {
                "patient_id": patient_id,
                "cycle": cycle.number,
                "started_on": cycle.started_on,
                "bosutinib_doses": len(doses),
                "bosutinib_total_mg": sum(d[1] for d in doses),
                "ino_infusions": len(infusions),
                "ino_total_mg_m2": round(sum(i.dose_mg_m2 for i in infusions), 3),
                "ino_schedule": "DAY_1_ONLY" if s.day1_only(cycle) else "DAYS_1_8_15",
            },
        )
    return list(rows.values())


def _phase1(patient_id: str, s: PatientState, protocol: Protocol) -> list[dict[str, Any]]:
    if s.phase != "I" or s.dose_level_mg is None or s.stratum is None:
        return []
    start = s.cycle1_started_on
    left = min((d for d in (s.treatment_ended_on, s.died_on) if d is not None), default=None)
    return [
        {
            "patient_id": patient_id,
            "stratum": s.stratum,
            "dose_mg": s.dose_level_mg,
            "cycle1_started_on": start,
            "dlt_window_ends_on": dlt_window(start, protocol)[1] if start else None,
            "enrolled_on": s.enrolled_on,
            "first_dlt_on": min((t.onset_on for t in s.toxicities if t.dlt), default=None),
            "left_on": left,
        }
    ]


def decision_row(entry: Entry, stratum: str) -> dict[str, Any]:
    d = entry.data
    return {
        "entry_id": entry.entry_id,
        "stratum": stratum,
        "decided_on": d["decided_on"],
        "dose_mg": d["dose_mg"],
        "decision": plain(d["decision"]),
        "mtd_mg": d["mtd_mg"],
        "recommended": d["recommended"],
        "recorded_by": entry.recorded_by,
        "recorded_at": entry.recorded_at,
    }
