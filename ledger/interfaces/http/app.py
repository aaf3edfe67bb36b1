"""The WSGI application: Flask with flask-smorest, whose OpenAPI document comes from the marshmallow schemas.

Every request signs in with ``Authorization: Bearer USER_ID:CREDENTIAL`` once the ledger has
users (before that it acts as the server's configured ``LEDGER_USER``, as the CLI does) and is
checked against rule ACCESS-ROLE, with the same action names as the CLI. Errors answer as JSON
(``ErrorDocument``): 422 naming the field, 409 naming the rule, 401/403 for sign-in and role,
404 for an unknown patient, 503 when the database is away or a conflict persisted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

from eventsourcing.persistence import PersistenceError
from flask import Flask, Response, current_app, request
from flask.views import MethodView
from flask_smorest import Api, Blueprint
from sqlalchemy.exc import SQLAlchemyError
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from ledger import outages
from ledger.application import TrialLedger
from ledger.domain.access import RecordsViewed
from ledger.domain.values import Actor, Role
from ledger.encoding import plain
from ledger.errors import (
    ChainBroken,
    CommandRefused,
    ConcurrentWriteError,
    DatabaseBehind,
    InvalidCommand,
    LedgerError,
    NotAuthenticated,
    StoreUnavailable,
)
from ledger.interfaces import documents
from ledger.interfaces.http import openapi, schemas
from ledger.interfaces.http.context import ServerContext
from ledger.interfaces.http.streaming import event_stream, long_poll
from ledger.interfaces.schemas import SCHEMAS, parse_command
from ledger.policies import access
from ledger.projections.projector import Projector

FEED_ACTION = "events"
#: on a read, these refusals mean "there is no such thing" (404); on a command they stay rule refusals (409)
UNKNOWN_SUBJECTS = ("PATIENT-UNKNOWN", "STRATUM-UNKNOWN")
JSON_ERRORS = {code: schemas.ErrorDocument for code in (401, 403, 404, 409, 422, 503)}


class LedgerApi(Api):  # type: ignore[misc]
    """flask-smorest's Api, whose parameter errors name each field as the ledger's own errors do."""

    ERROR_SCHEMA = schemas.ErrorDocument  # every error answers with it, also those the document lists only as `default`

    def handle_http_exception(self, error: HTTPException) -> Any:
        data = getattr(error, "data", None)
        if data and isinstance(data.get("messages"), dict):  # webargs: {location: {field: [messages]}}
            errors = {
                name: " ".join(map(str, msgs)) if isinstance(msgs, list) else str(msgs)
                for where in data["messages"].values()
                for name, msgs in where.items()
            }
            return _error(error.code or 422, "invalid request: " + "; ".join(f"{k}: {v}" for k, v in sorted(errors.items())), errors=errors)
        return _error(error.code or 500, error.description or error.name)


class LedgerBlueprint(Blueprint):  # type: ignore[misc]
    """flask-smorest's Blueprint, whose query schemas refuse a parameter they do not know.

    webargs would drop unknown query parameters whatever the schema says; ``unknown=None`` leaves
    it to each schema (``schemas.Query``: a misspelt ``valid_on`` is an error, not today's state).
    """

    ARGUMENTS_PARSER = FlaskParser(unknown=None)


def create_app(context: ServerContext) -> Flask:
    app = Flask("ledger")
    app.config.update(
        API_TITLE="trial-ledger",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {"description": "The audit ledger of trial NCT02311998: commands, state, audit trail and the event feed (docs/http.md)."},
            "security": [{"bearer": []}],
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "USER_ID:CREDENTIAL"}}},
        },
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # the documents' own order (contract.md)
    app.extensions["ledger"] = context
    api = LedgerApi(app)
    openapi.publish_patterns(api)
    api.register_blueprint(_commands())
    api.register_blueprint(_reads())
    api.register_blueprint(_events())
    api.register_blueprint(_health())
    app.register_error_handler(LedgerError, _ledger_error)
    app.register_error_handler(SQLAlchemyError, _store_error)
    app.register_error_handler(PersistenceError, _store_error)
    return app


def _context() -> ServerContext:
    return cast(ServerContext, current_app.extensions["ledger"])


def signed_in(ledger: TrialLedger, action: str) -> Actor:
    """The acting user, allowed ``action`` (rule ACCESS-ROLE); the server's configured user on a ledger without users."""
    context = _context()
    if not ledger.secured:
        return context.settings.actor
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("this ledger has users: send Authorization: Bearer USER_ID:CREDENTIAL")
    actor = context.authenticate(ledger, token.strip())
    access.check(action, actor.role, actor.user)
    return actor


def _viewed(ledger: TrialLedger, actor: Actor, action: str, arguments: dict[str, Any]) -> None:
    """An auditor's or a sponsor's read leaves an entry (rule ACCESS-AUDITED)."""
    if ledger.secured and actor.role in access.AUDITED_READERS:
        ledger.record_access(RecordsViewed, actor, view=action, arguments={"path": request.path, **plain(arguments)})


def _shown_to(actor: Actor, document: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], access.sponsor_view(document)) if actor.role is Role.SPONSOR else document


