"""The tests' own view of NATS JetStream: is a server there, what a stream holds, a stream's removal.

Each function opens a connection of its own and closes it, so synchronous tests call them
through ``asyncio.run`` without sharing a loop with the code under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import nats
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

T = TypeVar("T")


@dataclass(frozen=True)
class Stored:
    """One message of a stream, as JetStream keeps it."""

    sequence: int
    subject: str
    headers: dict[str, str]
    data: bytes

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.data))


def run(url: str, use: Callable[[JetStreamContext], Awaitable[T]]) -> T:
    """``use`` a JetStream context on a connection of its own."""

    async def main() -> T:
        client = await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=1, reconnect_time_wait=0, connect_timeout=2)
        try:
            return await use(client.jetstream())
        finally:
            await client.close()

    return asyncio.run(main())


def jetstream_answers(url: str) -> None:
    """Raise unless a NATS server with JetStream answers at ``url``."""

    async def account(js: JetStreamContext) -> None:
        await js.account_info()

    run(url, account)


def stored_messages(url: str, stream: str) -> list[Stored]:
    """Every message of the stream, by sequence (an empty list for a stream that does not exist)."""

    async def read(js: JetStreamContext) -> list[Stored]:
        try:
            state = (await js.stream_info(stream)).state
        except NotFoundError:
            return []
        messages = []
        for sequence in range(state.first_seq or 1, state.last_seq + 1):
            raw = await js.get_msg(stream, sequence)
            messages.append(Stored(int(raw.seq or 0), str(raw.subject), dict(raw.headers or {}), bytes(raw.data or b"")))
        return messages

    return run(url, read)


def message_count(url: str, stream: str) -> int:
    async def count(js: JetStreamContext) -> int:
        try:
            return int((await js.stream_info(stream)).state.messages)
        except NotFoundError:
            return 0

    return run(url, count)


def delete_stream(url: str, stream: str) -> None:
    async def delete(js: JetStreamContext) -> None:
        with contextlib.suppress(NotFoundError):  # never made, or deleted by the test
            await js.delete_stream(stream)

    run(url, delete)
