"""``ledger subscribe URL --checkpoint FILE --exec CMD``: a shell consumer of a ledger's feed.

Each event is handed to ``CMD`` (run by the shell) as one JSON object on its standard input,
with ``LEDGER_POSITION``, ``LEDGER_ENTRY_ID`` and ``LEDGER_EVENT_TYPE`` in its environment.
The checkpoint file moves past an event only once ``CMD`` has exited 0 for it; a failure
stops the subscription there (exit 8), and the next run starts with that event again. The
token is read from ``LEDGER_TOKEN``, as for every other command.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from typing import Any

from ledger.client import FileCheckpoint, Subscription, SubscriptionError
from ledger.interfaces.options import EXIT_AUTH, EXIT_HANDLER, EXIT_OK, EXIT_REFUSED, positive


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("subscribe", help="hand each event of a ledger's HTTP feed to a command, resuming where it stopped")
    p.add_argument("url", help="the ledger's HTTP API, e.g. http://127.0.0.1:8080")
    p.add_argument("--checkpoint", required=True, metavar="FILE", help="where the position of the last event handled is kept")
    p.add_argument("--exec", dest="command", required=True, metavar="CMD", help="shell command run once per event, the event's JSON on its stdin")
    p.add_argument("--type", dest="types", action="append", default=[], metavar="EVENT_TYPE", help="only this event type (repeatable)")
    p.add_argument("--patient", help="only this patient's events")
    p.add_argument("--until-idle", action="store_true", help="stop once the feed has no new event (for scripts and tests)")
    p.add_argument("--limit", type=positive, default=200, metavar="N", help="events asked for per request (default 200)")
    p.set_defaults(client_handler=_subscribe, action="subscribe")


def _subscribe(args: argparse.Namespace) -> int:
    subscription = Subscription(
        args.url, os.environ.get("LEDGER_TOKEN"), FileCheckpoint(args.checkpoint), args.types, args.patient,
        limit=min(args.limit, 1000), wait=0.0 if args.until_idle else 20.0, until_idle=args.until_idle,
    )
    signal.signal(signal.SIGTERM, lambda *_: subscription.stop())
    handled = 0
    try:
        for event in subscription:
            result = subprocess.run(
                args.command, shell=True, input=json.dumps(event, ensure_ascii=False).encode(), check=False,
                env={**os.environ, "LEDGER_POSITION": str(event["position"]), "LEDGER_ENTRY_ID": event["entry_id"], "LEDGER_EVENT_TYPE": event["type"]},
            )
            if result.returncode != 0:
                print(f"subscribe: the command failed on position {event['position']} (exit {result.returncode}); "
                      f"the checkpoint stays before it", file=sys.stderr)
                return EXIT_HANDLER
            handled += 1
    except SubscriptionError as error:
        print(f"subscribe: {error}", file=sys.stderr)
        return EXIT_AUTH if str(error).startswith(("401", "403")) else EXIT_REFUSED
    except KeyboardInterrupt:
        pass
    print(f"{handled} events handled; checkpoint {args.checkpoint}", file=sys.stderr)
    return EXIT_OK