# --- commands ----------------------------------------------------------------------------


def _commands() -> Blueprint:
    blp = LedgerBlueprint(
        "commands", __name__, url_prefix="/commands", description="Record facts: the commands of contract.md, validated as the CLI and import do."
    )
    for name, schema_cls in SCHEMAS.items():
        _command_route(blp, name, schema_cls)
    return blp


def _command_route(blp: Blueprint, name: str, schema_cls: type) -> None:
    def post() -> tuple[dict[str, Any], int]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise InvalidCommand({"body": "must be a JSON object of the command's fields"})
        if body.get("command", name) != name:
            raise InvalidCommand({"command": f"this endpoint records {name}; leave the field out or give {name!r}"})
        command = parse_command({**body, "command": name})
        context = _context()
        with context.ledger() as ledger:
            actor = signed_in(ledger, name)
            outcome = ledger.handle(command, actor)
            if ledger.last_committed is not None:
                context.watcher.bump(ledger.last_committed)
        return documents.OutcomeDocument().dump(outcome), 200 if outcome.duplicate else 201

    post.__name__ = f"post_{name}"
    post.__doc__ = f"Record {name}.\n\n201 with the new entry ids; 200 with the original ones when `command_id` was recorded before (nothing new is recorded)."
    view = blp.doc(
        requestBody={"required": True, "content": {"application/json": {"schema": schema_cls}}},
        responses={
            "200": {"description": "a duplicate: `command_id` was recorded before", "content": {"application/json": {"schema": documents.OutcomeDocument}}}
        },
    )(post)
    for code, schema in JSON_ERRORS.items():
        view = blp.alt_response(code, schema=schema, description=_ERROR_MEANINGS[code])(view)
    view = blp.response(201, documents.OutcomeDocument, description="recorded")(view)
    blp.route(f"/{name}", methods=["POST"], endpoint=name)(view)


_ERROR_MEANINGS = {
    401: "not signed in: the ledger has users and the bearer token is missing or wrong",
    403: "the user's role may not do this (rule ACCESS-ROLE)",
    404: "no such patient (or, for a read by stratum, no such stratum)",
    409: "refused by a rule of the protocol (rule_id names it); nothing was recorded",
    422: "malformed: `errors` names each bad field; nothing was recorded",
    503: "the database is unavailable, or a write conflict persisted: send it again",
}


# --- queries -----------------------------------------------------------------------------


