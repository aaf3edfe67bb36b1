"""Decision provenance: each 3+3 decision, what it rested on, and whether that still holds.

For every ``EscalationDecided`` entry of a stratum:

- ``basis``: the entry ids of the facts the rule rested on when it was recorded (enrollments,
  cycle-1 starts and counting DLTs of the stratum's phase I patients);
- ``recommended_then``: what rule ESC-3PLUS3 gave at the time (recorded with the decision);
- ``recommended_now``: what the rule gives for the same level and date from every fact recorded
  since — late or back-dated toxicities, corrections, voids — with the decisions before it;
- ``basis_changed``: the DLT evaluations or the recommendation differ between then and now.
"""

from __future__ import annotations

from typing import Any

from ledger.application import TrialLedger
from ledger.domain.escalation import EscalationDecided
from ledger.domain.values import Entry
from ledger.errors import CommandRefused
from ledger.policies.escalation import recommend
from ledger.policies.signatures import signatures
from ledger.queries import strata
from ledger.state import DltEvaluation, patient_state, stratum_state


def decisions_document(ledger: TrialLedger, stratum: str | None = None) -> dict[str, Any]:
    documents = []
    known = strata(ledger)
    if stratum is not None and stratum not in known:
        raise CommandRefused("STRATUM-UNKNOWN", f"stratum {stratum} has no phase I escalation")
    for name in [stratum] if stratum else known:
        esc = ledger.load_escalation(name)
        if esc is None:
            continue
        for entry in esc.entries:
            if entry.kind == EscalationDecided.__name__:
                documents.append(_provenance(ledger, name, esc.entries, entry))
    return {"decisions": documents}


def _provenance(ledger: TrialLedger, stratum: str, entries: list[Entry], decision: Entry) -> dict[str, Any]:
    d = decision.data
    before = [e for e in entries if e.version < decision.version]
    then = _evaluate(ledger, stratum, before, decision, as_of=decision.recorded_at)
    now = _evaluate(ledger, stratum, before, decision, as_of=None)
    recommended_then = d["recommended"]
    recommended_now = now[0]
    return {
        "entry_id": decision.entry_id,
        "stratum": stratum,
        "dose_mg": d["dose_mg"],
        "decision": getattr(d["decision"], "value", d["decision"]),
        "mtd_mg": d["mtd_mg"],
        "decided_on": d["decided_on"],
        "recorded_at": decision.recorded_at,
        "recorded_by": decision.recorded_by,
        "role": decision.role,
        "reason": decision.reason,
        "basis": list(d["basis"]),
        "recommended_then": recommended_then,
        "recommended_now": recommended_now,
        "basis_now": now[2],
        "basis_changed": then[1] != now[1] or recommended_then != recommended_now,
        "signatures": [s for s in signatures(entries) if s["decision_entry_id"] == decision.entry_id],
    }


def _evaluate(
    ledger: TrialLedger, stratum: str, before: list[Entry], decision: Entry, as_of: Any
) -> tuple[str, list[DltEvaluation], list[str]]:
    """(recommendation, DLT evaluations, basis) for the decision's date as known at ``as_of``."""
    on = decision.data["decided_on"]
    patients = {
        e.data["patient_id"]: patient_state(e.data["patient_id"], ledger.load_patient(e.data["patient_id"]).entries, ledger.protocol, as_of=as_of, valid_on=on)
        for e in before
        if e.kind == "PatientAssignedToDoseLevel"
    }
    state = stratum_state(stratum, before, patients, ledger.protocol, as_of=as_of, valid_on=on, on=on)
    rec = recommend(state, ledger.protocol)
    return (rec.action if rec else state.status), state.evaluations, state.basis
