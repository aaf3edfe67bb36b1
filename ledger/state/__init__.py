"""The pure folds: what a patient's or a stratum's entries add up to, bitemporally.

``patient_state(entries, protocol, as_of, valid_on)`` keeps the entries recorded at or
before ``as_of`` (transaction time), applies corrections to the entries they amend and drops
voided ones, keeps what is dated on or before ``valid_on`` (valid time), and folds the rest
in clinical-date order. Rules, queries and reports all call these functions, so a rule never
sees a different state from the one users are shown.
"""

from ledger.state.entries import DATE_FIELDS, corrected, effective_entries, valid_entries
from ledger.state.escalation import Decided, DltEvaluation, Level, StratumState, dlt_evaluation, stratum_state
from ledger.state.patient import Assessment, Contact, Cycle, Infusion, PatientState, Toxicity, best_response, patient_state

__all__ = [
    "DATE_FIELDS",
    "Assessment",
    "Contact",
    "Cycle",
    "Decided",
    "DltEvaluation",
    "Infusion",
    "Level",
    "PatientState",
    "StratumState",
    "Toxicity",
    "best_response",
    "corrected",
    "dlt_evaluation",
    "effective_entries",
    "patient_state",
    "stratum_state",
    "valid_entries",
]
