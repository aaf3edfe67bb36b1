"""``ledger relay nats``: every event of the ledger to a NATS JetStream stream, exactly once and in order.

How it keeps that promise: ``ledger.streams.relay`` and docs/streams.md. Status lines go to
standard error; the summary at the end to standard output. NATS unreachable, or a stream the
relay cannot extend, exits with ``EXIT_BROKER`` and a message that says what to check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import signal
import sys
from typing import Any

from ledger.application import TrialLedger
from ledger.bootstrap import Settings
from ledger.interfaces.options import EXIT_BROKER, EXIT_OK, positive
from ledger.streams import relay
from ledger.streams.feed import MAX_LIMIT, Feed

_STREAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}\Z")
_SUBJECT_PREFIX = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\Z")


def add_parsers(sub: Any) -> None:
    brokers = sub.add_parser("relay", help="publish every event of the ledger to a message broker").add_subparsers(title="relay", metavar="BROKER")
    p = brokers.add_parser("nats", help="to a NATS JetStream stream, exactly once and in order (Ctrl-C stops)")
    p.add_argument(
        "--url", default=os.environ.get("LEDGER_NATS_URL", relay.DEFAULT_URL), metavar="URL",
        help=f"the NATS server, or several separated by commas (default $LEDGER_NATS_URL or {relay.DEFAULT_URL})",
    )
    p.add_argument(
        "--stream", type=_stream_name, default=relay.DEFAULT_STREAM,
        help=f"the JetStream stream, created when missing; the relay must be its only publisher (default {relay.DEFAULT_STREAM})",
    )
    p.add_argument(
        "--subject-prefix", type=_subject_prefix, default=relay.DEFAULT_PREFIX, metavar="PREFIX",
        help=f"subjects are PREFIX.EventType.patient (default {relay.DEFAULT_PREFIX}); the stream takes PREFIX.>",
    )
    p.add_argument(
        "--duplicate-window", type=_seconds, default=relay.DEFAULT_DUPLICATE_WINDOW, metavar="SECONDS",
        help=f"the stream's duplicate window, when the relay creates it (default {relay.DEFAULT_DUPLICATE_WINDOW:g})",
    )
    p.add_argument(
        "--interval", type=_seconds, default=relay.DEFAULT_INTERVAL, metavar="SECONDS",
        help=f"how often to look for new events once all are published (default {relay.DEFAULT_INTERVAL:g})",
    )
    p.add_argument(
        "--page-size", type=_page_size, default=relay.DEFAULT_PAGE_SIZE, metavar="N",
        help=f"events read and sent before their acknowledgements are awaited (1-{MAX_LIMIT}, default {relay.DEFAULT_PAGE_SIZE})",
    )
    p.add_argument("--once", action="store_true", help="publish every event committed now, then exit (scripts, CI)")
    p.add_argument("--json", action="store_true", help="print the summary at exit as JSON")
    p.set_defaults(handler=_relay_nats, reads_only=True, action="relay nats")


def _relay_nats(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    options = relay.RelaySettings(
        url=args.url, stream=args.stream, prefix=args.subject_prefix, duplicate_window=args.duplicate_window,
        interval=args.interval, page_size=args.page_size,
    )
    from ledger.streams import jetstream  # the NATS client, loaded only by the command that uses it

    publisher = relay.JetStreamRelay(Feed(ledger), options, jetstream.connect, notify=_status)
    try:
        report = asyncio.run(_until_stopped(publisher, args.once))
    except relay.BrokerUnavailable as error:
        print(f"relay: {error}\ncheck --url (or LEDGER_NATS_URL) and that nats-server is running with JetStream enabled (-js)", file=sys.stderr)
        return EXIT_BROKER
    except relay.StreamUnusable as error:
        print(f"relay: {error}", file=sys.stderr)
        return EXIT_BROKER
    doc = report.as_dict()
    if args.json:
        print(json.dumps(doc))
    else:
        print(f"{doc['published']} events published to stream {doc['stream']}; it ends at position {doc['position']} (sequence {doc['sequence']})")
    return EXIT_OK


async def _until_stopped(publisher: relay.JetStreamRelay, once: bool) -> relay.RelayReport:
    """Run the relay; Ctrl-C or SIGTERM stops it between pages, and it exits normally."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        return await publisher.run(stop, once=once)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _status(line: str) -> None:
    print(f"relay: {line}", file=sys.stderr, flush=True)


def _stream_name(text: str) -> str:
    if not _STREAM_NAME.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a stream name (letters, digits, _ and -)")
    return text


def _subject_prefix(text: str) -> str:
    if not _SUBJECT_PREFIX.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a subject prefix (dot-separated tokens of letters, digits, _ and -)")
    return text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _page_size(text: str) -> int:
    value = positive(text)
    if value > MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"{text!r} is more than {MAX_LIMIT}")
    return value