def _reads() -> Blueprint:
    blp = LedgerBlueprint("state", __name__, description="The trial's state, as known at any time and on any clinical date.")

    @blp.route("/patients/<string:patient_id>", parameters=[openapi.PATIENT_ID])
    class PatientView(MethodView):
        @blp.arguments(schemas.TimeQuery, location="query")
        @blp.response(200, documents.PatientDocument)
        @_errors(blp, 401, 403, 404, 422, 503)
        def get(self, query: dict[str, Any], patient_id: str) -> dict[str, Any]:
            """A patient's state (contract.md), with `as_of` and `valid_on`."""
            from ledger.queries import patient_document

            with _context().ledger() as ledger:
                actor = signed_in(ledger, "patient show")
                document = patient_document(ledger, patient_id, as_of=query["as_of"], valid_on=query["valid_on"])
                _viewed(ledger, actor, "patient show", {"patient_id": patient_id, **query})
            return _shown_to(actor, document)

    @blp.route("/patients/<string:patient_id>/history", parameters=[openapi.PATIENT_ID])
    class HistoryView(MethodView):
        @blp.arguments(schemas.Query, location="query")
        @blp.response(200, documents.HistoryDocument)
        @_errors(blp, 401, 403, 404, 422, 503)
        def get(self, query: dict[str, Any], patient_id: str) -> dict[str, Any]:
            """Every entry of a patient, oldest first: who recorded what, when and why."""
            from ledger.queries import patient_history

            with _context().ledger() as ledger:
                actor = signed_in(ledger, "patient history")
                document = patient_history(ledger, patient_id)
                _viewed(ledger, actor, "patient history", {"patient_id": patient_id})
            return document

    @blp.route("/escalation")
    class EscalationView(MethodView):
        @blp.arguments(schemas.StratumQuery, location="query")
        @blp.response(200, documents.EscalationDocument)
        @_errors(blp, 401, 403, 404, 422, 503)
        def get(self, query: dict[str, Any]) -> dict[str, Any]:
            """The 3+3 escalation per stratum: levels, DLTs, decisions and the next action."""
            from ledger.queries import escalation_document

            with _context().ledger() as ledger:
                actor = signed_in(ledger, "escalation show")
                document = escalation_document(ledger, query["stratum"], as_of=query["as_of"], valid_on=query["valid_on"])
                _viewed(ledger, actor, "escalation show", query)
            return document

    @blp.route("/decisions")
    class DecisionsView(MethodView):
        @blp.arguments(schemas.DecisionsQuery, location="query")
        @blp.response(200, documents.DecisionsDocument)
        @_errors(blp, 401, 403, 404, 422, 503)
        def get(self, query: dict[str, Any]) -> dict[str, Any]:
            """Each escalation decision, its basis, and whether rule ESC-3PLUS3 would still give it."""
            from ledger.provenance import decisions_document

            with _context().ledger() as ledger:
                actor = signed_in(ledger, "decisions")
                document = decisions_document(ledger, query["stratum"])
                _viewed(ledger, actor, "decisions", query)
            return _shown_to(actor, document)

    @blp.route("/audit")
    class AuditView(MethodView):
        @blp.arguments(schemas.AuditQuery, location="query")
        @blp.response(200, schemas.AuditDocument)
        @_errors(blp, 401, 403, 422, 503)
        def get(self, query: dict[str, Any]) -> dict[str, Any]:
            """The audit trail: every entry, who, when and why, and the old and new value of each correction."""
            from ledger.projections.queries import audit_trail

            with _context().ledger() as ledger:
                actor = signed_in(ledger, "audit show")
                Projector(ledger).catch_up()  # every entry committed so far, whoever recorded it
                document = audit_trail(ledger, patient_id=query["patient"], as_of=query["as_of"], valid_on=query["valid_on"], limit=query["limit"])
                _viewed(ledger, actor, "audit show", query)
            return {**document, "entries": plain(document["entries"])}  # as_of and valid_on stay typed for the schema

    return blp


# --- the feed ----------------------------------------------------------------------------


