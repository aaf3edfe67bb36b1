"""Questions users ask of the ledger, answered by replaying the folds of ``ledger.state``.

Each answer is a plain document with the keys of contract.md (dates still as ``date``);
the interfaces turn it into JSON or text. ``as_of`` is transaction time (entries recorded at
or before it), ``valid_on`` clinical time (facts dated on or before it; default today).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from ledger.application import TrialLedger
from ledger.domain.escalation import EscalationOpened
from ledger.errors import CommandRefused
from ledger.persistence import EntryRow
from ledger.policies import signatures
from ledger.policies.escalation import recommend
from ledger.policies.follow_up import follow_up_status, status_on
from ledger.state import PatientState, best_response, patient_state


def patient_document(ledger: TrialLedger, patient_id: str, as_of: datetime | None = None, valid_on: date | None = None) -> dict[str, Any]:
    valid_on = valid_on or ledger.clock.today()
    patient = ledger.load_patient(patient_id, as_of)
    state = patient_state(patient_id, patient.entries, ledger.protocol, as_of=as_of, valid_on=valid_on)
    if not state.enrolled:
        when = f" as of {as_of.isoformat()}" if as_of else ""
        raise CommandRefused("PATIENT-UNKNOWN", f"patient {patient_id} was not enrolled on {valid_on.isoformat()}{when}")
    protocol = ledger.protocol
    last = state.last_cycle
    return {
        "patient_id": patient_id,
        "phase": state.phase,
        "stratum": state.stratum,
        "diagnosis": state.diagnosis,
        "status": patient_status(state, valid_on, ledger),
        "dose_level_mg": state.dose_level_mg,
        "current_dose_mg": state.prescribed_dose_on(valid_on),
        "cycle": last.number if last else 0,
        "bosutinib_doses": len(state.doses),
        "ino_infusions": len(state.infusions),
        "ino_total_mg_m2": round(sum(i.dose_mg_m2 for i in state.infusions), 3),
        "ino_schedule": ino_schedule(state, valid_on, ledger),
        "best_response": best_response(state, protocol.response_rank),
        "first_response_on": state.first_response_on,
        "mrd_negative": any(a.mrd == "NEGATIVE" for a in state.assessments),
        "toxicities": [
            {"entry_id": t.entry_id, "term": t.term, "grade": t.grade, "dlt": t.dlt, "onset_on": t.onset_on, "resolved_on": t.resolved_on}
            for t in state.toxicities
        ],
        "dlt": state.dlt,
        "treatment_ended_on": state.treatment_ended_on,
        "end_reason": state.end_reason,
        "follow_up": follow_up_document(state, valid_on, ledger),
        "died_on": state.died_on,
        "deviations": len(state.deviations),
        "signatures": signatures.signatures(patient.entries),  # as recorded by as_of, whatever valid_on
        "entries": state.entry_count,
        "as_of": as_of,
        "valid_on": valid_on,
    }


def patient_status(state: PatientState, on: date, ledger: TrialLedger) -> str:
    return status_on(on, state.died_on, state.treatment_ended_on, state.end_reason, ledger.protocol, state.lost_on)


def ino_schedule(state: PatientState, on: date, ledger: TrialLedger) -> str:
    """The InO schedule of the next infusion: the running cycle's, or the next cycle's."""
    responded = state.first_response_on
    if responded is None:
        return "DAYS_1_8_15"
    cycle = state.cycle_on(on)
    if cycle is not None and not state.day1_only(cycle):
        last_day = ledger.protocol.ino_last_day + ledger.protocol.ino_window_days
        if (on - cycle.started_on).days + 1 <= last_day:
            return "DAYS_1_8_15"
    return "DAY_1_ONLY"


def follow_up_document(state: PatientState, on: date, ledger: TrialLedger) -> dict[str, Any]:
    ended = state.treatment_ended_on
    contacts = [c.contacted_on for c in state.contacts]
    if ended is None or state.end_reason == "WITHDRAWAL":
        return {"visits": len(contacts), "missed": 0, "next_due_on": None, "window_closes_on": None}
    stops = [d for d in (state.died_on, state.lost_on) if d is not None and d <= on]
    status = follow_up_status(ended, contacts, min(stops) if stops else on, ledger.protocol)  # nothing is due after death or loss
    due = None if stops else status.next_due
    return {
        "visits": len(contacts),
        "missed": len(status.missed),
        "next_due_on": due.due_on if due else None,
        "window_closes_on": due.closes_on if due else None,
    }


def patient_history(ledger: TrialLedger, patient_id: str) -> dict[str, Any]:
    """Every entry of the patient, oldest first, with its position in the ledger."""
    patient = ledger.load_patient(patient_id)
    with ledger.transaction(commit=False) as session:
        positions = dict(
            session.execute(select(EntryRow.entry_id, EntryRow.position).where(EntryRow.aggregate_id == str(patient.id))).tuples().all()
        )
    return {
        "patient_id": patient_id,
        "entries": [
            {
                "entry_id": e.entry_id,
                "position": positions.get(e.entry_id),
                "type": e.kind,
                "occurred_on": e.occurred_on,
                "recorded_at": e.recorded_at,
                "recorded_by": e.recorded_by,
                "role": e.role,
                "reason": e.reason,
                "source": e.source,
                "data": e.data,
            }
            for e in patient.entries
        ],
    }


def strata(ledger: TrialLedger, as_of: datetime | None = None) -> list[str]:
    """The strata whose escalation had opened by ``as_of`` (default: now)."""
    query = select(EntryRow.stratum).where(EntryRow.kind == EscalationOpened.__name__).order_by(EntryRow.position)
    if as_of is not None:
        query = query.where(EntryRow.recorded_at <= as_of)
    with ledger.transaction(commit=False) as session:
        return [s for s in session.execute(query).scalars() if s is not None]


def escalation_document(
    ledger: TrialLedger, stratum: str | None = None, as_of: datetime | None = None, valid_on: date | None = None
) -> dict[str, Any]:
    valid_on = valid_on or ledger.clock.today()
    known = strata(ledger, as_of)
    if stratum is not None and stratum not in known:
        raise CommandRefused("STRATUM-UNKNOWN", f"stratum {stratum} has no phase I escalation{' as of ' + as_of.isoformat() if as_of else ''}")
    names = [stratum] if stratum else known
    documents = []
    for name in names:
        s = ledger.stratum_state_on(name, ledger.load_escalation(name, as_of), valid_on=valid_on, as_of=as_of)
        rec = recommend(s, ledger.protocol)
        documents.append(
            {
                "stratum": name,
                "status": s.status,
                "current_dose_mg": s.current_dose_mg,
                "next_action": rec.action if rec else None,
                "next_action_why": rec.why if rec else None,
                "mtd_mg": s.mtd_mg,
                "levels": [
                    {"dose_mg": lv.dose_mg, "patients": lv.patients, "evaluable": lv.evaluable, "dlts": lv.dlts, "decision": lv.decision}
                    for lv in s.levels
                ],
            }
        )
    return {"strata": documents, "as_of": as_of, "valid_on": valid_on}


def schedule_document(ledger: TrialLedger, patient_id: str | None = None) -> dict[str, Any]:
    """What time makes due, overdue first: each pending action, its window and its command id."""
    from ledger.scheduling import Scheduling

    scheduling = Scheduling(ledger)
    if patient_id is not None:
        ledger.load_patient(patient_id)  # PATIENT-UNKNOWN for a patient never enrolled
    today = ledger.clock.today()
    actions = scheduling.pending(None if patient_id is None else [patient_id])
    return {
        "today": today,
        "items": [
            {
                "patient_id": a.patient_id,
                "action": a.kind,
                "visit": a.visit,
                "visit_due_on": a.visit_due_on,
                "window_closes_on": a.closed_on,
                "due_on": a.due_on,
                "overdue": a.due_on <= today,
                "command_id": a.command_id,
            }
            for a in sorted(actions, key=lambda a: (a.due_on > today, a.due_on, a.patient_id, a.kind, a.visit or 0))
        ],
    }
