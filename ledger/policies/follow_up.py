"""FU-WINDOW and the window arithmetic of FU-SCHEDULE.

Follow-up visit k (1, 2, ...) is due ``k × follow_up_interval_days`` after the end of
treatment, within ± ``follow_up_tolerance_days``, for as long as it falls within
``follow_up_days`` of it: days 84, 168, 252 and 336 with the shipped protocol. A visit is
attended when a contact falls in its window and missed once its window has closed without
one (recorded by the scheduler).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from ledger.commands import RecordFollowUp, RecordLostToFollowUp
from ledger.errors import Violation
from ledger.policies.treatment import check_death_final
from ledger.protocol import Protocol
from ledger.state import PatientState


@dataclass(frozen=True)
class Visit:
    number: int
    due_on: date
    opens_on: date
    closes_on: date

    def contains(self, day: date) -> bool:
        return self.opens_on <= day <= self.closes_on


def follow_up_end(ended_on: date, protocol: Protocol) -> date:
    """The last day of the follow-up year."""
    return ended_on + timedelta(days=protocol.follow_up_days)


def visits(ended_on: date, protocol: Protocol) -> list[Visit]:
    tolerance = timedelta(days=protocol.follow_up_tolerance_days)
    schedule = []
    k = 1
    while k * protocol.follow_up_interval_days <= protocol.follow_up_days:
        due = ended_on + timedelta(days=k * protocol.follow_up_interval_days)
        schedule.append(Visit(k, due, due - tolerance, due + tolerance))
        k += 1
    return schedule


@dataclass(frozen=True)
class FollowUpStatus:
    attended: list[Visit]
    missed: list[Visit]  # window closed before ``on`` with no contact in it
    next_due: Visit | None


def follow_up_status(ended_on: date, contacts: list[date], on: date, protocol: Protocol) -> FollowUpStatus:
    attended, missed, upcoming = [], [], []
    for visit in visits(ended_on, protocol):
        if any(visit.contains(c) for c in contacts):
            attended.append(visit)
        elif visit.closes_on < on:
            missed.append(visit)
        else:
            upcoming.append(visit)
    return FollowUpStatus(attended, missed, upcoming[0] if upcoming else None)


def status_on(
    on: date, died_on: date | None, ended_on: date | None, end_reason: str | None, protocol: Protocol, lost_on: date | None = None
) -> str:
    """The patient's status (contract.md) on ``on``, from the dates that decide it."""
    if died_on is not None and died_on <= on:
        return "DEAD"
    if ended_on is None or ended_on > on:
        return "ON_TREATMENT"
    if end_reason == "WITHDRAWAL":
        return "OFF_STUDY"  # consent withdrawn: no follow-up
    if lost_on is not None and lost_on <= on:
        return "OFF_STUDY"  # lost to follow-up: no one left to follow
    return "COMPLETED" if on > follow_up_end(ended_on, protocol) else "FOLLOW_UP"


def check_follow_up(state: PatientState, cmd: RecordFollowUp, protocol: Protocol) -> list[Violation]:
    pid, day = state.patient_id, cmd.contacted_on
    found = check_death_final(state, day, "a follow-up contact")
    ended = state.treatment_ended_on
    if ended is None:
        found.append(Violation("FU-WINDOW", f"treatment of patient {pid} has not ended; follow-up starts after the end of treatment"))
    elif day <= ended:
        found.append(Violation("FU-WINDOW", f"follow-up contacts come after the end of treatment on {ended.isoformat()}, not on {day.isoformat()}"))
    elif state.lost_on is not None and day >= state.lost_on:
        lost = state.lost_on.isoformat()
        found.append(Violation("FU-WINDOW", f"patient {pid} was recorded as lost to follow-up on {lost}; void that entry if contact was re-established"))
    elif (day - ended).days > protocol.follow_up_days:
        found.append(
            Violation(
                "FU-WINDOW",
                f"{day.isoformat()} is day {(day - ended).days} after the end of treatment of patient {pid}; "
                f"follow-up lasts {protocol.follow_up_days} days (until {follow_up_end(ended, protocol).isoformat()})",
            )
        )
    return found


def check_lost_to_follow_up(state: PatientState, cmd: RecordLostToFollowUp, protocol: Protocol) -> list[Violation]:
    """Lost to follow-up: during the follow-up year, once, not after death or withdrawal."""
    pid, day = state.patient_id, cmd.lost_on
    found = check_death_final(state, day, "a loss to follow-up")
    ended = state.treatment_ended_on
    if ended is None or day <= ended:
        after = f" on {ended.isoformat()}" if ended else ""
        found.append(Violation("FU-WINDOW", f"patient {pid} is lost to follow-up only after the end of treatment{after}, not on {day.isoformat()}"))
    elif state.end_reason == "WITHDRAWAL":
        found.append(Violation("FU-WINDOW", f"patient {pid} withdrew consent on {ended.isoformat()}; there is no follow-up to lose"))
    elif day > follow_up_end(ended, protocol):
        end = follow_up_end(ended, protocol).isoformat()
        found.append(Violation("FU-WINDOW", f"the follow-up of patient {pid} ended on {end}; {day.isoformat()} is after it"))
    if state.lost_on is not None:
        found.append(Violation("FU-WINDOW", f"patient {pid} was already recorded as lost to follow-up on {state.lost_on.isoformat()}"))
    return found
