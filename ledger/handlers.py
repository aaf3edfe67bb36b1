"""Deciding a command: load what it touches, check the rules, record the fact.

``Decider.decide(command, actor)`` returns the aggregates with their new events and the
violations acknowledged as deviations, or raises the refusal; it writes nothing itself (the
application saves what it returns in one transaction).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from eventsourcing.domain import Aggregate

from ledger.clock import Clock
from ledger.commands import (
    COMMAND_OF_EVENT,
    ELAPSED_COMMANDS,
    AssessResponse,
    Command,
    CompleteDltEvaluation,
    CompleteFollowUp,
    CorrectEntry,
    DecideEscalation,
    EndTreatment,
    EnrollPatient,
    ModifyBosutinibDose,
    PatientCommand,
    RecordBosutinibDose,
    RecordDeath,
    RecordFollowUp,
    RecordFollowUpMissed,
    RecordInoInfusion,
    RecordLostToFollowUp,
    ReportToxicity,
    ResolveToxicity,
    SignRecord,
    StartCycle,
    UserCommand,
    VoidEntry,
)
from ledger.domain import escalation as esc_events
from ledger.domain import patient as patient_events
from ledger.domain.escalation import Escalation
from ledger.domain.events import LedgerEvent, ProtocolDeviationRecorded
from ledger.domain.patient import FACT_EVENTS, Patient
from ledger.domain.values import Actor, Entry, Phase, Role, patient_aggregate_id
from ledger.entries import EntryWriter, fields_of, new_entry_id
from ledger.errors import CommandRefused, InvalidCommand, RuleViolations, Violation
from ledger.identity.accounts import AccountDecider
from ledger.policies import eligibility, escalation, schedule
from ledger.policies.course import check_not_future, check_patient_command, command_of, later_conflicts
from ledger.protocol import Protocol
from ledger.records import Records
from ledger.signing import SignatureDecider
from ledger.state import corrected, effective_entries, patient_state

#: parses the raw ``changes`` of a correction for the command that recorded the target entry
ChangesParser = Callable[[str, dict[str, Any]], dict[str, Any]]

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


class Decider(EntryWriter):
    """The rules and the recording of each command, against what ``records`` loads.

    Clinical facts are decided here; users by ``AccountDecider``, signatures (and what makes
    them stale after any fact) by ``SignatureDecider``.
    """

    def __init__(self, records: Records, protocol: Protocol, clock: Clock, parse_changes: ChangesParser) -> None:
        super().__init__(records, protocol, clock)
        self.parse_changes = parse_changes
        self.accounts = AccountDecider(records, protocol, clock)
        self.signing = SignatureDecider(records, protocol, clock)
        self.load_patient = records.load_patient
        self.load_escalation = records.load_escalation
        self.stratum_state_on = records.stratum_state_on
        self._exists = records.exists

    def decide(self, command: Command, actor: Actor) -> tuple[list[Aggregate], list[Violation]]:
        if isinstance(command, UserCommand):
            return self.accounts.decide(command, actor), []
        if isinstance(command, SignRecord):
            return [self.signing.sign(command, actor)], []
        aggregates, violations = self._decide_fact(command, actor)
        return self.signing.invalidate(aggregates, command, actor), violations

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
        entry_id = self.append(patient, EVENT_OF_COMMAND[type(command)], command, actor, command.occurred_on, fields_of(command))
        violations += later_conflicts(command.patient_id, patient.entries, command.occurred_on, {entry_id}, self.protocol)
        return [patient], self._settle(violations, command, actor, patient, entry_id, command.occurred_on)

    def _elapsed(self, cmd: PatientCommand, actor: Actor) -> tuple[list[Aggregate], list[Violation]]:
        """What a closed window makes due, recorded by the scheduler (the system user) only."""
        if actor.role is not Role.SYSTEM:
            raise CommandRefused(schedule.RULE_OF[schedule.kind_of(cmd)], f"{cmd.name} is recorded by the scheduler; {actor.user} acts as {actor.role.value}")
        patient = self.load_patient(cmd.patient_id)
        schedule.check_elapsed(patient_state(cmd.patient_id, patient.entries, self.protocol), cmd, self.protocol, self.clock.today())
        self.append(patient, EVENT_OF_COMMAND[type(cmd)], cmd, actor, cmd.occurred_on, fields_of(cmd))
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
        entry_id = new_entry_id()
        patient = Patient.enroll(
            **self.envelope(cmd, actor, cmd.enrolled_on, entry_id),
            **fields_of(cmd),
            patient_id=cmd.patient_id,
            dose_level_mg=dose_level,
        )
        aggregates: list[Aggregate] = [patient]
        if cmd.phase is Phase.I:
            if esc is None:
                esc = Escalation.open(
                    **self.envelope(cmd, actor, cmd.enrolled_on, new_entry_id()),
                    stratum=cmd.stratum,
                    dose_levels_mg=list(self.protocol.dose_levels_mg),
                )
            self.append(
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
        entry_id = self.append(
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
        entry_id = self.append(
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
        entry_id = self.append(patient, patient_events.EntryVoided, cmd, actor, target.occurred_on, {"amends_entry_id": target.entry_id})
        violations = later_conflicts(cmd.patient_id, patient.entries, target.occurred_on, set(), self.protocol)
        return [patient], self._settle(violations, cmd, actor, patient, entry_id, target.occurred_on)

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
            self.append(
                aggregate,
                ProtocolDeviationRecorded,
                cmd,
                actor,
                occurred_on,
                {"rule_id": v.rule_id, "message": v.message, "deviating_entry_id": entry_id},
            )
        return violations
