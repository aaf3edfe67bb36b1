"""The HTTP API (docs/http.md): commands, queries, the event feed and its live stream.

``create_app(settings)`` builds the WSGI application; ``ledger serve`` runs it under waitress.
"""

from ledger.interfaces.http.app import create_app

__all__ = ["create_app"]
