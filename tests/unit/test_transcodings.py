"""Dates and vocabularies survive the event store's JSON exactly, as their own types."""

from __future__ import annotations

from datetime import UTC, date, datetime

from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder

from ledger.domain.values import ENUMS, Attribution, Entry, Phase
from ledger.persistence import DateAsISO, EntryAsDict, EntryAsRow, EnumAsValue


def transcoder() -> JSONTranscoder:
    t = JSONTranscoder()
    t.register(DateAsISO())
    t.register(EntryAsDict())
    t.register(EntryAsRow())
    t.register(DatetimeAsISO())
    for enum in ENUMS:
        t.register(EnumAsValue(enum))
    return t


def test_a_date_comes_back_as_a_date_not_text() -> None:
    t = transcoder()
    assert t.decode(t.encode({"on": date(2016, 2, 29)})) == {"on": date(2016, 2, 29)}


def test_every_vocabulary_member_comes_back_as_itself() -> None:
    t = transcoder()
    members = [member for enum in ENUMS for member in enum]
    decoded = t.decode(t.encode(members))
    assert decoded == members
    assert all(type(a) is type(b) for a, b in zip(decoded, members, strict=True))


def test_an_entry_in_a_snapshot_round_trips_with_its_typed_data() -> None:
    t = transcoder()
    entry = Entry(
        entry_id="e1", kind="ToxicityReported", version=3, occurred_on=date(2016, 3, 10),
        recorded_at=datetime(2026, 1, 1, tzinfo=UTC), recorded_by="u", role="investigator", reason=None,
        source="EDC", protocol_version="1.0", command_id=None,
        data={"onset_on": date(2016, 3, 10), "attribution": Attribution.POSSIBLE, "phase": Phase.I},
    )

    encoded = t.encode([entry])
    assert b'"entry_row"' in encoded
    assert t.decode(encoded) == [entry]


def test_an_entry_in_a_snapshot_written_in_the_earlier_dictionary_form_still_reads() -> None:
    t = transcoder()
    entry = Entry(
        entry_id="e1", kind="CycleStarted", version=2, occurred_on=date(2016, 2, 2),
        recorded_at=datetime(2026, 1, 1, 9, 30, 15, 123456, tzinfo=UTC), recorded_by="u", role="coordinator", reason="late",
        source=None, protocol_version="1.0", command_id="c-1", data={"cycle": 1, "started_on": date(2016, 2, 2)},
    )
    earlier = JSONTranscoder()
    earlier.register(DateAsISO())
    earlier.register(EntryAsDict())
    earlier.register(DatetimeAsISO())
    encoded = earlier.encode([entry])
    assert b'"entry"' in encoded and b'"entry_row"' not in encoded
    assert t.decode(encoded) == [entry]
