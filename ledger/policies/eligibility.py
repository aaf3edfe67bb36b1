"""ELIG-DIAGNOSIS, ELIG-CD22, ELIG-T315I: who may be enrolled."""

from __future__ import annotations

import re

from ledger.commands import EnrollPatient
from ledger.errors import Violation
from ledger.protocol import Protocol


def check_eligibility(cmd: EnrollPatient, protocol: Protocol) -> list[Violation]:
    found: list[Violation] = []
    if cmd.diagnosis not in protocol.diagnoses:
        found.append(
            Violation(
                "ELIG-DIAGNOSIS",
                f"patient {cmd.patient_id} has diagnosis {cmd.diagnosis}; the trial enrols "
                f"{' or '.join(protocol.diagnoses)} only",
            )
        )
    if cmd.cd22_percent < protocol.cd22_min_percent:
        found.append(
            Violation(
                "ELIG-CD22",
                f"patient {cmd.patient_id} has CD22 on {cmd.cd22_percent:g}% of blasts; at least "
                f"{protocol.cd22_min_percent:g}% is required",
            )
        )
    excluded = sorted({x for x in protocol.excluded_mutations for m in cmd.abl_mutations if _names(m, x)})
    if excluded:
        found.append(
            Violation(
                "ELIG-T315I",
                f"patient {cmd.patient_id} carries the {', '.join(excluded)} ABL kinase-domain "
                "mutation, which excludes them from the trial",
            )
        )
    return found


def _names(mutation: str, excluded: str) -> bool:
    """``p.T315I``, ``t315i`` and ``ABL1 T315I`` all name T315I; ``T315IX`` does not."""
    return re.search(rf"(?<![A-Z0-9]){re.escape(excluded.upper())}(?![A-Z0-9])", mutation.upper()) is not None
