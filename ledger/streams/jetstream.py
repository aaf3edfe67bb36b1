"""The relay's stream on NATS JetStream, through nats-py (the ``Broker`` of ``ledger.streams.relay``).

One connection, without the client's automatic reconnection: after any failure the relay
connects again and reads where the stream ends before it sends anything, so no message
buffered for a lost connection is ever sent behind its back. A page of messages goes out
without waiting for each acknowledgement; the acknowledgements come back on an inbox of the
broker's own, matched by a token in the reply subject. (nats-py's own ``publish_async`` is not
used: in 2.16 a message JetStream refuses leaves its future waiting for ever.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import APIError, BadRequestError, NotFoundError, ServiceUnavailableError

from ledger.streams.relay import (
    ACK_WAIT,
    HEADER_EXPECTED_SEQUENCE,
    HEADER_MSG_ID,
    HEADER_POSITION,
    Ack,
    BrokerUnavailable,
    Mark,
    Message,
    Outcome,
    Refusal,
    RelaySettings,
    StreamUnusable,
    shown,
)

CONNECT_TIMEOUT = 5
_NAME_IN_USE = 10058  # JetStream's error code: a stream of that name exists (made since we looked)
_CONNECTION_ERRORS = (NatsError, OSError, TimeoutError)


async def connect(settings: RelaySettings) -> NatsBroker:
    """A connection to the servers of ``settings.url``; ``BrokerUnavailable`` when none answers."""
    broker: NatsBroker | None = None
    failures: list[Exception] = []  # the client's reports while connecting: why no server would do

    async def failed(error: Exception) -> None:
        if broker is None:
            failures.append(error)

    async def closed() -> None:
        if broker is not None:
            broker.fail_pending()

    try:
        client = await nats.connect(
            [url.strip() for url in settings.url.split(",")],
            name="ledger relay",
            allow_reconnect=False,
            max_reconnect_attempts=1,  # connecting tries each server twice, at once: the client's least (its default: 60 times, 2 s apart)
            reconnect_time_wait=0,  # while following, the relay waits between attempts itself
            connect_timeout=CONNECT_TIMEOUT,
            error_cb=failed,  # once connected, the same failures reach the relay as failed calls
            closed_cb=closed,
        )
    except _CONNECTION_ERRORS as error:
        why = _describe(failures[-1] if failures else error)
        raise BrokerUnavailable(f"cannot connect to NATS at {shown(settings.url)}: {why}") from error
    broker = NatsBroker(client, settings)
    try:
        with _talking_to(settings.url):
            await client.subscribe(f"{broker.inbox}.*", cb=broker.on_reply)
    except BaseException:
        await broker.close()
        raise
    return broker


class NatsBroker:
    """The relay's stream on one connection to NATS."""

    def __init__(self, client: Client, settings: RelaySettings) -> None:
        self.client = client
        self.js = client.jetstream()
        self.settings = settings
        self.inbox = client.new_inbox()
        self._replies: dict[str, asyncio.Future[Outcome]] = {}
        self._sent = 0

    async def close(self) -> None:
        if not self.client.is_closed:
            with contextlib.suppress(*_CONNECTION_ERRORS):  # closing a broken connection: nothing is left to tell it
                await self.client.close()
        self.fail_pending()

    async def ensure_stream(self) -> None:
        s = self.settings
        for _ in range(2):  # a stream made by someone else between our look and our create is looked at again
            with _talking_to(s.url):
                try:
                    info = await self.js.stream_info(s.stream)
                except NotFoundError:
                    info = None
                if info is not None:
                    if info.config.subjects != s.subjects:
                        raise StreamUnusable(
                            f"stream {s.stream} takes subjects {', '.join(info.config.subjects or []) or 'none'}, not {s.subjects[0]}: "
                            "give the relay a stream of its own (--stream) or the prefix this stream was made for (--subject-prefix)"
                        )
                    return
                config = StreamConfig(
                    name=s.stream,
                    subjects=s.subjects,
                    storage=StorageType.FILE,
                    duplicate_window=s.duplicate_window,
                    deny_delete=True,  # the last message is the relay's position: it must not be taken away
                    deny_purge=True,
                )
                try:
                    await self.js.add_stream(config)
                    return
                except BadRequestError as error:
                    if error.err_code != _NAME_IN_USE:
                        raise StreamUnusable(f"cannot create stream {s.stream} for {s.subjects[0]}: {error.description}") from error
        raise StreamUnusable(f"stream {s.stream} could not be created, nor read")

    async def last_mark(self) -> Mark:
        s = self.settings
        with _talking_to(s.url):
            last = (await self.js.stream_info(s.stream)).state.last_seq
            if last == 0:
                return Mark()
            try:
                message = await self.js.get_msg(s.stream, last)
            except NotFoundError as error:
                raise StreamUnusable(
                    f"the last message of stream {s.stream} (sequence {last}) is gone, so which event the relay published last is "
                    "unknown: relay the ledger to a new stream"
                ) from error
        headers = message.headers or {}
        position = headers.get(HEADER_POSITION, "")
        if not position.isdigit():
            raise StreamUnusable(
                f"message {last} of stream {s.stream} has no {HEADER_POSITION} header: something other than the relay publishes to "
                f"{s.subjects[0]}; the relay must be the stream's only publisher"
            )
        return Mark(last, int(position), headers.get(HEADER_MSG_ID))

    async def publish(self, messages: Sequence[Message], after: int) -> list[Outcome]:
        """Send every message, the i-th expecting the stream to end at sequence ``after + i``; their outcomes, in order.

        JetStream takes one connection's messages in order, and each refused message leaves the
        stream short of where every later one of the page expects it to end: they are refused
        too, so the page is stored up to its first refusal and no further.
        """
        loop = asyncio.get_running_loop()
        pending: list[tuple[str, asyncio.Future[Outcome]]] = []
        try:
            with _talking_to(self.settings.url):
                for i, message in enumerate(messages):
                    self._sent += 1
                    token = str(self._sent)
                    reply: asyncio.Future[Outcome] = loop.create_future()
                    self._replies[token] = reply
                    pending.append((token, reply))
                    headers = {**message.headers, HEADER_EXPECTED_SEQUENCE: str(after + i)}
                    await self.client.publish(message.subject, message.payload, reply=f"{self.inbox}.{token}", headers=headers)
            await asyncio.wait([reply for _, reply in pending], timeout=ACK_WAIT)
            return [reply.result() if reply.done() else None for _, reply in pending]
        finally:
            for token, _ in pending:
                self._replies.pop(token, None)

    async def on_reply(self, msg: Msg) -> None:
        reply = self._replies.pop(msg.subject.rsplit(".", 1)[-1], None)
        if reply is not None and not reply.done():  # else: the answer to a page already given up on
            reply.set_result(_outcome(msg))

    def fail_pending(self) -> None:
        """The connection is gone: no awaited answer will come."""
        for reply in self._replies.values():
            if not reply.done():
                reply.set_result(None)
        self._replies.clear()


@contextmanager
def _talking_to(url: str) -> Iterator[None]:
    """The client's failures as the relay's: the connection's as ``BrokerUnavailable``, JetStream's refusals as ``StreamUnusable``."""
    try:
        yield
    except ServiceUnavailableError as error:
        raise BrokerUnavailable(f"NATS at {shown(url)} answers no JetStream requests: is JetStream enabled (nats-server -js)?") from error
    except APIError as error:
        raise StreamUnusable(f"JetStream at {shown(url)} refused: {error.description or _describe(error)}") from error
    except _CONNECTION_ERRORS as error:
        raise BrokerUnavailable(f"NATS at {shown(url)}: {_describe(error)}") from error


def _outcome(msg: Msg) -> Outcome:
    if msg.headers and msg.headers.get("Status") == "503":
        return Refusal(503, "no stream takes this subject")
    try:
        answer = json.loads(msg.data)
    except ValueError:
        return Refusal(0, f"an answer that is not JSON: {msg.data[:80]!r}")
    if "error" in answer:
        error = answer["error"]
        return Refusal(int(error.get("err_code") or error.get("code") or 0), str(error.get("description", "")))
    return Ack(int(answer.get("seq", 0)), bool(answer.get("duplicate", False)))


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
