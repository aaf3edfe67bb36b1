"""Link entries recorded before the hash chain existed (Alembic revision 0005)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, update

from ledger.integrity.chain import GENESIS, link, record_digest
from ledger.integrity.verify import last_event_position, pages
from ledger.persistence import ChainHead, EntryRow


def link_existing(connection: Connection) -> None:
    """Compute every entry's links in commit order and write them, then the chain's head."""
    cursor: Any = connection.connection.cursor()
    chain, tips, position, count = GENESIS, dict[bytes, bytes](), 0, 0
    entries = cast(Table, EntryRow.__table__)
    store = update(entries).where(entries.c.position == bindparam("at")).values(chain_hash=bindparam("c"), aggregate_hash=bindparam("a"))
    last_event = last_event_position(cursor)
    for rows in pages(cursor, connection.dialect.name, last_event):
        links = []
        for at, aggregate, version, topic, state, index, *_ in rows:
            if index is None:  # not the ledger's: left unlinked, for verify to report
                continue
            aggregate_id = aggregate
            digest = record_digest(at, aggregate_id, version, topic, bytes(state), index)
            chain = link(chain, digest)
            tips[aggregate_id] = link(tips.get(aggregate_id, GENESIS), digest)
            links.append({"at": at, "c": chain.hex(), "a": tips[aggregate_id].hex()})
            position, count = at, count + 1
        if links:
            connection.execute(store, links)
    connection.execute(insert(cast(Table, ChainHead.__table__)).values(id=1, position=position, chain_hash=chain.hex(), entries=count))
