"""Electronic signatures (21 CFR 11.50/11.70): what a signature covers and whether it still does.

A signature binds the SHA-256 of the exact data it covers (``state_hash``): the facts in
force — each as last corrected, voided ones gone — of

- ``CYCLE``: one of the patient's cycles, from its first day to the day before the next
  cycle starts (or, for the last cycle, to the end of its planned length);
- ``CASEBOOK``: the patient's whole course;
- ``ESCALATION_DECISION``: the 3+3 decision and the facts its basis names.

Any later entry that changes that hash (a new fact in the cycle, a correction, a void)
makes the signature stale: the ledger records ``SignatureInvalidated`` with the change in the
same transaction, and the signature shows as ``RE-REVIEW REQUIRED`` (rule SIGNATURE).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import date, timedelta

from ledger.domain.values import Entry, SignatureScope
from ledger.encoding import plain
from ledger.errors import CommandRefused
from ledger.protocol import Protocol
from ledger.state import effective_entries, patient_state

RULE = "SIGNATURE"
SIGNED = "RecordSigned"
INVALIDATED = "SignatureInvalidated"
SIGNATURE_EVENTS = frozenset({SIGNED, INVALIDATED})
VALID, RE_REVIEW = "VALID", "RE-REVIEW REQUIRED"


def state_hash(entries: Iterable[Entry]) -> str:
    """SHA-256 of the canonical JSON of the facts: id, kind, clinical date and fields, ordered by id."""
    facts = sorted(
        ([e.entry_id, e.kind, e.occurred_on.isoformat(), plain(e.data)] for e in entries),
        key=lambda fact: fact[0],
    )
    return hashlib.sha256(json.dumps(facts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def patient_facts(patient_id: str, entries: list[Entry], scope: SignatureScope, cycle: int | None, protocol: Protocol) -> list[Entry]:
    """The facts in force that a signature of ``scope`` on this patient covers."""
    facts = [e for e in effective_entries(entries) if e.kind not in SIGNATURE_EVENTS]
    if scope is SignatureScope.CASEBOOK:
        return facts
    first, last = cycle_window(patient_id, entries, cycle, protocol)
    return [e for e in facts if first <= e.occurred_on <= last]


def cycle_window(patient_id: str, entries: list[Entry], cycle: int | None, protocol: Protocol) -> tuple[date, date]:
    """First and last day of a recorded cycle, or the refusal: that cycle was never started."""
    state = patient_state(patient_id, entries, protocol)
    started = state.cycle_numbered(cycle) if cycle is not None else None
    if started is None:
        raise CommandRefused(RULE, f"patient {patient_id} has no cycle {cycle} recorded; there is nothing to sign")
    following = state.cycle_end(started)
    last = following - timedelta(days=1) if following else started.started_on + timedelta(days=protocol.cycle_days - 1)
    return started.started_on, last


def signatures(entries: list[Entry]) -> list[dict[str, object]]:
    """Each signature among ``entries`` with its status: valid, or stale since a change."""
    invalidated = {e.data["signature_entry_id"]: e for e in entries if e.kind == INVALIDATED}
    result = []
    for e in entries:
        if e.kind != SIGNED:
            continue
        stale = invalidated.get(e.entry_id)
        result.append(
            {
                "entry_id": e.entry_id,
                "signer": e.data["signer"],
                "printed_name": e.data["printed_name"],
                "meaning": plain(e.data["meaning"]),
                "scope": plain(e.data["scope"]),
                "cycle": e.data["cycle"],
                "decision_entry_id": e.data["decision_entry_id"],
                "signed_at": e.recorded_at,
                "state_hash": e.data["state_hash"],
                "status": RE_REVIEW if stale else VALID,
                "invalidated_by": stale.data["changed_by_entry_id"] if stale else None,
            }
        )
    return result


def valid_signatures(entries: list[Entry]) -> list[Entry]:
    invalidated = {e.data["signature_entry_id"] for e in entries if e.kind == INVALIDATED}
    return [e for e in entries if e.kind == SIGNED and e.entry_id not in invalidated]
