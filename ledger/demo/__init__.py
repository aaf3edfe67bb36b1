"""``ledger demo``: record a clearly labelled SYNTHETIC trial into an empty ledger.

The demo writes through ``TrialLedger.handle`` with the typed commands of
``ledger.commands``, exactly as every other writer does, so every rule of protocol.md checks
every line of it. Nothing in it describes a real patient: ids are ``D101``..., the source of
every command is ``SYNTHETIC DEMO`` and the output says so first.

The story, in clinical-date order:

- phase I, stratum ``default``, 3+3 on bosutinib 300/400/500 mg: 0/3 DLTs at 300 mg
  (ESCALATE), 1/3 at 400 mg (EXPAND), 1/6 at 400 mg (ESCALATE), 2/3 at 500 mg
  (MTD_DECLARED, MTD 400 mg); each decision is dated after the cohort's DLT windows closed;
- phase II at 400 mg, opened after the MTD decision;
- the responder ``D201``: CR with CCyR and MRD-negative on day 28 of cycle 1, so cycles 2-6
  (all started after that date) get InO 1.0 mg/m2 on day 1 only; cycle 1's day-8 infusion
  was given on day 9 (clinic closed for Labor Day), an acknowledged INO-DAYS deviation; a
  platelet count grade corrected after source-document verification; six cycles completed, a
  seventh refused by CYCLE-CAP, then follow-up every 84 days for a year.

Each patient's course is a ``Course`` (a few numbers a reader can check against the protocol);
``ledger.demo.course`` turns it into dated commands, ``ledger.demo.cohorts`` holds the synthetic
patients and the 3+3 decisions, and ``ledger.demo.run`` records all steps in date order,
narrating the milestones.
"""

from __future__ import annotations

from ledger.demo.course import RESPONDER
from ledger.demo.run import SOURCE, run_demo

__all__ = ["RESPONDER", "SOURCE", "run_demo"]
