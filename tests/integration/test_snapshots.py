"""A long course is loaded from a snapshot in a new process and folds to the same state."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import text

from ledger.application import TrialLedger
from ledger.bootstrap import Settings, build_ledger
from ledger.clock import FixedClock
from ledger.commands import EnrollPatient, RecordBosutinibDose, StartCycle
from ledger.domain.values import Actor, Phase
from ledger.persistence import SNAPSHOT_INTERVAL
from ledger.queries import patient_document


def test_a_patient_with_hundreds_of_entries_is_snapshotted_and_reloads_identically(
    ledger: TrialLedger, database_url: str, investigator: Actor, clock: FixedClock
) -> None:
    start = date(2016, 2, 1)
    ledger.handle(
        EnrollPatient(patient_id="P001", enrolled_on=start, diagnosis="PH_POS_ALL", phase=Phase.I, cd22_percent=60.0, abl_mutations=[], bsa_m2=1.8),
        investigator,
    )
    for cycle in range(1, 7):
        first = start + timedelta(days=28 * (cycle - 1))
        ledger.handle(StartCycle(patient_id="P001", cycle=cycle, started_on=first), investigator)
        for day in range(28):
            ledger.handle(RecordBosutinibDose(patient_id="P001", taken_on=first + timedelta(days=day), dose_mg=300), investigator)
    engine = ledger.store.recorder.datastore.engine  # type: ignore[attr-defined]
    with engine.connect() as connection:
        versions = connection.execute(text("select originator_version from ledger_snapshots order by originator_version")).scalars().all()
    assert versions == [SNAPSHOT_INTERVAL]

    fresh = build_ledger(Settings(database_url=database_url, user="other"), clock=clock)
    try:
        valid_on = date(2016, 8, 1)
        assert patient_document(fresh, "P001", valid_on=valid_on) == patient_document(ledger, "P001", valid_on=valid_on)
        assert patient_document(fresh, "P001", valid_on=valid_on)["bosutinib_doses"] == 168
        assert fresh.load_patient("P001").entries == ledger.load_patient("P001").entries
    finally:
        fresh.close()
