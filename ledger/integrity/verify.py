"""``ledger verify``: recompute the hash chain from the stored events and compare.

One pass in commit order over the events joined to their index rows (plain driver cursors,
pages of ``PAGE`` events), recomputing each record's digest, the ledger chain and each
aggregate's chain, and checking each aggregate's versions follow one another. Then: index
entries whose event is gone, the chain's head, and optionally a signed checkpoint. The first
problem (lowest position) is reported with the reason.

What each tampering looks like:

- a changed payload byte, timestamp, user or date (in the event or its index row): the
  record's digest changes, so the stored link at that position no longer matches;
- a deleted event: its index entry is left without an event, or (if that went too) the next
  event's link no longer follows, and its aggregate's versions skip one;
- an inserted event: it has no index entry, or its link does not follow from the one before;
- two events swapped: the links at both positions no longer match;
- a truncated tail: the chain's head names a later position than the last event;
- a rewrite that recomputed every link and the head: only a checkpoint kept outside the
  system catches it (``ledger seal``; ``ledger verify --checkpoint``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, select

from ledger.integrity.chain import GENESIS, SEPARATOR, link, record_digest
from ledger.integrity.checkpoint import Checkpoint
from ledger.persistence import ChainHead

PAGE = 10_000
_FIRST = (0, GENESIS)  # an aggregate's state before its first event: version 0, the genesis link
Progress = Callable[[int, int], None]  # (position reached, last position)



def _select(dialect: str) -> str:
    """Each event with its index row: the aggregate id's 16 bytes, the index text (``chain.index_text``, NULL without
    an index row) formatted by the database, the stored links, and whether the row names the event's record and version."""
    if dialect == "sqlite":
        aggregate, day, time = "e.originator_id", "x.occurred_on", "replace(x.recorded_at, ' ', 'T') || '+00:00'"
        same = "lower(hex(e.originator_id)) = replace(x.aggregate_id, '-', '')"
        separator = "char(31)"
    else:
        aggregate, day = "uuid_send(e.originator_id)", "to_char(x.occurred_on, 'YYYY-MM-DD')"
        time = "to_char(x.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '+00:00'"
        same = "x.aggregate_id = e.originator_id::text"
        separator = "chr(31)"
    index = f" || {separator} || ".join((
        "x.entry_id", "x.kind", day, time, "x.recorded_by", "x.role",
        *(f"coalesce(x.{name}, '')" for name in ("command_id", "patient_id", "stratum", "amends_entry_id")),
    ))
    return (f"SELECT e.id, {aggregate}, e.originator_version, e.topic, e.state, {index}, x.chain_hash, x.aggregate_hash, "
            f"CASE WHEN {same} AND x.aggregate_version = e.originator_version THEN 1 ELSE 0 END "
            "FROM ledger_events e LEFT JOIN ledger_entries x ON x.position = e.id")


@dataclass(frozen=True)
class Problem:
    position: int
    why: str


