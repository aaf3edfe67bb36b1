"""What time makes due: the entries the scheduler records because a window closed.

- FU-SCHEDULE: a follow-up visit whose window (due day ± tolerance) closed with no contact
  is recorded as missed (``FollowUpMissed``), dated the window's last day;
- FU-WINDOW: the end of the follow-up year is recorded (``FollowUpCompleted``), dated its
  last day; the patient's status is then ``COMPLETED``;
- DLT-WINDOW: a phase I patient's DLT window that closed without a DLT, the patient still on
  study through it, is recorded as an evaluation complete (``DltEvaluationCompleted``).

``pending`` lists what a patient's recorded course still makes due, past or future; an action
becomes due the day after its window's last day. A death, a loss to follow-up or a
withdrawal removes what they make moot; a corrected end of treatment moves the windows (each
action's ``command_id`` names its dates, so a moved window is a new action). The same function
is the rule the scheduler's commands are checked against: a command that is not one of the
patient's pending actions, due by today, is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from ledger.commands import CompleteDltEvaluation, CompleteFollowUp, PatientCommand, RecordFollowUpMissed
from ledger.errors import CommandRefused
from ledger.policies.dlt import dlt_window
from ledger.policies.follow_up import follow_up_end, visits
from ledger.protocol import Protocol
from ledger.state import PatientState

FOLLOW_UP_MISSED = "follow_up_missed"
FOLLOW_UP_COMPLETED = "follow_up_completed"
DLT_EVALUATION_COMPLETED = "dlt_evaluation_completed"
RULE_OF = {FOLLOW_UP_MISSED: "FU-SCHEDULE", FOLLOW_UP_COMPLETED: "FU-WINDOW", DLT_EVALUATION_COMPLETED: "DLT-WINDOW"}


@dataclass(frozen=True)
class Action:
    """One entry that time makes due for a patient."""

    kind: str
    patient_id: str
    closed_on: date  # the window's last day: the entry's clinical date
    visit: int | None = None
    visit_due_on: date | None = None

    @property
    def due_on(self) -> date:
        """The first day the entry may be recorded: the day after its window closed."""
        return self.closed_on + timedelta(days=1)

    @property
    def command_id(self) -> str:
        """Deterministic: a restart or a second scheduler sends the same id, which records once."""
        if self.kind == FOLLOW_UP_MISSED:
            return f"fu-missed:{self.patient_id}:{self.visit}:{self.closed_on.isoformat()}"
        if self.kind == FOLLOW_UP_COMPLETED:
            return f"fu-completed:{self.patient_id}:{self.closed_on.isoformat()}"
        return f"dlt-evaluated:{self.patient_id}:{self.closed_on.isoformat()}"

    def command(self, source: str | None = None) -> PatientCommand:
        reason = "recorded by the scheduler: the window closed"
        if self.kind == FOLLOW_UP_MISSED:
            assert self.visit is not None and self.visit_due_on is not None
            return RecordFollowUpMissed(
                patient_id=self.patient_id, visit=self.visit, due_on=self.visit_due_on, window_closed_on=self.closed_on,
                command_id=self.command_id, reason=reason, source=source,
            )
        if self.kind == FOLLOW_UP_COMPLETED:
            return CompleteFollowUp(patient_id=self.patient_id, completed_on=self.closed_on, command_id=self.command_id, reason=reason, source=source)
        return CompleteDltEvaluation(
            patient_id=self.patient_id, window_closed_on=self.closed_on, command_id=self.command_id, reason=reason, source=source
        )


def pending(state: PatientState, protocol: Protocol) -> list[Action]:
    """Every action the patient's course makes due and that is not recorded yet, by due date."""
    if not state.enrolled:
        return []
    actions = _dlt_evaluation(state, protocol) + _follow_up(state, protocol)
    return sorted(actions, key=lambda a: (a.due_on, a.kind, a.visit or 0))


def _dlt_evaluation(state: PatientState, protocol: Protocol) -> list[Action]:
    start = state.cycle1_started_on
    if state.phase != "I" or start is None or state.dlt:
        return []
    _, last = dlt_window(start, protocol)
    left = [d for d in (state.treatment_ended_on, state.died_on) if d is not None]
    if (left and min(left) < last) or state.dlt_evaluated_on == last:
        return []  # left the study before the window closed: not evaluable; or already recorded
    return [Action(DLT_EVALUATION_COMPLETED, state.patient_id, last)]


def _follow_up(state: PatientState, protocol: Protocol) -> list[Action]:
    ended = state.treatment_ended_on
    if ended is None or state.end_reason == "WITHDRAWAL":
        return []
    stops = [d for d in (state.died_on, state.lost_on) if d is not None]
    stop = min(stops) if stops else None
    contacts = [c.contacted_on for c in state.contacts]
    recorded = {(m.visit, m.window_closed_on) for m in state.missed_visits}
    actions = [
        Action(FOLLOW_UP_MISSED, state.patient_id, visit.closes_on, visit.number, visit.due_on)
        for visit in visits(ended, protocol)
        if not any(visit.contains(c) for c in contacts)
        and (visit.number, visit.closes_on) not in recorded
        and (stop is None or stop > visit.closes_on)
    ]
    end = follow_up_end(ended, protocol)
    if (stop is None or stop > end) and state.follow_up_completed_on != end:
        actions.append(Action(FOLLOW_UP_COMPLETED, state.patient_id, end))
    return actions


def check_elapsed(state: PatientState, cmd: PatientCommand, protocol: Protocol, today: date) -> None:
    """The scheduler's command must be one of the patient's pending actions, due by ``today``."""
    wanted = _action_of(cmd)
    rule = RULE_OF[wanted.kind]
    match = next((a for a in pending(state, protocol) if a == wanted), None)
    if match is None:
        raise CommandRefused(rule, f"patient {cmd.patient_id} has no such {wanted.kind.replace('_', ' ')} pending ({wanted.command_id}): "
                                   "recorded already, or the course no longer makes it due")
    if match.due_on > today:
        raise CommandRefused(rule, f"the window closes on {match.closed_on.isoformat()}; it can be recorded from {match.due_on.isoformat()}")


def kind_of(cmd: PatientCommand) -> str:
    return _action_of(cmd).kind


def _action_of(cmd: PatientCommand) -> Action:
    if isinstance(cmd, RecordFollowUpMissed):
        return Action(FOLLOW_UP_MISSED, cmd.patient_id, cmd.window_closed_on, cmd.visit, cmd.due_on)
    if isinstance(cmd, CompleteFollowUp):
        return Action(FOLLOW_UP_COMPLETED, cmd.patient_id, cmd.completed_on)
    assert isinstance(cmd, CompleteDltEvaluation)
    return Action(DLT_EVALUATION_COMPLETED, cmd.patient_id, cmd.window_closed_on)
