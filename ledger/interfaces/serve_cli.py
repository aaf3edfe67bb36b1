"""``ledger serve``: the HTTP API (docs/http.md) under waitress, a production WSGI server.

Waitress streams each chunk as the application yields it and, when a client reads slowly,
makes the stream wait once its buffer is full: the live stream then pauses rather than
drops anything (``ledger.interfaces.http.streaming``). Each open live stream holds one of
the server's threads; ``--threads`` sets how many.

The read models are kept current by a projector in the background, as ``ledger project
--follow`` would, so the audit trail shows entries written by any process.
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
import threading
from typing import Any

from ledger.application import TrialLedger
from ledger.bootstrap import Settings, build_ledger
from ledger.interfaces.options import EXIT_OK, EXIT_USAGE, positive

DEFAULT_THREADS = 16


def add_parsers(sub: Any) -> None:
    serve = sub.add_parser("serve", help="serve the HTTP API and the event feed (docs/http.md; Ctrl-C stops)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one and prints it)")
    serve.add_argument("--threads", type=positive, default=DEFAULT_THREADS, metavar="N",
                       help=f"requests served at once, each open live stream holding one (default {DEFAULT_THREADS})")
    serve.add_argument("--poll-interval", type=float, default=0.05, metavar="SECONDS",
                       help="how often waiting feed requests look for new commits from other processes (default 0.05)")
    serve.add_argument("--no-projector", dest="projector", action="store_false", help="leave the read models to a separate `ledger project --follow`")
    serve.set_defaults(handler=_serve, action="serve")


def _serve(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    if not ledger.secured and not _loopback(args.host):
        print(
            f"usage: this ledger has no users yet, so the API would accept anyone's writes as {settings.user}; "
            "serve on 127.0.0.1, or register users first (`ledger user bootstrap`, docs/access.md)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not ledger.secured:
        print(f"warning: this ledger has no users: every request acts as {settings.user} ({settings.role.value})", file=sys.stderr)
    run_server(args, settings)
    return EXIT_OK


def run_server(args: argparse.Namespace, settings: Settings) -> None:
    import waitress

    from ledger.interfaces.http import create_app
    from ledger.interfaces.http.context import ServerContext
    from ledger.projections.projector import Projector

    context = ServerContext.open(settings, args.poll_interval)
    stopping = threading.Event()
    projector_thread = None
    if args.projector:
        projecting = build_ledger(settings, create=False)
        projector_thread = threading.Thread(
            target=_project, args=(Projector(projecting), stopping), name="ledger-projector", daemon=True
        )
        projector_thread.start()
    server = waitress.create_server(create_app(context), host=args.host, port=args.port, threads=args.threads, ident="trial-ledger")
    signal.signal(signal.SIGTERM, lambda *_: server.close())
    print(f"serving the ledger on http://{args.host}:{server.effective_port} (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        server.run()
    except (KeyboardInterrupt, OSError):
        pass
    finally:
        stopping.set()
        server.close()
        if projector_thread is not None:
            projector_thread.join(timeout=5)
        context.close()


def _project(projector: Any, stopping: threading.Event) -> None:
    """Keep the read models current until the server stops; a database outage is waited out."""
    while not stopping.is_set():
        try:
            if projector.catch_up() == 0:
                stopping.wait(1.0)
        except Exception as error:  # the database is away for a while: try again
            print(f"projector: {type(error).__name__}: {error}; retrying", file=sys.stderr, flush=True)
            stopping.wait(5.0)
    projector.ledger.close()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
