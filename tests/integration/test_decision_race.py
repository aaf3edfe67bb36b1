"""A 3+3 decision that rested on facts another writer changed meanwhile is checked again.

On SQLite writers are serialised (each takes the write lock before reading), so the race
exists only on PostgreSQL, where this test runs.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta

import pytest

from ledger.application import TrialLedger
from ledger.bootstrap import Settings, build_ledger, build_store
from ledger.clock import FixedClock
from ledger.commands import DecideEscalation, EnrollPatient, ReportToxicity, StartCycle
from ledger.domain.escalation import Escalation
from ledger.domain.values import Actor, Attribution, Decision, Phase, Role
from ledger.errors import RuleViolations
from ledger.queries import escalation_document
from ledger.state import StratumState

START = date(2016, 1, 4)


class InterruptedLedger(TrialLedger):
    """Lets another writer record a DLT right after the decision has read the stratum."""

    interrupt: TrialLedger
    interrupted = False
    dlt = ReportToxicity(patient_id="P2", onset_on=START + timedelta(days=10), term="Rash", grade=3, attribution=Attribution.POSSIBLE)

    def stratum_state_on(self, stratum: str, esc: Escalation | None, valid_on: date | None = None,
                         as_of: datetime | None = None, reads: dict | None = None) -> StratumState:  # type: ignore[type-arg]
        state = super().stratum_state_on(stratum, esc, valid_on, as_of, reads)
        if reads is not None and not self.interrupted:
            self.interrupted = True
            # another writer, in its own connection and transaction (its own thread), as another process would be
            writer = threading.Thread(target=self.interrupt.handle, args=(self.dlt, Actor("other.writer", Role.INVESTIGATOR)))
            writer.start()
            writer.join()
        return state


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_dlt_recorded_while_a_decision_is_made_makes_the_decision_be_checked_again(
    ledger: TrialLedger, database_url: str, investigator: Actor, clock: FixedClock
) -> None:
    for n in (1, 2, 3):
        ledger.handle(
            EnrollPatient(patient_id=f"P{n}", enrolled_on=START, diagnosis="PH_POS_ALL", phase=Phase.I, cd22_percent=60.0, abl_mutations=[], bsa_m2=1.8),
            investigator,
        )
        ledger.handle(StartCycle(patient_id=f"P{n}", cycle=1, started_on=START), investigator)
    decided_on = START + timedelta(days=40)
    assert escalation_document(ledger, valid_on=decided_on)["strata"][0]["next_action"] == "ESCALATE"

    deciding = InterruptedLedger(build_store(Settings(database_url=database_url)), ledger.protocol, clock, ledger.parse_changes)
    deciding.interrupt = build_ledger(Settings(database_url=database_url, user="other.writer"), clock=clock)
    try:
        with pytest.raises(RuleViolations) as refusal:
            deciding.handle(DecideEscalation(stratum="default", decided_on=decided_on, dose_mg=300, decision=Decision.ESCALATE), investigator)
        assert deciding.interrupted
        assert refusal.value.rule_id == "ESC-3PLUS3" and "EXPAND" in refusal.value.message
        level = escalation_document(ledger, valid_on=decided_on)["strata"][0]["levels"][0]
        assert level["decision"] is None and level["dlts"] == 1
    finally:
        deciding.interrupt.close()
        deciding.close()
