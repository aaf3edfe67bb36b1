"""Deciding electronic signatures (rule SIGNATURE) and what makes them stale.

``sign`` records an investigator's ``RecordSigned`` over the SHA-256 of exactly the facts in
force that it covers (``ledger.policies.signatures``); ``invalidate`` records
``SignatureInvalidated`` in the same transaction as any later entry that changes those facts:
a new fact in a signed cycle or casebook, a correction or void, including one of a signed
escalation decision's basis facts.
"""

from __future__ import annotations

from typing import Any, cast

from eventsourcing.domain import Aggregate

from ledger.commands import Command, SignRecord
from ledger.domain import escalation as esc_events
from ledger.domain.escalation import Escalation
from ledger.domain.events import LedgerEvent, RecordSigned, SignatureInvalidated
from ledger.domain.patient import Patient
from ledger.domain.values import Actor, Entry, Phase, SignatureScope
from ledger.entries import EntryWriter
from ledger.errors import CommandRefused, InvalidCommand
from ledger.identity import credentials
from ledger.policies import signatures
from ledger.state import effective_entries


class SignatureDecider(EntryWriter):
    def sign(self, cmd: SignRecord, actor: Actor) -> Aggregate:
        """An investigator's signature, after their credential was entered again (rule SIGNATURE)."""
        account = self.records.load_user(actor.user) if self.records.has_users() else None
        if account is None or not account.active:
            raise CommandRefused(signatures.RULE, f"{actor.user} is not an active registered user; an electronic signature needs one")
        if not credentials.matches(self.records.credential_hash(actor.user), cmd.credential):
            raise CommandRefused(signatures.RULE, f"the credential entered does not match {actor.user}'s; nothing was signed")
        aggregate, facts = self._signed_facts(cmd)
        data = {
            "signer": actor.user,
            "printed_name": account.printed_name,
            "meaning": cmd.meaning,
            "scope": cmd.scope,
            "cycle": cmd.cycle if cmd.scope is SignatureScope.CYCLE else None,
            "decision_entry_id": cmd.decision_entry_id if cmd.scope is SignatureScope.ESCALATION_DECISION else None,
            "state_hash": signatures.state_hash(facts),
        }
        self.append(aggregate, RecordSigned, cmd, actor, self.clock.today(), data)
        return aggregate

    def _signed_facts(self, cmd: SignRecord) -> tuple[Patient | Escalation, list[Entry]]:
        if cmd.scope is SignatureScope.ESCALATION_DECISION:
            if not cmd.stratum or not cmd.decision_entry_id:
                raise InvalidCommand({"decision_entry_id" if cmd.stratum else "stratum": "required to sign an escalation decision"})
            esc = self.records.load_escalation(cmd.stratum)
            decision = esc.entry(cmd.decision_entry_id) if esc else None
            if esc is None or decision is None or decision.kind != esc_events.EscalationDecided.__name__:
                raise CommandRefused(signatures.RULE, f"stratum {cmd.stratum} has no escalation decision {cmd.decision_entry_id}")
            return esc, [decision, *self._basis_facts(esc, decision)]
        if not cmd.patient_id:
            raise InvalidCommand({"patient_id": f"required to sign a {cmd.scope.value.lower()}"})
        if cmd.scope is SignatureScope.CYCLE and cmd.cycle is None:
            raise InvalidCommand({"cycle": "required to sign a cycle"})
        patient = self.records.load_patient(cmd.patient_id)
        return patient, signatures.patient_facts(cmd.patient_id, patient.entries, cmd.scope, cmd.cycle, self.protocol)

    def _basis_facts(self, esc: Escalation, decision: Entry) -> list[Entry]:
        """The facts in force that a decision's basis names, from the stratum's phase I patients."""
        basis = set(decision.data["basis"])
        patients = {e.data["patient_id"] for e in esc.entries if e.kind == esc_events.PatientAssignedToDoseLevel.__name__}
        return [e for pid in sorted(patients) for e in effective_entries(self.records.load_patient(pid).entries) if e.entry_id in basis]

    def invalidate(self, aggregates: list[Aggregate], cmd: Command, actor: Actor) -> list[Aggregate]:
        """Record SignatureInvalidated for each signature whose data the new entries changed."""
        result = list(aggregates)
        for aggregate in aggregates:
            if not isinstance(aggregate, Patient) or not aggregate.pending_events:
                continue
            change = cast(LedgerEvent, aggregate.pending_events[0]).entry_id
            for signature in signatures.valid_signatures(aggregate.entries):
                if signature.data["state_hash"] != self._patient_hash(aggregate, signature):
                    self.append(aggregate, SignatureInvalidated, cmd, actor, self.clock.today(), _stale(signature, change))
            esc = self._stale_decisions(aggregate, cmd, actor, change)
            if esc is not None:
                result.append(esc)
        return result

    def _stale_decisions(self, patient: Patient, cmd: Command, actor: Actor, change: str) -> Escalation | None:
        """A correction or void of a fact a signed decision rested on makes that signature stale."""
        amended = {e.data["amends_entry_id"] for e in _pending_entries(patient) if "amends_entry_id" in e.data}
        esc = self.records.load_escalation(patient.stratum) if amended and patient.entries[0].data["phase"] is Phase.I else None
        if esc is None:
            return None
        stale = [
            s for s in signatures.valid_signatures(esc.entries)
            if (decision := esc.entry(s.data["decision_entry_id"] or "")) is not None and amended & set(decision.data["basis"])
        ]
        for signature in stale:
            self.append(esc, SignatureInvalidated, cmd, actor, self.clock.today(), _stale(signature, change))
        return esc if stale else None

    def _patient_hash(self, patient: Patient, signature: Entry) -> str | None:
        try:
            facts = signatures.patient_facts(patient.patient_id, patient.entries, signature.data["scope"], signature.data["cycle"], self.protocol)
        except CommandRefused:  # the signed cycle is gone (voided)
            return None
        return signatures.state_hash(facts)


def _stale(signature: Entry, change: str) -> dict[str, Any]:
    return {"signature_entry_id": signature.entry_id, "changed_by_entry_id": change}


def _pending_entries(aggregate: Aggregate) -> list[Entry]:
    return [cast(LedgerEvent, e).as_entry() for e in aggregate.pending_events]
