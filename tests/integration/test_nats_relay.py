"""The relay on a real NATS JetStream server, from SQLite and PostgreSQL: what it publishes, and where it resumes.

Each test has a stream and subject prefix of its own (``relay_target``), deleted afterwards.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from nats.js import JetStreamContext
from sqlalchemy import text

from ledger.application import TrialLedger
from ledger.bootstrap import Settings, build_ledger
from ledger.domain.values import Actor
from ledger.interfaces.importer import import_file
from ledger.streams import jetstream
from ledger.streams.feed import Feed
from ledger.streams.relay import JetStreamRelay, RelayReport, RelaySettings, StreamUnusable
from tests.conftest import RelayTarget
from tests.jetstream_probes import run, stored_messages

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "one-patient.jsonl"


def relay_once(ledger: TrialLedger, target: RelayTarget, page_size: int = 10) -> RelayReport:
    settings = RelaySettings(url=target.url, stream=target.stream, prefix=target.prefix, page_size=page_size)
    return asyncio.run(JetStreamRelay(Feed(ledger), settings, jetstream.connect).run(asyncio.Event(), once=True))


def feed_events(ledger: TrialLedger) -> list[dict[str, Any]]:
    return list(Feed(ledger).events())


def record(ledger: TrialLedger, actor: Actor, tmp_path: Path, *commands: dict[str, Any]) -> None:
    path = tmp_path / f"commands-{len(list(tmp_path.iterdir()))}.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in commands))
    assert import_file(ledger, path, actor).ok


def enrollment(patient_id: str) -> dict[str, Any]:
    return {"command": "enroll_patient", "patient_id": patient_id, "enrolled_on": "2016-03-01", "diagnosis": "PH_POS_ALL", "phase": "I",
            "stratum": "later", "cd22_percent": 40.0, "abl_mutations": [], "bsa_m2": 1.9}


def test_a_run_once_publishes_every_event_in_feed_order_with_its_subject_and_headers(
    ledger: TrialLedger, coordinator: Actor, relay_target: RelayTarget, tmp_path: Path
) -> None:
    import_file(ledger, EXAMPLE, coordinator)
    record(ledger, coordinator, tmp_path, enrollment("S.002"))
    events = feed_events(ledger)

    report = relay_once(ledger, relay_target)

    stored = stored_messages(relay_target.url, relay_target.stream)
    assert report.published == len(events) == len(stored) > 40
    assert (report.position, report.sequence) == (events[-1]["position"], len(events))
    for sequence, (message, event) in enumerate(zip(stored, events, strict=True), start=1):
        assert message.sequence == sequence
        assert message.event == event
        assert message.headers["Nats-Msg-Id"] == event["entry_id"]
        assert message.headers["Ledger-Position"] == str(event["position"])
        assert message.headers["Ledger-Type"] == event["type"]
        assert message.headers["Nats-Expected-Last-Sequence"] == str(sequence - 1)
    subjects = {m.subject for m in stored}
    assert f"{relay_target.prefix}.PatientEnrolled.S001" in subjects
    assert f"{relay_target.prefix}.PatientEnrolled.S%2E002" in subjects
    assert f"{relay_target.prefix}.EscalationOpened.-" in subjects


def test_a_second_run_publishes_nothing_and_a_later_one_only_the_new_events(
    ledger: TrialLedger, coordinator: Actor, relay_target: RelayTarget, tmp_path: Path
) -> None:
    import_file(ledger, EXAMPLE, coordinator)
    first = relay_once(ledger, relay_target)

    again = relay_once(ledger, relay_target)
    assert (again.published, again.position, again.sequence) == (0, first.position, first.sequence)

    record(ledger, coordinator, tmp_path, enrollment("S002"), enrollment("S003"))
    later = relay_once(ledger, relay_target)
    events = feed_events(ledger)
    assert later.published == len(events) - first.published > 0
    assert [m.headers["Nats-Msg-Id"] for m in stored_messages(relay_target.url, relay_target.stream)] == [e["entry_id"] for e in events]


def test_a_stream_that_takes_other_subjects_is_refused(ledger: TrialLedger, coordinator: Actor, relay_target: RelayTarget) -> None:
    import_file(ledger, EXAMPLE, coordinator)

    async def make(js: JetStreamContext) -> None:
        await js.add_stream(name=relay_target.stream, subjects=[f"{relay_target.prefix}.orders.>"])

    run(relay_target.url, make)
    with pytest.raises(StreamUnusable, match="takes subjects"):
        relay_once(ledger, relay_target)
    assert stored_messages(relay_target.url, relay_target.stream) == []


def test_a_message_from_another_publisher_stops_the_relay(ledger: TrialLedger, coordinator: Actor, relay_target: RelayTarget) -> None:
    import_file(ledger, EXAMPLE, coordinator)
    relay_once(ledger, relay_target)

    async def intrude(js: JetStreamContext) -> None:
        await js.publish(f"{relay_target.prefix}.Intruder.-", b"{}")

    run(relay_target.url, intrude)
    with pytest.raises(StreamUnusable, match="only publisher"):
        relay_once(ledger, relay_target)


def test_a_stream_filled_from_another_ledger_is_refused(ledger: TrialLedger, coordinator: Actor, relay_target: RelayTarget, tmp_path: Path) -> None:
    other = build_ledger(Settings(database_url=f"sqlite:///{tmp_path / 'other.sqlite'}", user="tester"))
    try:
        import_file(other, EXAMPLE, coordinator)
        relay_once(other, relay_target)
    finally:
        other.close()
    import_file(ledger, EXAMPLE, coordinator)  # the same commands: the same positions, other entry ids

    with pytest.raises(StreamUnusable, match="another ledger"):
        relay_once(ledger, relay_target)


def test_the_consumer_example_in_the_docs_receives_every_event(ledger: TrialLedger, coordinator: Actor, relay_target: RelayTarget, tmp_path: Path) -> None:
    import_file(ledger, EXAMPLE, coordinator)
    relay_once(ledger, relay_target, page_size=100)
    section = (ROOT / "docs" / "streams.md").read_text().split("## Relay to NATS JetStream", 1)[1]
    script = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)  # type: ignore[union-attr]
    script = script.replace('"nats://127.0.0.1:4222"', repr(relay_target.url)).replace('"ledger.>"', repr(f"{relay_target.prefix}.>"))
    script = script.replace('stream="LEDGER"', f"stream={relay_target.stream!r}")
    (tmp_path / "consumer.py").write_text(script)

    consumer = subprocess.Popen([sys.executable, str(tmp_path / "consumer.py")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(30, consumer.kill)  # a consumer that prints too little must not hang the suite
    watchdog.start()
    try:
        assert consumer.stdout is not None
        lines = [consumer.stdout.readline() for _ in range(39)]
    finally:
        watchdog.cancel()
        consumer.kill()
        _, err = consumer.communicate(timeout=10)
    assert [line.split()[0] for line in lines] == [str(n) for n in range(1, 40)], err
    assert lines[0].split()[1:] == ["PatientEnrolled", "S001"]


def test_the_relay_reads_past_a_gap_wider_than_its_page(
    ledger: TrialLedger, coordinator: Actor, relay_target: RelayTarget, tmp_path: Path
) -> None:
    """Positions drawn by transactions that rolled back (PostgreSQL's sequence keeps them burnt) hold no event."""
    if ledger.engine.dialect.name != "postgresql":
        pytest.skip("SQLite draws the next position after the last committed one: it leaves no gaps")
    record(ledger, coordinator, tmp_path, enrollment("G001"))
    with ledger.engine.begin() as connection:
        sequence = connection.execute(text(f"SELECT pg_get_serial_sequence('{ledger.recorder.events_table_name}', 'id')")).scalar_one()
        connection.execute(text(f"SELECT nextval('{sequence}') FROM generate_series(1, 25)"))
    record(ledger, coordinator, tmp_path, enrollment("G002"))
    events = feed_events(ledger)
    assert events[-1]["position"] - events[0]["position"] > len(events) + 20  # the gap is there

    report = relay_once(ledger, relay_target, page_size=10)

    stored = stored_messages(relay_target.url, relay_target.stream)
    assert report.published == len(stored) == len(events)
    assert [m.event["entry_id"] for m in stored] == [e["entry_id"] for e in events]
