"""The read models' tables (SQLAlchemy 2): caches of the folds, rebuildable from the events.

``read_model_tables(suffix)`` defines every table under ``<name><suffix>``: the live tables
have no suffix; a rebuild fills ``<name>_rebuild`` tables and swaps them in. Secondary indexes
(``INDEXES``) are created on the live tables only, after a swap, so a rebuild's bulk load is
not slowed by them and index names never clash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Date, Float, Integer, MetaData, String, Table, Text

from ledger.persistence import UtcDateTime

PROJECTIONS = ("audit_trail", "patients")

#: tables per projection, in creation order
TABLES: dict[str, tuple[str, ...]] = {
    "audit_trail": ("rm_audit_trail",),
    "patients": ("rm_patients", "rm_toxicities", "rm_responses", "rm_dose_exposure", "rm_phase1_patients", "rm_escalation_decisions"),
}

#: (table, columns) of the secondary indexes of the live tables
INDEXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("rm_audit_trail", ("patient_id",)),
    ("rm_audit_trail", ("recorded_at",)),
    ("rm_audit_trail", ("entry_id",)),
    ("rm_patients", ("stratum", "phase")),
    ("rm_toxicities", ("patient_id",)),
    ("rm_responses", ("patient_id",)),
    ("rm_phase1_patients", ("stratum",)),
)


@dataclass(frozen=True)
class ReadModelTables:
    metadata: MetaData
    tables: dict[str, Table]

    def __getitem__(self, name: str) -> Table:
        return self.tables[name]

    def of(self, projection: str) -> list[Table]:
        return [self.tables[name] for name in TABLES[projection]]


def read_model_tables(suffix: str = "") -> ReadModelTables:
    md = MetaData()

    def table(name: str, *columns: Column[Any]) -> Table:
        return Table(name + suffix, md, *columns)

    tables = [
        table(
            "rm_audit_trail",
            Column("position", BigInteger, primary_key=True, autoincrement=False),
            Column("seq", Integer, primary_key=True, autoincrement=False),  # one row per corrected field
            Column("entry_id", String(64), nullable=False),
            Column("patient_id", String(64)),
            Column("stratum", String(64)),
            Column("event_type", String(64), nullable=False),
            Column("occurred_on", Date, nullable=False),
            Column("recorded_at", UtcDateTime(), nullable=False),
            Column("recorded_by", String(128), nullable=False),
            Column("role", String(32), nullable=False),
            Column("reason", Text),
            Column("source", Text),
            Column("protocol_version", String(32), nullable=False),
            Column("command_id", String(128)),
            Column("amends_entry_id", String(64)),
            Column("field", String(64)),
            Column("old_value", Text),
            Column("new_value", Text),
            Column("data", Text, nullable=False),  # the event's own fields, JSON
        ),
        table(
            "rm_patients",
            Column("patient_id", String(64), primary_key=True),
            Column("phase", String(4), nullable=False),
            Column("stratum", String(64), nullable=False),
            Column("diagnosis", String(64), nullable=False),
            Column("enrolled_on", Date, nullable=False),
            Column("status", String(16), nullable=False),  # before the follow-up year's end: see queries
            Column("dose_level_mg", Integer),
            Column("current_dose_mg", Integer),
            Column("cycle", Integer, nullable=False),
            Column("bosutinib_doses", Integer, nullable=False),
            Column("ino_infusions", Integer, nullable=False),
            Column("ino_total_mg_m2", Float, nullable=False),
            Column("best_response", String(8)),
            Column("first_response_on", Date),
            Column("mrd_negative", Boolean, nullable=False),
            Column("dlt", Boolean, nullable=False),
            Column("treatment_ended_on", Date),
            Column("end_reason", String(16)),
            Column("follow_up_visits", Integer, nullable=False),
            Column("follow_up_ends_on", Date),
            Column("lost_on", Date),  # lost to follow-up (revision 0004)
            Column("died_on", Date),
            Column("deviations", Integer, nullable=False),
            Column("entries", Integer, nullable=False),
        ),
        table(
            "rm_toxicities",
            Column("entry_id", String(64), primary_key=True),
            Column("patient_id", String(64), nullable=False),
            Column("term", String(200), nullable=False),
            Column("grade", Integer, nullable=False),
            Column("attribution", String(16), nullable=False),
            Column("onset_on", Date, nullable=False),
            Column("resolved_on", Date),
            Column("serious", Boolean, nullable=False),
            Column("hematologic", Boolean, nullable=False),
            Column("ctcae_version", String(16), nullable=False),
            Column("dose_limiting", Boolean, nullable=False),
            Column("dlt", Boolean, nullable=False),
        ),
        table(
            "rm_responses",
            Column("entry_id", String(64), primary_key=True),
            Column("patient_id", String(64), nullable=False),
            Column("assessed_on", Date, nullable=False),
            Column("response", String(8), nullable=False),
            Column("cytogenetic", String(16)),
            Column("mrd", String(16)),
            Column("mrd_level", Float),
            Column("qualifying", Boolean, nullable=False),
        ),
        table(
            "rm_dose_exposure",
            Column("patient_id", String(64), primary_key=True),
            Column("cycle", Integer, primary_key=True, autoincrement=False),
            Column("started_on", Date, nullable=False),
            Column("bosutinib_doses", Integer, nullable=False),
            Column("bosutinib_total_mg", Integer, nullable=False),
            Column("ino_infusions", Integer, nullable=False),
            Column("ino_total_mg_m2", Float, nullable=False),
            Column("ino_schedule", String(16), nullable=False),
        ),
        table(
            "rm_phase1_patients",
            Column("patient_id", String(64), primary_key=True),
            Column("stratum", String(64), nullable=False),
            Column("dose_mg", Integer, nullable=False),
            Column("cycle1_started_on", Date),
            Column("dlt_window_ends_on", Date),
            Column("enrolled_on", Date, nullable=False),
            Column("first_dlt_on", Date),  # onset of the first DLT that counts (DLT-WINDOW)
            Column("left_on", Date),  # end of treatment or death, whichever came first
        ),
        table(
            "rm_escalation_decisions",
            Column("entry_id", String(64), primary_key=True),
            Column("stratum", String(64), nullable=False),
            Column("decided_on", Date, nullable=False),
            Column("dose_mg", Integer, nullable=False),
            Column("decision", String(24), nullable=False),
            Column("mtd_mg", Integer),
            Column("recommended", String(24), nullable=False),
            Column("recorded_by", String(128), nullable=False),
            Column("recorded_at", UtcDateTime(), nullable=False),
        ),
        Table(
            "ledger_projections",
            md,
            Column("projection", String(64), primary_key=True),
            Column("position", BigInteger, nullable=False),  # the last event position applied
            Column("rebuilt_at", UtcDateTime()),
        ),
    ]
    return ReadModelTables(md, {t.name[: len(t.name) - len(suffix)] if suffix and t.name.endswith(suffix) else t.name: t for t in tables})
