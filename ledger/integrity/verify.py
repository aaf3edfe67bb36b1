"""``ledger verify``: recompute the hash chain from the stored events and compare.

One pass in commit order, up to the chain's head as read first: pages of ``PAGE`` events and
the index rows of the same positions (two range scans on plain driver cursors, the next page
fetched by a second thread while this one is hashed), recomputing each record's digest, the
ledger chain and each aggregate's chain, and checking each aggregate's versions follow one
another and each index row names its event's record and version. Then: index entries whose
event is gone, the chain's head, events beyond it, and optionally a signed checkpoint. The
first problem (lowest position) is reported with the reason.

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
from hashlib import sha256
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, select

from ledger.integrity.chain import GENESIS, SEPARATOR, record_digest
from ledger.integrity.checkpoint import Checkpoint
from ledger.persistence import ChainHead

PAGE = 5_000  # small enough that fetching the next page overlaps hashing this one
_FIRST = (0, GENESIS)  # an aggregate's state before its first event: version 0, the genesis link
Progress = Callable[[int, int], None]  # (position reached, last position)



def _queries(dialect: str) -> tuple[str, str]:
    """The events of a range of positions (the aggregate id as its 16 bytes), and their index rows with their
    text as ``chain.index_text`` makes it, formatted by the database. Two plain range scans of primary keys, merged
    by position here: no join whose plan depends on the tables' statistics."""
    mark = "?" if dialect == "sqlite" else "%s"
    if dialect == "sqlite":
        aggregate, day, time, separator = "originator_id", "occurred_on", "replace(recorded_at, ' ', 'T') || '+00:00'", "char(31)"
    else:
        aggregate, day, separator = "uuid_send(originator_id)", "to_char(occurred_on, 'YYYY-MM-DD')", "chr(31)"
        time = "to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '+00:00'"
    index = f" || {separator} || ".join((
        "entry_id", "kind", day, time, "recorded_by", "role",
        *(f"coalesce({name}, '')" for name in ("command_id", "patient_id", "stratum", "amends_entry_id")),
    ))
    events = f"SELECT id, {aggregate}, originator_version, topic, state FROM ledger_events WHERE id > {mark} AND id <= {mark} ORDER BY id"
    entries = (f"SELECT position, {index}, chain_hash, aggregate_hash, aggregate_id, aggregate_version FROM ledger_entries "
               f"WHERE position > {mark} AND position <= {mark}")
    return events, entries


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
        cursor = driver_cursor(raw, engine.dialect.name)
        end = last_event_position(cursor)
        stop = end if head is None else head.position
        events, position = 0, 0
        orphans: list[tuple[int, str]] = []
        for rows in _prefetched(pages(cursor, engine.dialect.name, stop, orphans)):
            events += len(rows)
            if found is not None:  # count the rest; the first problem is reported
                position = rows[-1][0]
                continue
            for position, aggregate_id, version, topic, state, index, stored_chain, stored_tip, indexed_here in rows:
                if index is None:
                    found = Problem(position, "an event with no entry in the index: it was not recorded by the ledger (inserted?)")
                    break
                digest = record_digest(position, aggregate_id, version, topic, state, index)
                previous_chain, chain = chain, sha256(chain + digest).digest()  # chain.link, inline: this loop is the cost of verify
                last_version, last_tip = tips.get(aggregate_id, _FIRST)
                tip = sha256(last_tip + digest).digest()
                tips[aggregate_id] = (version, tip)
                if (stored_chain == chain.hex() and version == last_version + 1 and stored_tip == tip.hex() and indexed_here
                        and (checkpoint is None or position != checkpoint.position)):
                    continue
                found = _problem(position, index, version, last_version, aggregate_id, previous_chain, chain, digest, stored_chain,
                                 stored_tip == tip.hex(), indexed_here, checkpoint)
                if checkpoint is not None and position == checkpoint.position:
                    reached_checkpoint = True
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
        if orphans:
            orphan, entry_id = min(orphans)
            report.problems.append(Problem(orphan, f"entry {entry_id} is in the index but its event is gone: it was deleted"))
        if not report.problems:
            report.problems += _head_problems(head, report, last_event_position(cursor), _head(engine))
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