@dataclass
class VerifyReport:
    events: int = 0
    position: int = 0  # the last event's
    chain_hash: str = GENESIS.hex()  # recomputed up to ``position``
    problems: list[Problem] = field(default_factory=list)  # the first found by each check, lowest position first
    checkpoint: dict[str, Any] | None = None

    @property
    def intact(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        first = self.problems[0] if self.problems else None
        return {
            "intact": self.intact,
            "events": self.events,
            "position": self.position,
            "chain_hash": self.chain_hash,
            "first_problem": {"position": first.position, "why": first.why} if first else None,
            "problems": [{"position": p.position, "why": p.why} for p in self.problems],
            "checkpoint": self.checkpoint,
        }


def verify(engine: Engine, checkpoint: Checkpoint | None = None, on_progress: Progress | None = None) -> VerifyReport:
    """Verify the events up to the chain's head as read first, so writers committing meanwhile are no false alarm."""
    report = VerifyReport()
    head = _head(engine)
    chain = GENESIS
    tips: dict[bytes, tuple[int, bytes]] = {}  # aggregate id → (version, last link)
    found: Problem | None = None
    reached_checkpoint = False
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        end = _last_event(cursor)
        stop = end if head is None else head.position
        events, position = 0, 0
        for rows in _prefetched(pages(cursor, engine.dialect.name, stop)):
            events += len(rows)
            if found is not None:  # count the rest; the first problem is reported
                position = rows[-1][0]
                continue
            for position, aggregate, version, topic, state, index, stored_chain, stored_tip, indexed_here in rows:
                if index is None:
                    found = Problem(position, "an event with no entry in the index: it was not recorded by the ledger (inserted?)")
                    break
                aggregate_id = bytes(aggregate)
                digest = record_digest(position, aggregate_id, version, topic, bytes(state), index)
                previous_chain, chain = chain, link(chain, digest)
                last_version, last_tip = tips.get(aggregate_id, _FIRST)
                tip = link(last_tip, digest)
                tips[aggregate_id] = (version, tip)
                entry_id = index.split(SEPARATOR, 1)[0]
                if stored_chain != chain.hex():
                    found = _check_link(position, entry_id, previous_chain, chain, digest, stored_chain)
                elif version != last_version + 1:
                    found = Problem(position, f"entry {entry_id} is version {version} of its record, after version {last_version}: "
                                              "an event was removed or inserted in between")
                elif stored_tip != tip.hex():
                    found = Problem(position, f"entry {entry_id}: its record's own chain does not match (an earlier event of the record changed)")
                elif not indexed_here:
                    found = Problem(position, f"entry {entry_id}: its index row names another record or version than its event "
                                              f"(version {version} of record {UUID(bytes=aggregate_id)}): the index was changed")
                elif checkpoint is not None and position == checkpoint.position:
                    reached_checkpoint = True
                    if chain.hex() != checkpoint.chain_hash:
                        found = Problem(position, "the chain at the checkpoint's position differs from the checkpoint: the ledger was rewritten")
                if found is not None:
                    chain = previous_chain
                    break
            else:
                report.chain_hash = chain.hex()
            position = rows[-1][0]
            if on_progress is not None:
                on_progress(position, stop)
        report.events, report.position = events, position
        if found is not None:
            report.chain_hash = chain.hex()  # up to the last event that verified
            report.problems.append(found)
        orphan = _entry_without_event(cursor, stop)
        if orphan is not None:
            report.problems.append(orphan)
        if not report.problems:
            report.problems += _head_problems(head, report, _last_event(cursor), _head(engine))
    finally:
        raw.close()
    if checkpoint is not None:
        report.checkpoint = {"position": checkpoint.position, "chain_hash": checkpoint.chain_hash, "sealed_at": checkpoint.sealed_at,
                             "extends": reached_checkpoint and not report.problems}
        if not reached_checkpoint and not report.problems:
            report.problems.append(Problem(checkpoint.position, f"the ledger has no event at the checkpoint's position {checkpoint.position}: "
                                                                "it was truncated or rewritten"))
    report.problems.sort(key=lambda p: p.position)
    return report


def _head_problems(head: ChainHead | None, report: VerifyReport, last: int, head_now: ChainHead | None) -> list[Problem]:
    """The head read before the pass against the chain recomputed, and the events after it against the head read after."""
    if head is None:
        if report.events == 0 and last == 0:
            return []
        return [Problem(1, "the chain's head (table ledger_chain_head) is missing: it was deleted outside the ledger")]
    if (head.position, head.chain_hash) != (report.position, report.chain_hash):
        if head.position > report.position:
            why = f"the chain's head records position {head.position} but the ledger ends at {report.position}: events were removed from the end"
        else:
            why = (f"the chain's head records position {head.position}, hash {head.chain_hash[:16]}…; the chain recomputed there is "
                   f"{report.chain_hash[:16]}…: the head or the last events were changed outside the ledger")
        return [Problem(min(head.position, report.position) + 1, why)]
    # the ledger moves its head with every commit: events beyond the head as read after the pass were not committed by it
    covered = head_now.position if head_now is not None else head.position
    if last > covered:
        return [Problem(covered + 1, f"events after the chain's head (position {covered}) up to {last}: added outside the ledger")]
    return []


def _check_link(position: int, entry_id: str, previous: bytes, recomputed: bytes, digest: bytes, stored: str | None) -> Problem | None:
    if stored == recomputed.hex():
        return None
    if stored is None:
        return Problem(position, f"entry {entry_id} has no chain link: it was not recorded by the ledger (inserted?)")
    # the stored link may follow from the stored record but not from the events before it
    return Problem(position, f"entry {entry_id}: the event or its index row is not what was recorded (changed, swapped), or an event before it "
                             "was removed or inserted: its chain link does not match")


def _last_event(cursor: Any) -> int:
    cursor.execute("SELECT max(id) FROM ledger_events")
    return int(cursor.fetchone()[0] or 0)


def pages(cursor: Any, dialect: str, stop: int | None = None) -> Iterator[list[tuple[Any, ...]]]:
    """Every event with its index row (``_select``), in commit order, a page at a time; up to ``stop`` if given."""
    mark = "?" if dialect == "sqlite" else "%s"
    sql = f"{_select(dialect)} WHERE e.id > {mark}" + (f" AND e.id <= {int(stop)}" if stop is not None else "") + f" ORDER BY e.id LIMIT {PAGE}"
    position = 0
    while True:
        cursor.execute(sql, (position,))
        rows = cursor.fetchall()
        if not rows:
            return
        yield rows
        position = rows[-1][0]


def _prefetched(pages: Iterator[list[tuple[Any, ...]]]) -> Iterator[list[tuple[Any, ...]]]:
    """The pages, the next one fetched by a second thread while this one's are hashed (drivers release the GIL while they wait)."""
    with ThreadPoolExecutor(max_workers=1) as fetcher:
        ahead = fetcher.submit(next, pages, None)
        try:
            while (page := ahead.result()) is not None:
                ahead = fetcher.submit(next, pages, None)
                yield page
        finally:
            ahead.cancel()
            with contextlib.suppress(Exception):
                ahead.result()


def _entry_without_event(cursor: Any, stop: int) -> Problem | None:
    cursor.execute(
        "SELECT x.position, x.entry_id FROM ledger_entries x LEFT JOIN ledger_events e ON e.id = x.position "
        f"WHERE e.id IS NULL AND x.position <= {int(stop)} ORDER BY x.position LIMIT 1"
    )
    row = cursor.fetchone()
    if row is None:
        return None
    return Problem(row[0], f"entry {row[1]} is in the index but its event is gone: it was deleted")


def _head(engine: Engine) -> ChainHead | None:
    with engine.connect() as connection:
        row = connection.execute(select(ChainHead.position, ChainHead.chain_hash).where(ChainHead.id == 1)).first()
    return None if row is None else ChainHead(id=1, position=row.position, chain_hash=row.chain_hash, entries=0)
