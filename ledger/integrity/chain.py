"""The hash chain: each stored event bound to every event before it, in commit order.

For the event at position ``n``, ``record n`` is a canonical byte encoding of the event as
stored and of its row in the entry index (so the times, users and dates that queries read
are bound too), and

    digest n        = SHA-256(record n)
    chain link n    = SHA-256(chain link of the previous event ‖ digest n)
    aggregate link  = SHA-256(aggregate link of the aggregate's previous event ‖ digest n)

where the predecessor of a first link is 32 zero bytes. ``record n`` is

    position      8 bytes, big-endian
    aggregate id  16 bytes (the UUID's bytes)
    version       8 bytes, big-endian
    topic         4-byte big-endian length, then UTF-8
    state         4-byte big-endian length, then the stored bytes
    index         4-byte big-endian length, then UTF-8 of the index fields joined by U+001F:
                  entry id, kind, occurred_on (YYYY-MM-DD), recorded_at (UTC,
                  YYYY-MM-DDTHH:MM:SS.ffffff+00:00), recorded_by, role, command id,
                  patient id, stratum, amended entry id (absent values as empty text)

The links are stored as lowercase hex beside each entry (``ledger_entries.chain_hash`` and
``aggregate_hash``), the head of the chain in ``ledger_chain_head``. An auditor can recompute
all of it from the two tables with nothing but SHA-256 (docs/integrity.md).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

GENESIS = bytes(32)
INDEX_FIELDS = (
    "entry_id", "kind", "occurred_on", "recorded_at", "recorded_by", "role", "command_id", "patient_id", "stratum", "amends_entry_id",
)
SEPARATOR = "\x1f"
_HEAD = struct.Struct(">Q16sQ")
_LENGTH = struct.Struct(">I").pack
_sha256 = hashlib.sha256


def record_digest(position: int, aggregate_id: bytes, version: int, topic: str, state: bytes, index: str) -> bytes:
    """SHA-256 of the canonical encoding of one stored event and its index row (``index_text``)."""
    index_bytes = index.encode()
    return _sha256(
        b"".join((
            _HEAD.pack(position, aggregate_id, version),
            _topic_field(topic),
            _LENGTH(len(state)), state,
            _LENGTH(len(index_bytes)), index_bytes,
        ))
    ).digest()


@cache
def _topic_field(topic: str) -> bytes:
    """The topic's length and UTF-8 bytes (a ledger has a few dozen topics)."""
    encoded = topic.encode()
    return _LENGTH(len(encoded)) + encoded


def link(previous: bytes, digest: bytes) -> bytes:
    return _sha256(previous + digest).digest()


def index_text(index: Mapping[str, Any]) -> str:
    """The index fields of one entry as they enter its record (values as Python objects)."""
    return SEPARATOR.join(_text(index[name]) for name in INDEX_FIELDS)


def utc_text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
