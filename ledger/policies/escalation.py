"""ESC-3PLUS3, ESC-COHORT and PHASE2-OPEN: the phase I 3+3 escalation of a stratum.

``recommend`` gives what the 3+3 rule asks for at the stratum's current dose level, from
what is recorded: ``ENROLL`` while the level lacks patients, ``AWAIT_DLT_EVALUATION`` while
DLT windows are open, otherwise a decision:

- 0 DLTs of 3 evaluable → ``ESCALATE``; 1 of 3 → ``EXPAND`` to 6; at most 1 of 6 → ``ESCALATE``;
- 2 or more DLTs at any count → too toxic: ``MTD_DECLARED`` at the level below when it has
  6 evaluable patients with at most 1 DLT, else ``DE_ESCALATE`` to it (expanding it to 6);
  ``STOP`` when the lowest level is too toxic;
- where ``ESCALATE`` would be due: ``MAX_DOSE_REACHED`` at the top level, ``MTD_DECLARED``
  when the level above was too toxic.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.commands import DecideEscalation
from ledger.errors import Violation
from ledger.protocol import Protocol
from ledger.state import StratumState

ENROLL = "ENROLL"
AWAIT = "AWAIT_DLT_EVALUATION"


@dataclass(frozen=True)
class Recommendation:
    action: str  # ENROLL, AWAIT_DLT_EVALUATION or a Decision name
    dose_mg: int  # the level the recommendation is about (the current level)
    mtd_mg: int | None
    why: str


def recommend(s: StratumState, protocol: Protocol) -> Recommendation | None:
    """What ESC-3PLUS3 asks for now; ``None`` once the escalation has concluded."""
    if s.status != "ESCALATING":
        return None
    levels = protocol.dose_levels_mg
    dose = s.current_dose_mg
    i = levels.index(dose)
    lv = s.level(dose)
    if lv.dlts > protocol.max_dlts_tolerated:
        if i == 0:
            return Recommendation("STOP", dose, None, f"{lv.dlts} DLTs at {dose} mg, the lowest level")
        below = s.level(levels[i - 1])
        if below.evaluable >= protocol.expanded_cohort_size and below.dlts <= protocol.max_dlts_tolerated:
            return Recommendation("MTD_DECLARED", dose, below.dose_mg, f"{lv.dlts} DLTs at {dose} mg; {below.dlts}/{below.evaluable} at {below.dose_mg} mg")
        expand = f"{below.dose_mg} mg is to be expanded to {protocol.expanded_cohort_size}"
        return Recommendation("DE_ESCALATE", dose, None, f"{lv.dlts} DLTs at {dose} mg; {expand}")
    if lv.evaluable + lv.pending < lv.cap:
        return Recommendation(ENROLL, dose, None, f"{lv.evaluable + lv.pending} of {lv.cap} patients at {dose} mg")
    if lv.evaluable < lv.cap:
        return Recommendation(AWAIT, dose, None, f"{lv.pending} patient(s) at {dose} mg still in their DLT window")
    if lv.cap < protocol.expanded_cohort_size and lv.dlts > 0:
        return Recommendation("EXPAND", dose, None, f"{lv.dlts}/{lv.evaluable} DLT at {dose} mg")
    tally = f"{lv.dlts}/{lv.evaluable} DLTs at {dose} mg"
    if i + 1 < len(levels) and levels[i + 1] in s.too_toxic:
        return Recommendation("MTD_DECLARED", dose, dose, f"{tally}; {levels[i + 1]} mg was too toxic")
    if i + 1 == len(levels):
        return Recommendation("MAX_DOSE_REACHED", dose, dose, f"{tally}, the highest level")
    return Recommendation("ESCALATE", dose, None, tally)


def check_decision(s: StratumState, cmd: DecideEscalation, protocol: Protocol) -> list[Violation]:
    rec = recommend(s, protocol)
    day = cmd.decided_on.isoformat()
    if rec is None:
        return [Violation("ESC-3PLUS3", f"the escalation of stratum {s.stratum} has concluded ({s.status}); no further decision is due")]
    if cmd.dose_mg != rec.dose_mg:
        return [Violation("ESC-3PLUS3", f"the current dose level of stratum {s.stratum} on {day} is {rec.dose_mg} mg, not {cmd.dose_mg} mg")]
    if rec.action in (ENROLL, AWAIT):
        wanted = "more patients must be enrolled" if rec.action == ENROLL else "DLT evaluation is not complete"
        return [Violation("ESC-3PLUS3", f"no decision is due for {rec.dose_mg} mg on {day}: {wanted} ({rec.why})")]
    decision = cmd.decision.value
    if decision != rec.action:
        return [Violation("ESC-3PLUS3", f"on {day} the 3+3 rule gives {rec.action} for {rec.dose_mg} mg ({rec.why}), not {decision}")]
    if rec.mtd_mg is not None and cmd.mtd_mg != rec.mtd_mg:
        return [Violation("ESC-3PLUS3", f"the 3+3 rule gives an MTD of {rec.mtd_mg} mg, not {cmd.mtd_mg} mg")]
    return []


def check_cohort(s: StratumState, patient_id: str, protocol: Protocol) -> list[Violation]:
    """ESC-COHORT: a phase I patient joins the open level while it has room."""
    rec = recommend(s, protocol)
    if rec is None:
        return [Violation("ESC-COHORT", f"phase I of stratum {s.stratum} has concluded ({s.status}); patient {patient_id} cannot join it")]
    if rec.action != ENROLL:
        lv = s.level(rec.dose_mg)
        waiting = "its DLT evaluation is not complete" if rec.action == AWAIT else f"the 3+3 decision ({rec.action}) must be recorded first"
        return [Violation("ESC-COHORT", f"dose level {rec.dose_mg} mg of stratum {s.stratum} has its {lv.cap} patients and {waiting}")]
    return []


def check_phase2_open(s: StratumState | None, stratum: str) -> list[Violation]:
    if s is None or s.status not in ("MTD_DECLARED", "MAX_DOSE_REACHED") or s.mtd_mg is None:
        return [Violation("PHASE2-OPEN", f"phase II of stratum {stratum} opens once an MTD (or maximum dose reached) is declared")]
    return []


def check_backdated_cohort(now: StratumState, dose_mg: int, patient_id: str, protocol: Protocol) -> list[Violation]:
    """ESC-COHORT for a back-dated enrollment at ``dose_mg``, against the stratum as it stands since.

    The level must still be the open one, with room left once the patients enrolled after the
    back-dated date are counted.
    """
    if now.status != "ESCALATING" or now.current_dose_mg != dose_mg:
        return [Violation("ESC-COHORT", f"dose level {dose_mg} mg of stratum {now.stratum} has since been concluded; patient {patient_id} cannot join it")]
    return check_cohort(now, patient_id, protocol)
