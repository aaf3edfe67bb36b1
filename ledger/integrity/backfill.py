"""Link entries recorded before the hash chain existed (Alembic revision 0005)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, update

from ledger.integrity.chain import GENESIS, SEPARATOR, link, record_digest
from ledger.integrity.verify import normalisers
from ledger.persistence import ChainHead, EntryRow

PAGE = 5_000


def link_existing(connection: Connection) -> None:
    """Compute every entry's links in commit order and write them, then the chain's head."""
    text_of_day, text_of_time, id_bytes = normalisers(connection.dialect.name)
    mark = "?" if connection.dialect.name == "sqlite" else "%s"
    cursor: Any = connection.connection.cursor()
    chain, tips, position, count = GENESIS, dict[bytes, bytes](), 0, 0
    entries = cast(Table, EntryRow.__table__)
    store = update(entries).where(entries.c.position == bindparam("at")).values(chain_hash=bindparam("c"), aggregate_hash=bindparam("a"))
    while True:
        cursor.execute(
            "SELECT e.id, e.originator_id, e.originator_version, e.topic, e.state, x.entry_id, x.kind, x.occurred_on, x.recorded_at, "
            "x.recorded_by, x.role, x.command_id, x.patient_id, x.stratum, x.amends_entry_id "
            f"FROM ledger_events e JOIN ledger_entries x ON x.position = e.id WHERE e.id > {mark} ORDER BY e.id LIMIT {PAGE}",
            (position,),
        )
        rows = cursor.fetchall()
        if not rows:
            break
        links = []
        for (at, aggregate, version, topic, state, entry_id, kind, occurred_on, recorded_at, recorded_by, role,
             command_id, patient_id, stratum, amends) in rows:
            index = SEPARATOR.join((entry_id, kind, text_of_day(occurred_on), text_of_time(recorded_at), recorded_by, role,
                                    command_id or "", patient_id or "", stratum or "", amends or ""))
            aggregate_id = id_bytes(aggregate)
            digest = record_digest(at, aggregate_id, version, topic, bytes(state), index)
            chain = link(chain, digest)
            tips[aggregate_id] = link(tips.get(aggregate_id, GENESIS), digest)
            links.append({"at": at, "c": chain.hex(), "a": tips[aggregate_id].hex()})
        connection.execute(store, links)
        position, count = rows[-1][0], count + len(rows)
    connection.execute(insert(cast(Table, ChainHead.__table__)).values(id=1, position=position, chain_hash=chain.hex(), entries=count))
