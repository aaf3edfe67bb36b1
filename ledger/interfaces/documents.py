"""Marshmallow schemas for the documents the ledger answers with (contract.md).

They fix the public JSON of ``patient show``, ``patient history`` and ``escalation show``:
names, order and formats (dates ``YYYY-MM-DD``, times ISO 8601 with offset).
"""

from __future__ import annotations

import json
from typing import Any

from marshmallow import Schema, fields

from ledger.encoding import plain


class JsonValue(fields.Field[Any]):
    """Any value of an event's data: dates and times as ISO 8601, vocabularies as their value."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return plain(value)


class Ordered(Schema):
    class Meta:
        ordered = True


class ToxicityDocument(Ordered):
    entry_id = fields.String()
    term = fields.String()
    grade = fields.Integer()
    dlt = fields.Boolean()
    onset_on = fields.Date()
    resolved_on = fields.Date(allow_none=True)


class FollowUpDocument(Ordered):
    visits = fields.Integer()
    missed = fields.Integer()
    next_due_on = fields.Date(allow_none=True)
    window_closes_on = fields.Date(allow_none=True)


class SignatureDocument(Ordered):
    entry_id = fields.String()
    signer = fields.String()
    printed_name = fields.String()
    meaning = fields.String()
    scope = fields.String()
    cycle = fields.Integer(allow_none=True)
    decision_entry_id = fields.String(allow_none=True)
    signed_at = fields.AwareDateTime()
    state_hash = fields.String()
    status = fields.String()
    invalidated_by = fields.String(allow_none=True)


class PatientDocument(Ordered):
    patient_id = fields.String()
    phase = fields.String()
    stratum = fields.String()
    diagnosis = fields.String()
    status = fields.String()
    dose_level_mg = fields.Integer(allow_none=True)
    current_dose_mg = fields.Integer(allow_none=True)
    cycle = fields.Integer()
    bosutinib_doses = fields.Integer()
    ino_infusions = fields.Integer()
    ino_total_mg_m2 = fields.Float()
    ino_schedule = fields.String()
    best_response = fields.String(allow_none=True)
    first_response_on = fields.Date(allow_none=True)
    mrd_negative = fields.Boolean()
    toxicities = fields.List(fields.Nested(ToxicityDocument))
    dlt = fields.Boolean()
    treatment_ended_on = fields.Date(allow_none=True)
    end_reason = fields.String(allow_none=True)
    follow_up = fields.Nested(FollowUpDocument)
    died_on = fields.Date(allow_none=True)
    deviations = fields.Integer()
    signatures = fields.List(fields.Nested(SignatureDocument))
    entries = fields.Integer()
    as_of = fields.AwareDateTime(allow_none=True)
    valid_on = fields.Date()


class HistoryEntryDocument(Ordered):
    entry_id = fields.String()
    position = fields.Integer(allow_none=True)
    type = fields.String()
    occurred_on = fields.Date()
    recorded_at = fields.AwareDateTime()
    recorded_by = fields.String()
    role = fields.String()
    reason = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    data = JsonValue()


class HistoryDocument(Ordered):
    patient_id = fields.String()
    entries = fields.List(fields.Nested(HistoryEntryDocument))


class LevelDocument(Ordered):
    dose_mg = fields.Integer()
    patients = fields.Integer()
    evaluable = fields.Integer()
    dlts = fields.Integer()
    decision = fields.String(allow_none=True)


class StratumDocument(Ordered):
    stratum = fields.String()
    status = fields.String()
    current_dose_mg = fields.Integer()
    next_action = fields.String(allow_none=True)
    next_action_why = fields.String(allow_none=True)
    mtd_mg = fields.Integer(allow_none=True)
    levels = fields.List(fields.Nested(LevelDocument))


class EscalationDocument(Ordered):
    strata = fields.List(fields.Nested(StratumDocument))
    as_of = fields.AwareDateTime(allow_none=True)
    valid_on = fields.Date()


class DecisionDocument(Ordered):
    entry_id = fields.String()
    stratum = fields.String()
    dose_mg = fields.Integer()
    decision = fields.String()
    mtd_mg = fields.Integer(allow_none=True)
    decided_on = fields.Date()
    recorded_at = fields.AwareDateTime()
    recorded_by = fields.String()
    role = fields.String()
    reason = fields.String(allow_none=True)
    basis = fields.List(fields.String())
    recommended_then = fields.String()
    recommended_now = fields.String()
    basis_now = fields.List(fields.String())
    basis_changed = fields.Boolean()
    signatures = fields.List(fields.Nested(SignatureDocument))


class DecisionsDocument(Ordered):
    decisions = fields.List(fields.Nested(DecisionDocument))


class ViolationDocument(Ordered):
    rule_id = fields.String()
    message = fields.String()


class OutcomeDocument(Ordered):
    command = fields.String()
    entry_ids = fields.List(fields.String())
    deviations = fields.List(fields.Nested(ViolationDocument))
    duplicate = fields.Boolean()


class ScheduleItemDocument(Ordered):
    patient_id = fields.String()
    action = fields.String()  # follow_up_missed, follow_up_completed or dlt_evaluation_completed
    visit = fields.Integer(allow_none=True)
    visit_due_on = fields.Date(allow_none=True)
    window_closes_on = fields.Date()
    due_on = fields.Date()  # the first day the scheduler records it: the day after the window closes
    overdue = fields.Boolean()
    command_id = fields.String()


class ScheduleDocument(Ordered):
    today = fields.Date()
    items = fields.List(fields.Nested(ScheduleItemDocument))


class SchedulerRunDocument(Ordered):
    due = fields.Integer()
    recorded = fields.Integer()
    duplicates = fields.Integer()
    refused = fields.Dict(keys=fields.String(), values=fields.String())
    command_ids = fields.List(fields.String())


def to_json(schema: Schema, document: Any) -> str:
    return json.dumps(schema.dump(document), indent=2, ensure_ascii=False)
