"""The HTTP API's own marshmallow schemas: query parameters, errors, the feed's documents.

Commands use the schemas of ``ledger.interfaces.schemas`` (the same validation as the CLI and
the import file); answers use those of ``ledger.interfaces.documents``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ledger.interfaces.documents import JsonValue, Ordered
from ledger.interfaces.schemas import IDENTIFIER
from ledger.streams.feed import DEFAULT_LIMIT, MAX_LIMIT, event_types

MAX_WAIT_SECONDS = 60.0


class Query(Schema):
    class Meta:
        unknown = RAISE  # a misspelt parameter is an error, never silently ignored


class Instant(fields.AwareDateTime):
    """A time with offset that is also a time in UTC: ``0001-01-01T00:00:00+01:00`` is not (it falls before year 1)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            moment.astimezone(UTC)  # what the database compares it as
        except OverflowError:
            raise ValidationError("must be a time between years 1 and 9999 in UTC") from None
        return moment


class TimeQuery(Query):
    as_of = Instant(load_default=None, metadata={"description": "what the ledger knew then (transaction time, ISO 8601 with offset)"})
    valid_on = fields.Date(load_default=None, metadata={"description": "the clinical state on that date (default today)"})


class StratumQuery(TimeQuery):
    stratum = fields.String(load_default=None, validate=IDENTIFIER, metadata={"description": "only this stratum (default all)", "example": "default"})


class DecisionsQuery(Query):
    stratum = fields.String(load_default=None, validate=IDENTIFIER, metadata={"description": "only this stratum (default all)", "example": "default"})


class AuditQuery(TimeQuery):
    patient = fields.String(load_default=None, validate=IDENTIFIER, metadata={"description": "only this patient's entries", "example": "S001"})
    limit = fields.Integer(load_default=None, validate=validate.Range(min=1, max=100_000))


class EventTypes(fields.List):  # type: ignore[type-arg]
    """``type=A&type=B`` or ``type=A,B``: known event names only."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(fields.String(validate=validate.Length(min=1, max=64)), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any | None]:
        names = [name for item in super()._deserialize(value, attr, data, **kwargs) for name in str(item).split(",") if name]
        unknown = sorted(set(names) - event_types())
        if unknown:
            raise ValidationError(f"unknown event type {unknown[0]!r}")
        return list[Any | None](names)


class FeedFilters(Query):
    after = fields.Integer(load_default=0, validate=validate.Range(min=0), metadata={"description": "the last position the consumer has (0: from the start)"})
    type = EventTypes(load_default=list, metadata={"description": "only these event types (repeat, or separate with commas)"})
    patient = fields.String(load_default=None, validate=IDENTIFIER, metadata={"description": "only this patient's events", "example": "S001"})


class FeedQuery(FeedFilters):
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(1, MAX_LIMIT))
    wait = fields.Float(
        load_default=0.0, validate=validate.Range(0, MAX_WAIT_SECONDS),
        metadata={"description": "seconds to wait for a first event when there is none yet (long polling)"},
    )


class StreamQuery(FeedFilters):
    heartbeat = fields.Float(
        load_default=15.0, validate=validate.Range(0.05, 300),
        metadata={"description": "seconds without an event before a heartbeat is sent"},
    )


class FeedEventDocument(Ordered):
    position = fields.Integer(metadata={"description": "the event's place in commit order; never changes"})
    entry_id = fields.String()
    type = fields.String()
    patient_id = fields.String(allow_none=True)
    stratum = fields.String(allow_none=True)
    occurred_on = fields.Date()
    recorded_at = fields.AwareDateTime()
    recorded_by = fields.String()
    role = fields.String()
    reason = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    data = JsonValue(metadata={"type": "object"})


class FeedDocument(Ordered):
    events = fields.List(fields.Nested(FeedEventDocument))
    next_after = fields.Integer(metadata={"description": "the position to ask for next (after=)"})


class ViolationItem(Ordered):
    rule_id = fields.String()
    message = fields.String()


class ErrorDocument(Ordered):
    code = fields.Integer()
    status = fields.String()
    message = fields.String()
    rule_id = fields.String(allow_none=True)
    violations = fields.List(fields.Nested(ViolationItem))
    errors = fields.Dict(keys=fields.String(), values=fields.String(), metadata={"description": "each bad field and what is wrong with it"})


class HealthDocument(Ordered):
    ok = fields.Boolean()
    head = fields.Integer(allow_none=True)
    secured = fields.Boolean(allow_none=True)
    message = fields.String(allow_none=True)


class AuditDocument(Ordered):
    entries = fields.List(fields.Dict(), metadata={"description": "the audit trail's rows, as `ledger audit --json` lists them"})
    as_of = fields.AwareDateTime(allow_none=True)
    valid_on = fields.Date(allow_none=True)
