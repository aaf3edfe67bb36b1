"""Deciding a command: load what it touches, check the rules, record the fact.

``Decider.decide(command, actor)`` returns the aggregates with their new events and the
violations acknowledged as deviations, or raises the refusal; it writes nothing itself (the
application saves what it returns in one transaction).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import fields
from datetime import date
from typing import Any, cast

from eventsourcing.domain import Aggregate

from ledger.clock import Clock
from ledger.commands import (
    COMMAND_OF_EVENT,
    ELAPSED_COMMANDS,
    AssessResponse,
    ChangeUserRole,
    Command,
    CompleteDltEvaluation,
    CompleteFollowUp,
    CorrectEntry,
    DeactivateUser,
    DecideEscalation,
    EndTreatment,
    EnrollPatient,
    IssueCredential,
    ModifyBosutinibDose,
    PatientCommand,
    ReactivateUser,
    RecordBosutinibDose,
    RecordDeath,
    RecordFollowUp,
    RecordFollowUpMissed,
    RecordInoInfusion,
    RecordLostToFollowUp,
    RegisterUser,
    ReportToxicity,
    ResolveToxicity,
    SignRecord,
    StartCycle,
    UndatedCommand,
    UserCommand,
    VoidEntry,
)
from ledger.domain import access as access_events
from ledger.domain import escalation as esc_events
from ledger.domain import patient as patient_events
from ledger.domain.access import UserAccount
from ledger.domain.aggregate import EntryLog
from ledger.domain.escalation import Escalation
from ledger.domain.events import LedgerEvent, ProtocolDeviationRecorded, RecordSigned, SignatureInvalidated
from ledger.domain.patient import FACT_EVENTS, Patient
from ledger.domain.values import Actor, Entry, Phase, Role, SignatureScope, patient_aggregate_id
from ledger.errors import CommandRefused, InvalidCommand, RuleViolations, Violation
from ledger.identity import credentials
from ledger.policies import eligibility, escalation, schedule, signatures
from ledger.policies.course import check_not_future, check_patient_command, command_of, later_conflicts
from ledger.protocol import Protocol
from ledger.records import Records
from ledger.state import corrected, effective_entries, patient_state

#: parses the raw ``changes`` of a correction for the command that recorded the target entry
ChangesParser = Callable[[str, dict[str, Any]], dict[str, Any]]

COMMON_FIELDS = {"reason", "deviation", "source", "command_id", "patient_id"}
#: fields a correction may not change: they decide which records the entry belongs to
FIXED_FIELDS = {"patient_id", "phase", "stratum", "toxicity_id"}
#: who may record an acknowledged protocol deviation (rule DEVIATION) or a 3+3 decision
INVESTIGATOR_ROLES = {Role.INVESTIGATOR}

EVENT_OF_COMMAND: dict[type[Command], type[LedgerEvent]] = {
    StartCycle: patient_events.CycleStarted,
    RecordBosutinibDose: patient_events.BosutinibDoseRecorded,
    ModifyBosutinibDose: patient_events.BosutinibDoseModified,
    RecordInoInfusion: patient_events.InoInfusionRecorded,
    ReportToxicity: patient_events.ToxicityReported,
    ResolveToxicity: patient_events.ToxicityResolved,
    AssessResponse: patient_events.ResponseAssessed,
    EndTreatment: patient_events.TreatmentEnded,
    RecordFollowUp: patient_events.FollowUpRecorded,
    RecordLostToFollowUp: patient_events.LostToFollowUp,
    RecordDeath: patient_events.DeathRecorded,
    RecordFollowUpMissed: patient_events.FollowUpMissed,
    CompleteFollowUp: patient_events.FollowUpCompleted,
    CompleteDltEvaluation: patient_events.DltEvaluationCompleted,
}


class Decider:
    """The rules and the recording of each command, against what ``records`` loads."""

    def __init__(self, records: Records, protocol: Protocol, clock: Clock, parse_changes: ChangesParser) -> None:
        self.records = records
        self.protocol = protocol
        self.clock = clock
        self.parse_changes = parse_changes
        self.load_patient = records.load_patient
        self.load_escalation = records.load_escalation
        self.stratum_state_on = records.stratum_state_on
        self._exists = records.exists

    def decide(self, command: Command, actor: Actor) -> tuple[list[Aggregate], list[Violation]]:
        if isinstance(command, UserCommand):
            return self._user(command, actor), []
        if isinstance(command, SignRecord):
            return [self._sign(command, actor)], []
        aggregates, violations = self._decide_fact(command, actor)
        return self._invalidate_signatures(aggregates, command, actor), violations

    def _decide_fact(self, command: Command, actor: Actor) -> tuple[list[Aggregate], list[Violation]]:
        if isinstance(command, EnrollPatient):
            return self._enroll(command, actor)
        if isinstance(command, DecideEscalation):
            return self._decide_escalation(command, actor)
        if isinstance(command, CorrectEntry):
            return self._correct(command, actor)
        if isinstance(command, VoidEntry):
            return self._void(command, actor)
        assert isinstance(command, PatientCommand)
        if isinstance(command, ELAPSED_COMMANDS):
            return self._elapsed(command, actor)
        check_not_future(command.occurred_on, self.clock.today())
        patient = self.load_patient(command.patient_id)
        state = patient_state(command.patient_id, patient.entries, self.protocol)
        violations = check_patient_command(state, command, self.protocol)
        entry_id = self._append(patient, EVENT_OF_COMMAND[type(command)], command, actor, command.occurred_on, _fields_of(command))
        violations += later_conflicts(command.patient_id, patient.entries, command.occurred_on, {entry_id}, self.protocol)
        return [patient], self._settle(violations, command, actor, patient, entry_id, command.occurred_on)

    def _elapsed(self, cmd: PatientCommand, actor: Actor) -> tuple[list[Aggregate], list[Violation]]:
        """What a closed window makes due, recorded by the scheduler (the system user) only."""
        if actor.role is not Role.SYSTEM:
            raise CommandRefused(schedule.RULE_OF[schedule.kind_of(cmd)], f"{cmd.name} is recorded by the scheduler; {actor.user} acts as {actor.role.value}")
        patient = self.load_patient(cmd.patient_id)
        schedule.check_elapsed(patient_state(cmd.patient_id, patient.entries, self.protocol), cmd, self.protocol, self.clock.today())
        self._append(patient, EVENT_OF_COMMAND[type(cmd)], cmd, actor, cmd.occurred_on, _fields_of(cmd))
        return [patient], []

    def _enroll(self, cmd: EnrollPatient, actor: Actor) -> tuple[list[Aggregate], list[Violation]]:
        if self._exists(patient_aggregate_id(cmd.patient_id)):
            raise CommandRefused("PATIENT-ENROLLED", f"patient {cmd.patient_id} is already enrolled")
        check_not_future(cmd.enrolled_on, self.clock.today())
        violations = eligibility.check_eligibility(cmd, self.protocol)
        esc = self.load_escalation(cmd.stratum)
        stratum = self.stratum_state_on(cmd.stratum, esc, valid_on=cmd.enrolled_on)
        if cmd.phase is Phase.I:
            violations += escalation.check_cohort(stratum, cmd.patient_id, self.protocol)
            latest = max((e.occurred_on for e in esc.entries), default=cmd.enrolled_on) if esc else cmd.enrolled_on
            if not violations and latest > cmd.enrolled_on:
                # back-dated: the cohort must also have room with the patients recorded since
                violations += escalation.check_backdated_cohort(
                    self.stratum_state_on(cmd.stratum, esc, valid_on=latest), stratum.current_dose_mg, cmd.patient_id, self.protocol
                )
            dose_level = stratum.current_dose_mg
        else:
            violations += escalation.check_phase2_open(stratum if esc else None, cmd.stratum)
            dose_level = stratum.mtd_mg if stratum.mtd_mg is not None else stratum.current_dose_mg
        entry_id = _new_entry_id()
        patient = Patient.enroll(
            **self._envelope(cmd, actor, cmd.enrolled_on, entry_id),
            **_fields_of(cmd),
            patient_id=cmd.patient_id,
            dose_level_mg=dose_level,
        )
        aggregates: list[Aggregate] = [patient]
        if cmd.phase is Phase.I:
            if esc is None:
                esc = Escalation.open(
                    **self._envelope(cmd, actor, cmd.enrolled_on, _new_entry_id()),
                    stratum=cmd.stratum,
                    dose_levels_mg=list(self.protocol.dose_levels_mg),
                )
            self._append(
                esc,
                esc_events.PatientAssignedToDoseLevel,
                cmd,
                actor,
                cmd.enrolled_on,
                {"patient_id": cmd.patient_id, "dose_mg": dose_level, "assigned_on": cmd.enrolled_on},
            )
            aggregates.append(esc)
        return aggregates, self._settle(violations, cmd, actor, patient, entry_id, cmd.enrolled_on)

    def _decide_escalation(self, cmd: DecideEscalation, actor: Actor) -> tuple[list[Aggregate], list[Violation]]:
        if actor.role not in INVESTIGATOR_ROLES:
            raise CommandRefused("ESC-3PLUS3", f"an escalation decision is recorded by an investigator; {actor.user} acts as {actor.role.value}")
        esc = self.load_escalation(cmd.stratum)
        if esc is None:
            raise CommandRefused("ESC-3PLUS3", f"stratum {cmd.stratum} has no phase I patients; there is nothing to decide")
        check_not_future(cmd.decided_on, self.clock.today())
        state = self.stratum_state_on(cmd.stratum, esc, valid_on=cmd.decided_on)
        violations = escalation.check_decision(state, cmd, self.protocol)
        later = [e.occurred_on for e in esc.entries if e.kind == esc_events.EscalationDecided.__name__ and e.occurred_on > cmd.decided_on]
        if later:
            dated = max(later).isoformat()
            violations.append(Violation("ESC-3PLUS3", f"a decision for stratum {cmd.stratum} dated {dated} is recorded; decisions follow in date order"))
        rec = escalation.recommend(state, self.protocol)
        entry_id = self._append(
            esc,
            esc_events.EscalationDecided,
            cmd,
            actor,
            cmd.decided_on,
            {
                "decided_on": cmd.decided_on,
                "dose_mg": cmd.dose_mg,
                "decision": cmd.decision,
                "mtd_mg": cmd.mtd_mg,
                "basis": state.basis,
                "recommended": rec.action if rec else state.status,
            },
        )
        return [esc], self._settle(violations, cmd, actor, esc, entry_id, cmd.decided_on)

    def _correct(self, cmd: CorrectEntry, actor: Actor) -> tuple[list[Aggregate], list[Violation]]:
        patient = self.load_patient(cmd.patient_id)
        target = self._amendable(patient, cmd.entry_id, cmd.patient_id)
        command_cls = COMMAND_OF_EVENT[target.kind]
        fixed = sorted(set(cmd.changes) & FIXED_FIELDS)
        if fixed:
            raise InvalidCommand({f"changes.{fixed[0]}": "cannot be corrected; void the entry and record it again"})
        changes = self.parse_changes(command_cls.name, cmd.changes)
        old_values = {k: target.data.get(k) for k in changes}
        if all(old_values[k] == v for k, v in changes.items()):
            raise InvalidCommand({"changes": "corrects nothing: every value equals the recorded one"})
        others = [e for e in patient.entries if e.entry_id != target.entry_id]
        state = patient_state(cmd.patient_id, others, self.protocol)
        corrected_cmd = command_of(corrected(target, changes), cmd.patient_id)
        occurred_on = corrected_cmd.occurred_on
        check_not_future(occurred_on, self.clock.today())
        violations = check_patient_command(state, corrected_cmd, self.protocol)
        entry_id = self._append(
            patient,
            patient_events.EntryCorrected,
            cmd,
            actor,
            occurred_on,
            {"amends_entry_id": target.entry_id, "changes": changes, "old_values": old_values},
        )
        since = min(occurred_on, target.occurred_on)
        violations += later_conflicts(cmd.patient_id, patient.entries, since, {target.entry_id}, self.protocol)
        return [patient], self._settle(violations, cmd, actor, patient, entry_id, occurred_on)

    def _void(self, cmd: VoidEntry, actor: Actor) -> tuple[list[Aggregate], list[Violation]]:
        patient = self.load_patient(cmd.patient_id)
        target = self._amendable(patient, cmd.entry_id, cmd.patient_id)
        if target.kind == patient_events.PatientEnrolled.__name__:
            raise CommandRefused("ENTRY-TARGET", f"the enrollment of patient {cmd.patient_id} cannot be voided; correct its fields instead")
        entry_id = self._append(patient, patient_events.EntryVoided, cmd, actor, target.occurred_on, {"amends_entry_id": target.entry_id})
        violations = later_conflicts(cmd.patient_id, patient.entries, target.occurred_on, set(), self.protocol)
        return [patient], self._settle(violations, cmd, actor, patient, entry_id, target.occurred_on)

    # --- users ---------------------------------------------------------------------------

    def _user(self, cmd: UserCommand, actor: Actor) -> list[Aggregate]:
        """Register a user or change one; the first user of a ledger is its bootstrap admin."""
        account = self.records.load_user(cmd.user_id)
        if isinstance(cmd, RegisterUser):
            if account is not None:
                raise CommandRefused("USER-EXISTS", f"user {cmd.user_id} is already registered")
            if cmd.user_role is Role.SYSTEM:
                raise InvalidCommand({"user_role": "system is the scheduler's role, not a user's"})
            if cmd.user_role is not Role.ADMIN and not self.records.has_users():
                raise CommandRefused("USER-BOOTSTRAP", "the first user of a ledger is its admin; register an admin first")
            return [UserAccount.register(**self._envelope(cmd, actor, self.clock.today(), _new_entry_id()), **_fields_of(cmd))]
        if account is None:
            raise CommandRefused("USER-UNKNOWN", f"there is no user {cmd.user_id}")
        event_class, data = self._user_change(cmd, account)
        self._append(account, event_class, cmd, actor, self.clock.today(), {"user_id": cmd.user_id, **data})
        return [account]

    def _user_change(self, cmd: UserCommand, account: UserAccount) -> tuple[type[LedgerEvent], dict[str, Any]]:
        if isinstance(cmd, ChangeUserRole):
            if cmd.user_role is Role.SYSTEM:
                raise InvalidCommand({"user_role": "system is the scheduler's role, not a user's"})
            if cmd.user_role is account.role:
                raise InvalidCommand({"user_role": f"user {cmd.user_id} already acts as {cmd.user_role.value}"})
            self._keep_an_admin(account)
            return access_events.UserRoleChanged, {"user_role": cmd.user_role, "previous_role": account.role}
        if isinstance(cmd, DeactivateUser):
            if not account.active:
                raise CommandRefused("USER-INACTIVE", f"user {cmd.user_id} is already deactivated")
            self._keep_an_admin(account)
            return access_events.UserDeactivated, {}
        if isinstance(cmd, ReactivateUser):
            if account.active:
                raise CommandRefused("USER-ACTIVE", f"user {cmd.user_id} is active")
            return access_events.UserReactivated, {}
        assert isinstance(cmd, IssueCredential)
        return access_events.CredentialIssued, {}

    def _keep_an_admin(self, account: UserAccount) -> None:
        """USER-LAST-ADMIN: the last active admin may be neither demoted nor deactivated."""
        if account.role is not Role.ADMIN or not account.active:
            return
        others = [a for a in self.records.user_accounts() if a.user_id != account.user_id]
        if not any(a.active and a.role is Role.ADMIN for a in others):
            raise CommandRefused("USER-LAST-ADMIN", f"{account.user_id} is the last active admin; register another admin first")

    # --- electronic signatures --------------------------------------------------------

    def _sign(self, cmd: SignRecord, actor: Actor) -> Aggregate:
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
        self._append(aggregate, RecordSigned, cmd, actor, self.clock.today(), data)
        return aggregate

    def _signed_facts(self, cmd: SignRecord) -> tuple[Patient | Escalation, list[Entry]]:
        if cmd.scope is SignatureScope.ESCALATION_DECISION:
            if not cmd.stratum or not cmd.decision_entry_id:
                raise InvalidCommand({"decision_entry_id" if cmd.stratum else "stratum": "required to sign an escalation decision"})
            esc = self.load_escalation(cmd.stratum)
            decision = esc.entry(cmd.decision_entry_id) if esc else None
            if esc is None or decision is None or decision.kind != esc_events.EscalationDecided.__name__:
                raise CommandRefused(signatures.RULE, f"stratum {cmd.stratum} has no escalation decision {cmd.decision_entry_id}")
            return esc, [decision, *self._basis_facts(esc, decision)]
        if not cmd.patient_id:
            raise InvalidCommand({"patient_id": f"required to sign a {cmd.scope.value.lower()}"})
        if cmd.scope is SignatureScope.CYCLE and cmd.cycle is None:
            raise InvalidCommand({"cycle": "required to sign a cycle"})
        patient = self.load_patient(cmd.patient_id)
        return patient, signatures.patient_facts(cmd.patient_id, patient.entries, cmd.scope, cmd.cycle, self.protocol)

    def _basis_facts(self, esc: Escalation, decision: Entry) -> list[Entry]:
        """The facts in force that a decision's basis names, from the stratum's phase I patients."""
        basis = set(decision.data["basis"])
        patients = {e.data["patient_id"] for e in esc.entries if e.kind == esc_events.PatientAssignedToDoseLevel.__name__}
        return [e for pid in sorted(patients) for e in effective_entries(self.load_patient(pid).entries) if e.entry_id in basis]

    def _invalidate_signatures(self, aggregates: list[Aggregate], cmd: Command, actor: Actor) -> list[Aggregate]:
        """Record SignatureInvalidated for each signature whose data the new entries changed."""
        result = list(aggregates)
        for aggregate in aggregates:
            if not isinstance(aggregate, Patient) or not aggregate.pending_events:
                continue
            change = cast(LedgerEvent, aggregate.pending_events[0]).entry_id
            for signature in signatures.valid_signatures(aggregate.entries):
                if signature.data["state_hash"] != self._patient_hash(aggregate, signature):
                    self._append(aggregate, SignatureInvalidated, cmd, actor, self.clock.today(), _stale(signature, change))
            esc = self._stale_decisions(aggregate, cmd, actor, change)
            if esc is not None:
                result.append(esc)
        return result

    def _stale_decisions(self, patient: Patient, cmd: Command, actor: Actor, change: str) -> Escalation | None:
        """A correction or void of a fact a signed decision rested on makes that signature stale."""
        amended = {e.data["amends_entry_id"] for e in _pending_entries(patient) if "amends_entry_id" in e.data}
        esc = self.load_escalation(patient.stratum) if amended and patient.entries[0].data["phase"] is Phase.I else None
        if esc is None:
            return None
        stale = [
            s for s in signatures.valid_signatures(esc.entries)
            if (decision := esc.entry(s.data["decision_entry_id"] or "")) is not None and amended & set(decision.data["basis"])
        ]
        for signature in stale:
            self._append(esc, SignatureInvalidated, cmd, actor, self.clock.today(), _stale(signature, change))
        return esc if stale else None

    def _patient_hash(self, patient: Patient, signature: Entry) -> str | None:
        try:
            facts = signatures.patient_facts(patient.patient_id, patient.entries, signature.data["scope"], signature.data["cycle"], self.protocol)
        except CommandRefused:  # the signed cycle is gone (voided)
            return None
        return signatures.state_hash(facts)

    def _amendable(self, patient: Patient, entry_id: str, patient_id: str) -> Entry:
        """CORRECTION-REASON's target: a fact of this patient, still in force."""
        current = {e.entry_id: e for e in effective_entries(patient.entries)}
        target = current.get(entry_id)
        if target is None or target.kind not in FACT_EVENTS:
            recorded = patient.entry(entry_id)
            why = "was voided" if recorded and recorded.kind in FACT_EVENTS else "is not a fact recorded for this patient"
            raise CommandRefused("ENTRY-TARGET", f"entry {entry_id} {why}; patient {patient_id} has no such entry to amend")
        return target

    def _settle(
        self, violations: list[Violation], cmd: Command, actor: Actor, aggregate: Patient | Escalation, entry_id: str, occurred_on: date
    ) -> list[Violation]:
        """Refuse a rule-breaking command, or record it with a deviation entry per rule."""
        if not violations:
            return []
        if not cmd.deviation:
            raise RuleViolations(violations)
        if actor.role not in INVESTIGATOR_ROLES:
            raise CommandRefused(
                "DEVIATION", f"only an investigator may record a protocol deviation; {actor.user} acts as {actor.role.value} ({violations[0]})"
            )
        for v in violations:
            self._append(
                aggregate,
                ProtocolDeviationRecorded,
                cmd,
                actor,
                occurred_on,
                {"rule_id": v.rule_id, "message": v.message, "deviating_entry_id": entry_id},
            )
        return violations

    def _append(
        self, aggregate: EntryLog, event_class: type[LedgerEvent], cmd: Command, actor: Actor, occurred_on: date, data: dict[str, Any]
    ) -> str:
        entry_id = _new_entry_id()
        aggregate.record(event_class, **self._envelope(cmd, actor, occurred_on, entry_id), **data)
        return entry_id

    def _envelope(self, cmd: Command | UndatedCommand, actor: Actor, occurred_on: date, entry_id: str) -> dict[str, Any]:
        return {
            "entry_id": entry_id,
            "occurred_on": occurred_on,
            "timestamp": self.clock.now(),
            "recorded_by": actor.user,
            "role": actor.role,
            "reason": cmd.reason,
            "source": cmd.source,
            "protocol_version": self.protocol.version,
            "command_id": cmd.command_id,
        }

    # --- loading ------------------------------------------------------------------------


def _stale(signature: Entry, change: str) -> dict[str, Any]:
    return {"signature_entry_id": signature.entry_id, "changed_by_entry_id": change}


def _pending_entries(aggregate: Aggregate) -> list[Entry]:
    return [cast(LedgerEvent, e).as_entry() for e in aggregate.pending_events]


def _new_entry_id() -> str:
    return str(uuid.uuid4())


def _field_names(cls: type[Command]) -> set[str]:
    return {f.name for f in fields(cls)}


def _fields_of(cmd: Command) -> dict[str, Any]:
    return {f.name: getattr(cmd, f.name) for f in fields(cmd) if f.name not in COMMON_FIELDS}
