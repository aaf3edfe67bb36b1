"""The use cases: ``TrialLedger.handle(command, actor)`` is the one entry point for writers.

For each command, in one database transaction:

1. a ``command_id`` already recorded is acknowledged as a duplicate and records nothing;
2. the aggregates it touches are loaded (a patient; the stratum's escalation);
3. the policies check it against the state as recorded so far → refusal or go;
4. the aggregate records the fact (and, for an acknowledged deviation, a
   ``ProtocolDeviationRecorded`` entry per broken rule);
5. the events, their ``ledger_entries`` rows and the ``command_id`` are saved together.

A concurrent writer that changed the same aggregate first makes the save fail; the command
is then checked again against the new state, a bounded number of times.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Cache, LRUCache
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, OperationalError, Recording
from eventsourcing_sqlalchemy.datastore import Transaction
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError as SQLIntegrityError
from sqlalchemy.exc import OperationalError as SQLOperationalError
from sqlalchemy.orm import Session

from ledger.clock import Clock
from ledger.commands import (
    COMMAND_OF_EVENT,
    AssessResponse,
    Command,
    CorrectEntry,
    DecideEscalation,
    EndTreatment,
    EnrollPatient,
    ModifyBosutinibDose,
    PatientCommand,
    RecordBosutinibDose,
    RecordDeath,
    RecordFollowUp,
    RecordInoInfusion,
    ReportToxicity,
    ResolveToxicity,
    StartCycle,
    VoidEntry,
)
from ledger.domain import escalation as esc_events
from ledger.domain import patient as patient_events
from ledger.domain.escalation import Escalation
from ledger.domain.events import LedgerEvent, ProtocolDeviationRecorded
from ledger.domain.patient import FACT_EVENTS, Patient
from ledger.domain.values import Actor, Entry, Phase, Role, escalation_aggregate_id, patient_aggregate_id
from ledger.encoding import plain
from ledger.errors import CommandRefused, ConcurrentWriteError, InvalidCommand, LedgerError, RuleViolations, Violation
from ledger.persistence import CommandRow, EntryRow, EventStore
from ledger.policies import eligibility, escalation
from ledger.policies.course import check_not_future, check_patient_command, command_of, later_conflicts
from ledger.protocol import Protocol
from ledger.state import StratumState, corrected, effective_entries, patient_state, stratum_state

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
    RecordDeath: patient_events.DeathRecorded,
}


@dataclass(frozen=True)
class Outcome:
    """What a command recorded: its entries, the deviations acknowledged, or a duplicate."""

    command: str
    entry_ids: list[str] = field(default_factory=list)
    deviations: list[Violation] = field(default_factory=list)
    duplicate: bool = False


class TrialLedger:
    """The trial's ledger: records commands as events and answers questions about them."""

    max_attempts = 8

    def __init__(self, store: EventStore, protocol: Protocol, clock: Clock, parse_changes: ChangesParser) -> None:
        self.store = store
        self.protocol = protocol
        self.clock = clock
        self.parse_changes = parse_changes
        self._sqlite = self.engine.dialect.name == "sqlite"

    @property
    def recorder(self) -> SQLAlchemyApplicationRecorder:
        return cast(SQLAlchemyApplicationRecorder, self.store.recorder)

    @property
    def engine(self) -> Engine:
        return cast(Engine, self.recorder.datastore.engine)

    def transaction(self, commit: bool = True) -> Transaction:
        """The store's transaction: events and the ledger's own rows commit together."""
        return self.recorder.transaction(commit=commit)

    def close(self) -> None:
        """Release the store and its database connections."""
        self.store.close()
        self.engine.dispose()

    # --- the write path ---------------------------------------------------------------

    def handle(self, command: Command, actor: Actor) -> Outcome:
        """Record ``command`` for ``actor``, or raise a ``LedgerError`` and record nothing."""
        for attempt in range(self.max_attempts):
            try:
                return self._handle_once(command, actor)
            except (IntegrityError, OperationalError, SQLIntegrityError, SQLOperationalError) as conflict:
                if not _is_conflict(conflict):
                    raise
                time.sleep(0.005 * (2**attempt))
        raise ConcurrentWriteError(
            f"{command.name}: the record kept changing under {self.max_attempts} attempts by other writers; "
            "nothing was recorded, send it again"
        )

    def handle_batch(self, commands: Sequence[Command], actor: Actor, stop_at_refusal: bool = True) -> list[Outcome | LedgerError]:
        """Record several commands in one transaction, each atomic on its own.

        Each command runs in a savepoint: a refused or invalid one records nothing and is
        answered with its error in the result list, in order. With ``stop_at_refusal`` the
        batch ends at the first refusal (what came before it is committed). A conflict with
        a concurrent writer rolls the whole batch back; it is then recorded command by
        command, each with the retries of ``handle``.
        """
        try:
            with self.transaction() as session:
                self._begin_write(session)
                results: list[Outcome | LedgerError] = []
                for command in commands:
                    try:
                        with session.begin_nested():
                            results.append(self._record(session, command, actor))
                    except (CommandRefused, InvalidCommand) as refusal:
                        results.append(refusal)
                        if stop_at_refusal:
                            break
                return results
        except (IntegrityError, OperationalError, SQLIntegrityError, SQLOperationalError) as conflict:
            self._forget_cached()
            if not _is_conflict(conflict):
                raise
        except BaseException:
            self._forget_cached()
            raise
        return self._one_by_one(commands, actor, stop_at_refusal)

    def _one_by_one(self, commands: Sequence[Command], actor: Actor, stop_at_refusal: bool) -> list[Outcome | LedgerError]:
        results: list[Outcome | LedgerError] = []
        for command in commands:
            try:
                results.append(self.handle(command, actor))
            except (CommandRefused, InvalidCommand) as refusal:
                results.append(refusal)
                if stop_at_refusal:
                    break
        return results

    def _forget_cached(self) -> None:
        """Drop cached aggregates: within a rolled-back batch they may have seen its events."""
        repository = self.store.repository
        if isinstance(repository.cache, LRUCache):
            repository.cache = LRUCache(maxsize=repository.cache.maxsize)
        elif repository.cache is not None:
            repository.cache = Cache()

    def _handle_once(self, command: Command, actor: Actor) -> Outcome:
        with self.transaction() as session:
            self._begin_write(session)
            return self._record(session, command, actor)

    def _begin_write(self, session: Session) -> None:
        """Take the store's write lock before reading: writers queue instead of conflicting.

        It also makes ``recorded_at`` (read from the clock after this) follow commit order
        across writers, so "as of" a time never shows an entry committed after one it hides.
        """
        if self._sqlite:
            session.execute(text("BEGIN IMMEDIATE"))
        else:
            session.execute(text(f"LOCK TABLE {self.recorder.events_table_name} IN EXCLUSIVE MODE"))

    def _record(self, session: Session, command: Command, actor: Actor) -> Outcome:
        fingerprint = command_fingerprint(command)
        if command.command_id is not None:
            prior = session.execute(
                select(CommandRow.entry_ids, CommandRow.fingerprint).where(CommandRow.command_id == command.command_id)
            ).first()
            if prior is not None:
                if prior.fingerprint is not None and prior.fingerprint != fingerprint:
                    raise CommandRefused(
                        "COMMAND-ID", f"command id {command.command_id} was already used for a different command; nothing was recorded"
                    )
                return Outcome(command.name, prior.entry_ids.split(), duplicate=True)
        aggregates, deviations = self._decide(command, actor)
        owners = {a.id: _owner(a) for a in aggregates}
        recordings = self.store.save(*aggregates)
        entry_ids = self._index(session, recordings, owners)
        if command.command_id is not None:
            row = {"command_id": command.command_id, "recorded_at": self.clock.now(), "entry_ids": " ".join(entry_ids), "fingerprint": fingerprint}
            session.execute(insert(CommandRow), [row])
        return Outcome(command.name, entry_ids, deviations)

    def _index(self, session: Session, recordings: list[Recording[UUID]], owners: dict[UUID, tuple[str | None, str | None]]) -> list[str]:
        """One ``ledger_entries`` row per recorded event, in the events' transaction."""
        rows: list[dict[str, Any]] = []
        for recording in recordings:
            ev = cast(LedgerEvent, recording.domain_event)
            data = ev.data()
            patient_id, stratum = owners[ev.originator_id]
            rows.append(
                {
                    "position": recording.notification.id,
                    "entry_id": ev.entry_id,
                    "aggregate_id": str(ev.originator_id),
                    "aggregate_version": ev.originator_version,
                    "patient_id": data.get("patient_id", patient_id),
                    "stratum": stratum,
                    "kind": type(ev).__name__,
                    "occurred_on": ev.occurred_on,
                    "recorded_at": ev.timestamp,
                    "recorded_by": ev.recorded_by,
                    "role": ev.role.value,
                    "command_id": ev.command_id,
                    "amends_entry_id": data.get("amends_entry_id"),
                }
            )
        session.execute(insert(EntryRow), rows)
        return [str(row["entry_id"]) for row in rows]

    def _decide(self, command: Command, actor: Actor) -> tuple[list[Aggregate], list[Violation]]:
        if isinstance(command, EnrollPatient):
            return self._enroll(command, actor)
        if isinstance(command, DecideEscalation):
            return self._decide_escalation(command, actor)
        if isinstance(command, CorrectEntry):
            return self._correct(command, actor)
        if isinstance(command, VoidEntry):
            return self._void(command, actor)
        assert isinstance(command, PatientCommand)
        check_not_future(command.occurred_on, self.clock.today())
        patient = self.load_patient(command.patient_id)
        state = patient_state(command.patient_id, patient.entries, self.protocol)
        violations = check_patient_command(state, command, self.protocol)
        entry_id = self._append(patient, EVENT_OF_COMMAND[type(command)], command, actor, command.occurred_on, _fields_of(command))
        violations += later_conflicts(command.patient_id, patient.entries, command.occurred_on, {entry_id}, self.protocol)
        return [patient], self._settle(violations, command, actor, patient, entry_id, command.occurred_on)

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
        self, aggregate: Patient | Escalation, event_class: type[LedgerEvent], cmd: Command, actor: Actor, occurred_on: date, data: dict[str, Any]
    ) -> str:
        entry_id = _new_entry_id()
        aggregate.record(event_class, **self._envelope(cmd, actor, occurred_on, entry_id), **data)
        return entry_id

    def _envelope(self, cmd: Command, actor: Actor, occurred_on: date, entry_id: str) -> dict[str, Any]:
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

    def _exists(self, aggregate_id: UUID) -> bool:
        return bool(self.store.recorder.select_events(aggregate_id, limit=1))

    def load_patient(self, patient_id: str, as_of: datetime | None = None) -> Patient:
        """The patient's aggregate; with ``as_of``, only the events recorded by then are read."""
        aggregate = self._load(patient_aggregate_id(patient_id), as_of)
        if aggregate is None:
            when = f" as of {as_of.isoformat()}" if as_of else ""
            raise CommandRefused("PATIENT-UNKNOWN", f"patient {patient_id} is not enrolled{when}")
        return cast(Patient, aggregate)

    def load_escalation(self, stratum: str, as_of: datetime | None = None) -> Escalation | None:
        return cast(Escalation | None, self._load(escalation_aggregate_id(stratum), as_of))

    def _load(self, aggregate_id: UUID, as_of: datetime | None) -> Aggregate | None:
        """Load an aggregate, up to the last version recorded by ``as_of`` (from the entry index)."""
        version = None
        if as_of is not None:
            with self.transaction(commit=False) as session:
                version = session.execute(
                    select(func.max(EntryRow.aggregate_version)).where(EntryRow.aggregate_id == str(aggregate_id), EntryRow.recorded_at <= as_of)
                ).scalar()
            if version is None:
                return None
        try:
            return cast(Aggregate, self.store.repository.get(aggregate_id, version=version))
        except AggregateNotFoundError:
            return None

    def stratum_state_on(self, stratum: str, esc: Escalation | None, valid_on: date | None = None, as_of: datetime | None = None) -> StratumState:
        """The stratum's escalation folded with its phase I patients."""
        entries = esc.entries if esc else []
        patients = {}
        for entry in entries:
            if entry.kind == esc_events.PatientAssignedToDoseLevel.__name__:
                pid = entry.data["patient_id"]
                patients[pid] = patient_state(pid, self.load_patient(pid, as_of).entries, self.protocol, as_of=as_of, valid_on=valid_on)
        return stratum_state(stratum, entries, patients, self.protocol, as_of=as_of, valid_on=valid_on, on=valid_on or self.clock.today())



def _owner(aggregate: Aggregate) -> tuple[str | None, str | None]:
    """The patient and stratum an aggregate's entries are indexed under."""
    if isinstance(aggregate, Patient):
        return aggregate.patient_id, aggregate.stratum
    return None, cast(Escalation, aggregate).stratum


def _is_conflict(error: Exception) -> bool:
    """An optimistic-concurrency or lock conflict that a fresh attempt may resolve."""
    if isinstance(error, (IntegrityError, SQLIntegrityError)):
        return True
    message = str(error).lower()
    return "locked" in message or "deadlock" in message or "could not serialize" in message


def command_fingerprint(command: Command) -> str:
    """SHA-256 of the command's name and fields (its ``command_id`` aside): what a re-send must match."""
    fields_ = {f.name: getattr(command, f.name) for f in fields(command) if f.name != "command_id"}
    canonical = json.dumps({"command": command.name, **plain(fields_)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _new_entry_id() -> str:
    return str(uuid.uuid4())


def _field_names(cls: type[Command]) -> set[str]:
    return {f.name for f in fields(cls)}


def _fields_of(cmd: Command) -> dict[str, Any]:
    return {f.name: getattr(cmd, f.name) for f in fields(cmd) if f.name not in COMMON_FIELDS}
