"""The feed never lets a consumer skip an event: not past an open transaction, not past a rolled-back one."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from ledger.application import TrialLedger
from ledger.bootstrap import Settings, build_ledger
from ledger.domain.values import Actor, Role
from ledger.interfaces.schemas import parse_command
from ledger.projections.projector import Projector
from ledger.streams.feed import Feed

COORDINATOR = Actor("coord.lee", Role.COORDINATOR)


def enroll(patient_id: str, stratum: str) -> Any:
    return parse_command({
        "command": "enroll_patient", "patient_id": patient_id, "enrolled_on": "2016-03-01", "diagnosis": "PH_POS_ALL", "phase": "I",
        "stratum": stratum, "cd22_percent": 50.0, "abl_mutations": [], "bsa_m2": 1.8,
    })


def test_an_event_committed_after_a_rolled_back_transaction_is_read_past_the_gap(ledger: TrialLedger, database_url: str) -> None:
    """A transaction that drew positions and rolled back while another writer waited for the lock."""
    ledger.handle(enroll("F001", "a"), COORDINATOR)
    feed = Feed(ledger)
    consumer_position = feed.page(0, 1000).next_after

    inside, release = threading.Event(), threading.Event()
    stalled = build_ledger(Settings(database_url=database_url, user="stalled"), create=False)
    original_save = stalled.store.save

    def save_then_stall(*aggregates: Any, **kwargs: Any) -> Any:
        original_save(*aggregates, **kwargs)  # its positions are drawn now, uncommitted
        inside.set()
        release.wait(30)
        raise RuntimeError("the writer fails before committing")

    stalled.store.save = save_then_stall  # type: ignore[method-assign]
    failures: list[BaseException] = []

    def stalled_write() -> None:
        try:
            stalled.handle(enroll("F002", "b"), COORDINATOR)
        except RuntimeError as error:
            failures.append(error)

    other = build_ledger(Settings(database_url=database_url, user="other"), create=False)
    committed: list[list[str]] = []
    first = threading.Thread(target=stalled_write)
    second = threading.Thread(target=lambda: committed.append(other.handle(enroll("F003", "c"), COORDINATOR).entry_ids))
    first.start()
    assert inside.wait(30)
    second.start()
    time.sleep(0.5)
    assert second.is_alive(), "a second writer committed while the first held the write lock"
    assert feed.page(consumer_position, 1000).events == []  # nothing uncommitted is shown, and the position stays
    assert feed.page(consumer_position, 1000).next_after == consumer_position
    release.set()
    first.join(30)
    second.join(30)
    stalled.close()
    other.close()
    assert failures and committed
    page = feed.page(consumer_position, 1000)
    assert [e["entry_id"] for e in page.events] == committed[0]
    assert {e["patient_id"] for e in page.events} - {None} == {"F003"}
    if ledger.engine.dialect.name == "postgresql":  # the sequence burnt the rolled-back positions: a real gap
        assert page.events[0]["position"] > consumer_position + 1
    one_by_one, after = [], consumer_position  # pages of one position: the gap's come back empty, and move on
    while (small := feed.page(after, 1)).next_after != after:
        one_by_one += small.events
        after = small.next_after
    assert one_by_one == page.events


@pytest.mark.parametrize("limit", [1, 2, 1000])
def test_paging_with_any_limit_reads_each_event_once_in_order(ledger: TrialLedger, limit: int) -> None:
    for n in range(4):
        ledger.handle(enroll(f"G00{n}", f"s{n}"), COORDINATOR)
    feed = Feed(ledger)
    everything = feed.page(0, 1000).events
    seen: list[int] = []
    after = 0
    while True:
        page = feed.page(after, limit)
        seen += [e["position"] for e in page.events]
        if page.next_after == after:
            break
        after = page.next_after
    assert seen == [e["position"] for e in everything] and len(everything) >= 8


def test_positions_are_the_same_after_a_rebuild_and_a_restart(ledger: TrialLedger, database_url: str) -> None:
    for n in range(3):
        ledger.handle(enroll(f"R00{n}", f"r{n}"), COORDINATOR)
    before = Feed(ledger).page(0, 1000).events
    Projector(ledger).rebuild()
    restarted = build_ledger(Settings(database_url=database_url), create=False)
    after = Feed(restarted).page(0, 1000).events
    restarted.close()
    assert after == before and len(before) >= 6
