"""A patient's command checked against their whole recorded course.

``check_patient_command`` runs the rules of one command; ``later_conflicts`` finds the facts
already recorded, dated on or after a new (back-dated) fact or a correction, that the change
would make break a rule: a response back-dated before a cycle whose day-8 InO is recorded, a
dose modification back-dated before recorded doses, a cycle start corrected past its doses.
Facts that already carry an acknowledged deviation are not checked again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from datetime import date, timedelta
from typing import Any

from ledger.commands import (
    COMMAND_OF_EVENT,
    AssessResponse,
    EndTreatment,
    EnrollPatient,
    ModifyBosutinibDose,
    PatientCommand,
    RecordBosutinibDose,
    RecordDeath,
    RecordFollowUp,
    RecordInoInfusion,
    RecordLostToFollowUp,
    ReportToxicity,
    ResolveToxicity,
    StartCycle,
)
from ledger.domain.values import Entry
from ledger.errors import CommandRefused, Violation
from ledger.policies import eligibility, follow_up, treatment
from ledger.protocol import Protocol
from ledger.state import PatientState, effective_entries, patient_state

Check = Callable[[PatientState, Any, Protocol], list[Violation]]

#: how far past the server's date a clinical date may lie (time zones ahead of UTC)
FUTURE_TOLERANCE = timedelta(days=1)


def check_resolution(state: PatientState, cmd: ResolveToxicity, protocol: Protocol) -> list[Violation]:
    tox = state.toxicity(cmd.toxicity_id)
    if tox is None:
        raise CommandRefused("ENTRY-TARGET", f"patient {state.patient_id} has no toxicity {cmd.toxicity_id} in force")
    found = treatment.check_death_final(state, cmd.resolved_on, "a toxicity resolution")
    if cmd.resolved_on < tox.onset_on:
        found.append(Violation("TOX-RESOLVED", f"{tox.term} began on {tox.onset_on.isoformat()}; it cannot resolve on {cmd.resolved_on.isoformat()}"))
    if tox.resolved_on is not None:
        found.append(Violation("TOX-RESOLVED", f"{tox.term} was already recorded as resolved on {tox.resolved_on.isoformat()}; correct that entry instead"))
    return found


def check_observation(state: PatientState, day: date, what: str) -> list[Violation]:
    """A toxicity or response: not before enrollment, not after death."""
    found = treatment.check_death_final(state, day, what)
    enrolled = state.enrolled_on
    if enrolled is not None and day < enrolled:
        found.append(Violation("TREAT-WINDOW", f"{what} on {day.isoformat()} is before patient {state.patient_id} was enrolled on {enrolled.isoformat()}"))
    return found


CHECKS: dict[type[PatientCommand], Check] = {
    StartCycle: treatment.check_start_cycle,
    RecordBosutinibDose: treatment.check_bosutinib_dose,
    ModifyBosutinibDose: treatment.check_dose_modification,
    RecordInoInfusion: treatment.check_ino_infusion,
    ReportToxicity: lambda s, c, p: check_observation(s, c.onset_on, "a toxicity"),
    ResolveToxicity: check_resolution,
    AssessResponse: lambda s, c, p: check_observation(s, c.assessed_on, "a response assessment"),
    EndTreatment: lambda s, c, p: treatment.check_end_treatment(s, c),
    RecordFollowUp: follow_up.check_follow_up,
    RecordLostToFollowUp: follow_up.check_lost_to_follow_up,
    RecordDeath: lambda s, c, p: treatment.check_death(s, c),
    EnrollPatient: lambda s, c, p: eligibility.check_eligibility(c, p) + _enrollment_window(s, c),
}


def check_patient_command(state: PatientState, cmd: PatientCommand, protocol: Protocol) -> list[Violation]:
    return CHECKS[type(cmd)](state, cmd, protocol)


def check_not_future(day: date, today: date) -> None:
    """A clinical fact cannot be dated in the future (a refusal no deviation overrides)."""
    if day > today + FUTURE_TOLERANCE:
        raise CommandRefused("DATE-FUTURE", f"{day.isoformat()} is in the future (today is {today.isoformat()}); facts are recorded once they happened")


def command_of(entry: Entry, patient_id: str) -> PatientCommand:
    """The command that would record ``entry`` as it now stands."""
    cls = COMMAND_OF_EVENT[entry.kind]
    names = {f.name for f in fields(cls)} - {"patient_id"}
    return cls(**{k: v for k, v in entry.data.items() if k in names}, patient_id=patient_id)


def later_conflicts(patient_id: str, entries: list[Entry], since: date, new_ids: set[str], protocol: Protocol) -> list[Violation]:
    """Violations that facts dated on or after ``since`` (other than ``new_ids``) would now commit."""
    effective = effective_entries(entries)
    deviated = _deviated(entries, effective)
    found: list[Violation] = []
    for entry in effective:
        if entry.entry_id in new_ids or entry.entry_id in deviated or entry.kind not in COMMAND_OF_EVENT or entry.occurred_on < since:
            continue
        others = [e for e in entries if e.entry_id != entry.entry_id]
        try:
            violations = check_patient_command(patient_state(patient_id, others, protocol), command_of(entry, patient_id), protocol)
        except CommandRefused:  # e.g. the resolution of a toxicity now voided: nothing left to contradict
            continue
        found += [Violation(v.rule_id, f"{v.message} (so entry {entry.entry_id}, already recorded, would break the rule)") for v in violations]
    return found


def _deviated(entries: list[Entry], effective: list[Entry]) -> set[str]:
    """Facts that carry an acknowledged deviation (directly, or through a correction of them)."""
    target_of = {e.entry_id: e.data["amends_entry_id"] for e in entries if e.kind == "EntryCorrected"}
    ids = {e.data["deviating_entry_id"] for e in effective if e.kind == "ProtocolDeviationRecorded"}
    return ids | {target_of[i] for i in ids if i in target_of}


def _enrollment_window(state: PatientState, cmd: EnrollPatient) -> list[Violation]:
    """A corrected enrollment date may not move after the treatment already recorded."""
    first = min([c.started_on for c in state.cycles] + [d[0] for d in state.doses] + [i.given_on for i in state.infusions], default=None)
    if first is not None and cmd.enrolled_on > first:
        return [Violation("TREAT-WINDOW", f"patient {cmd.patient_id} has treatment recorded on {first.isoformat()}, before {cmd.enrolled_on.isoformat()}")]
    return []