def _events() -> Blueprint:
    blp = LedgerBlueprint("events", __name__, description="Every committed event in commit order, for downstream systems (docs/streams.md).")

    @blp.route("/events")
    class FeedView(MethodView):
        @blp.arguments(schemas.FeedQuery, location="query")
        @blp.response(200, schemas.FeedDocument)
        @_errors(blp, 401, 403, 422, 503)
        def get(self, query: dict[str, Any]) -> Response:
            """The events after position `after`, oldest first, and the position to ask for next.

            With `wait`, an empty answer waits up to that many seconds and returns as soon as an event commits.
            """
            context = _context()
            with context.ledger() as ledger:
                signed_in(ledger, FEED_ACTION)
            page = long_poll(context, query["after"], query["limit"], query["type"], query["patient"], query["wait"])
            return Response(json.dumps(page.document(), ensure_ascii=False, separators=(",", ":")), mimetype="application/json")

    @blp.route("/events/stream")
    class StreamView(MethodView):
        @blp.arguments(schemas.StreamQuery, location="query")
        @blp.doc(responses={"200": {"description": "Server-Sent Events: one per ledger event (`id` = position, `event` = type, `data` = the feed's event)",
                                    "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
        @_errors(blp, 401, 403, 422, 503)
        def get(self, query: dict[str, Any]) -> Response:
            """A live stream of events after `after` (or the `Last-Event-ID` header), with heartbeats; never drops an event."""
            context = _context()
            with context.ledger() as ledger:
                signed_in(ledger, FEED_ACTION)
            after = _last_event_id(query["after"])
            stream: Iterator[str] = event_stream(context, after, query["type"], query["patient"], query["heartbeat"])
            return Response(stream, mimetype="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return blp


def _last_event_id(after: int) -> int:
    """``Last-Event-ID`` (an EventSource's reconnection) wins over ``after``."""
    header = request.headers.get("Last-Event-ID", "").strip()
    if not header:
        return after
    if not header.isdigit():
        raise InvalidCommand({"Last-Event-ID": "must be a position (a whole number)"})
    return int(header)


def _health() -> Blueprint:
    blp = LedgerBlueprint("health", __name__, description="Whether the server reaches its database.")

    @blp.route("/health")
    class HealthView(MethodView):
        @blp.response(200, schemas.HealthDocument)
        @blp.alt_response(503, schema=schemas.HealthDocument, description="the database cannot be reached")
        @blp.doc(security=[])
        def get(self) -> tuple[dict[str, Any], int]:
            """Liveness and the last committed position; no sign-in needed."""
            context = _context()
            try:
                with context.ledger() as ledger:
                    return {"ok": True, "head": context.feed.head(), "secured": ledger.secured, "message": None}, 200
            except (SQLAlchemyError, PersistenceError, LedgerError) as error:
                return {"ok": False, "head": None, "secured": None, "message": f"database unavailable: {type(error).__name__}"}, 503

    return blp


def _errors(blp: Blueprint, *codes: int) -> Any:
    def decorate(view: Any) -> Any:
        for code in codes:
            view = blp.alt_response(code, schema=schemas.ErrorDocument, description=_ERROR_MEANINGS[code])(view)
        return view

    return decorate


# --- errors ------------------------------------------------------------------------------


def _error(code: int, message: str, **extra: Any) -> Response:
    from http import HTTPStatus

    body = {"code": code, "status": HTTPStatus(code).phrase, "message": message, **extra}
    headers = {"WWW-Authenticate": 'Bearer realm="ledger"'} if code == 401 else {"Retry-After": "1"} if code == 503 else {}
    return Response(json.dumps(body, ensure_ascii=False), status=code, mimetype="application/json", headers=headers)


def _ledger_error(error: LedgerError) -> Response:
    if isinstance(error, NotAuthenticated):
        return _error(401, str(error))
    if isinstance(error, InvalidCommand):
        return _error(422, f"invalid: {error}", errors=error.errors)
    if isinstance(error, CommandRefused):
        violations = [{"rule_id": v.rule_id, "message": v.message} for v in error.violations]
        code = 403 if error.rule_id == access.RULE else 404 if error.rule_id in UNKNOWN_SUBJECTS and request.method == "GET" else 409
        return _error(code, f"refused: {error}", rule_id=error.rule_id, violations=violations)
    if isinstance(error, ConcurrentWriteError):
        return _error(503, f"conflict: {error}")
    if isinstance(error, ChainBroken):
        return _error(503, f"integrity: {error}")
    if isinstance(error, (StoreUnavailable, DatabaseBehind)):
        return _error(503, f"database: {error}")
    return _error(409, str(error))


def _store_error(error: Exception) -> Response:
    current_app.logger.warning("database error: %s", error)
    failure = outages.failure_of(error)
    why = f" ({failure.value})" if failure is not None else ""
    return _error(503, f"the database is unavailable{why}: the request was not completed and nothing of it was recorded; try again")