def _problem(
    position: int, index: str, version: int, last_version: int, aggregate_id: bytes, previous: bytes, chain: bytes, digest: bytes,
    stored_chain: str | None, tip_matches: bool, indexed_here: bool, checkpoint: Checkpoint | None,
) -> Problem | None:
    """What is wrong with the event at ``position``, checks in order; ``None`` when it verifies (at a checkpoint's position)."""
    entry_id = index.split(SEPARATOR, 1)[0]
    if stored_chain != chain.hex():
        return _check_link(position, entry_id, previous, chain, digest, stored_chain)
    if version != last_version + 1:
        return Problem(position, f"entry {entry_id} is version {version} of its record, after version {last_version}: "
                                 "an event was removed or inserted in between")
    if not tip_matches:
        return Problem(position, f"entry {entry_id}: its record's own chain does not match (an earlier event of the record changed)")
    if not indexed_here:
        return Problem(position, f"entry {entry_id}: its index row names another record or version than its event "
                                 f"(version {version} of record {UUID(bytes=aggregate_id)}): the index was changed")
    if checkpoint is not None and position == checkpoint.position and chain.hex() != checkpoint.chain_hash:
        return Problem(position, "the chain at the checkpoint's position differs from the checkpoint: the ledger was rewritten")
    return None


def _check_link(position: int, entry_id: str, previous: bytes, recomputed: bytes, digest: bytes, stored: str | None) -> Problem | None:
    if stored == recomputed.hex():
        return None
    if stored is None:
        return Problem(position, f"entry {entry_id} has no chain link: it was not recorded by the ledger (inserted?)")
    # the stored link may follow from the stored record but not from the events before it
    return Problem(position, f"entry {entry_id}: the event or its index row is not what was recorded (changed, swapped), or an event before it "
                             "was removed or inserted: its chain link does not match")


def driver_cursor(raw: Any, dialect: str) -> Any:
    """The driver's cursor; psycopg's in binary mode, so the states' bytes arrive as they are rather than as hex text."""
    return raw.driver_connection.cursor(binary=True) if dialect == "postgresql" else raw.cursor()


def last_event_position(cursor: Any) -> int:
    cursor.execute("SELECT max(id) FROM ledger_events")
    return int(cursor.fetchone()[0] or 0)


def pages(cursor: Any, dialect: str, stop: int, orphans: list[tuple[int, str]] | None = None) -> Iterator[list[tuple[Any, ...]]]:
    """Every event up to ``stop`` with its index row, in commit order, a page at a time: ``(position, aggregate id bytes,
    version, topic, state, index text or None, chain link, record link, whether the index row names this event's record
    and version)``. Index rows with no event among them are added to ``orphans`` as (position, entry id)."""
    events_sql, entries_sql = _queries(dialect)
    names: dict[bytes, str] = {}  # aggregate id → its text in the index
    after = 0
    while after < stop:
        last = min(after + PAGE, stop)  # a range of positions, not a LIMIT: the plan needs no estimate of the rows left
        cursor.execute(events_sql, (after, last))
        events = cursor.fetchall()
        cursor.execute(entries_sql, (after, last))
        indexed = {row[0]: row for row in cursor.fetchall()}
        rows = []
        for position, aggregate, version, topic, state in events:
            aggregate = aggregate if type(aggregate) is bytes else bytes(aggregate)  # drivers give bytes; a view, copied
            x = indexed.pop(position, None)
            if x is None:
                rows.append((position, aggregate, version, topic, state, None, None, None, False))
                continue
            name = names.get(aggregate) or names.setdefault(aggregate, str(UUID(bytes=aggregate)))
            rows.append((position, aggregate, version, topic, state, x[1], x[2], x[3], x[4] == name and x[5] == version))
        if orphans is not None:
            orphans += [(position, x[1].split(SEPARATOR, 1)[0]) for position, x in indexed.items()]
        if rows:
            yield rows
        after = last


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


def _head(engine: Engine) -> ChainHead | None:
    with engine.connect() as connection:
        row = connection.execute(select(ChainHead.position, ChainHead.chain_hash).where(ChainHead.id == 1)).first()
    return None if row is None else ChainHead(id=1, position=row.position, chain_hash=row.chain_hash, entries=0)
