"""Load the protocol definition (``nct02311998-v<version>.toml``) into a typed, frozen value.

The files sit beside this module and ship in the package. ``load_protocol()`` returns the
newest version unless one is named (``LEDGER_PROTOCOL_VERSION``, passed in by bootstrap).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

FILE_PREFIX = "nct02311998-v"


class ProtocolError(Exception):
    """The protocol definition is missing, unknown or inconsistent."""


@dataclass(frozen=True)
class Protocol:
    trial_id: str
    version: str
    title: str
    diagnoses: tuple[str, ...]
    cd22_min_percent: float
    excluded_mutations: tuple[str, ...]
    cycle_days: int
    max_cycles: int
    bosutinib_days: int
    dose_levels_mg: tuple[int, ...]
    dose_reduction_step_mg: int
    ino_days: tuple[int, ...]
    ino_window_days: int
    ino_day1_mg_m2: float
    ino_later_days_mg_m2: float
    responder_ino_mg_m2: float
    ino_max_per_cycle_mg_m2: float
    qualifying_responses: tuple[str, ...]
    qualifying_cytogenetic: tuple[str, ...]
    qualifying_mrd: tuple[str, ...]
    response_rank: tuple[str, ...]
    follow_up_days: int
    follow_up_interval_days: int
    follow_up_tolerance_days: int
    dlt_window_days: int
    dlt_min_grade: int
    dlt_attributions: tuple[str, ...]
    dlt_non_hematologic_only: bool
    cohort_size: int
    expanded_cohort_size: int
    max_dlts_tolerated: int

    @classmethod
    def from_mapping(cls, doc: dict[str, Any]) -> Protocol:
        try:
            p, el, tr, ino = doc["protocol"], doc["eligibility"], doc["treatment"], doc["ino"]
            rs, fu, dlt, esc = doc["response"], doc["follow_up"], doc["dlt"], doc["escalation"]
            protocol = cls(
                trial_id=p["trial_id"],
                version=str(p["version"]),
                title=p["title"],
                diagnoses=tuple(el["diagnoses"]),
                cd22_min_percent=float(el["cd22_min_percent"]),
                excluded_mutations=tuple(el["excluded_mutations"]),
                cycle_days=int(tr["cycle_days"]),
                max_cycles=int(tr["max_cycles"]),
                bosutinib_days=int(tr["bosutinib_days"]),
                dose_levels_mg=tuple(int(d) for d in tr["dose_levels_mg"]),
                dose_reduction_step_mg=int(tr["dose_reduction_step_mg"]),
                ino_days=tuple(int(d) for d in ino["days"]),
                ino_window_days=int(ino["window_days"]),
                ino_day1_mg_m2=float(ino["day1_mg_m2"]),
                ino_later_days_mg_m2=float(ino["later_days_mg_m2"]),
                responder_ino_mg_m2=float(ino["responder_mg_m2"]),
                ino_max_per_cycle_mg_m2=float(ino["max_per_cycle_mg_m2"]),
                qualifying_responses=tuple(rs["qualifying_responses"]),
                qualifying_cytogenetic=tuple(rs["qualifying_cytogenetic"]),
                qualifying_mrd=tuple(rs["qualifying_mrd"]),
                response_rank=tuple(rs["response_rank"]),
                follow_up_days=int(fu["follow_up_days"]),
                follow_up_interval_days=int(fu["interval_days"]),
                follow_up_tolerance_days=int(fu["tolerance_days"]),
                dlt_window_days=int(dlt["window_days"]),
                dlt_min_grade=int(dlt["min_grade"]),
                dlt_attributions=tuple(dlt["attributions"]),
                dlt_non_hematologic_only=bool(dlt["non_hematologic_only"]),
                cohort_size=int(esc["cohort_size"]),
                expanded_cohort_size=int(esc["expanded_cohort_size"]),
                max_dlts_tolerated=int(esc["max_dlts_tolerated"]),
            )
        except KeyError as missing:
            raise ProtocolError(f"protocol definition lacks {missing}") from None
        protocol.check()
        return protocol

    def check(self) -> None:
        if sorted(self.dose_levels_mg) != list(self.dose_levels_mg) or not self.dose_levels_mg:
            raise ProtocolError("dose_levels_mg must be a non-empty ascending list")
        if self.expanded_cohort_size < self.cohort_size:
            raise ProtocolError("expanded_cohort_size must be at least cohort_size")
        if 1 not in self.ino_days:
            raise ProtocolError("InO days must include day 1")

    @property
    def ino_last_day(self) -> int:
        return max(self.ino_days)


def available_versions() -> list[str]:
    names = [r.name for r in resources.files(__package__).iterdir()]
    versions = [n[len(FILE_PREFIX) : -len(".toml")] for n in names if n.startswith(FILE_PREFIX) and n.endswith(".toml")]
    return sorted(versions, key=lambda v: tuple(int(x) for x in v.split(".")))


def load_protocol(version: str | None = None) -> Protocol:
    """The protocol definition of the given version, or the newest one shipped."""
    versions = available_versions()
    if not versions:
        raise ProtocolError("no protocol definition is shipped with the package")
    chosen = version or versions[-1]
    if chosen not in versions:
        raise ProtocolError(f"protocol version {chosen!r} is unknown; shipped: {', '.join(versions)}")
    text = (resources.files(__package__) / f"{FILE_PREFIX}{chosen}.toml").read_text(encoding="utf-8")
    return Protocol.from_mapping(tomllib.loads(text))
