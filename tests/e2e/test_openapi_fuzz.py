"""The HTTP API against its own OpenAPI document (docs/http.md, "Conformance").

The document served at ``/openapi.json`` is valid OpenAPI 3.0 and its patterns are ECMA-262
that accept what the server accepts. schemathesis, knowing the API only from that document,
sends every operation its examples, boundary values and random valid and invalid requests,
in-process, then follows the links it infers between operations; it finds no server error (no
5xx, and a 503 counts: a request that makes the database fail is bad input to refuse), no status
code, content type, header or body the document does not declare. The ledger already holds
patients, so requests meet real ones too. The live stream never ends: it is left out of the
fuzz and tested on its own.

``LEDGER_FUZZ_EXAMPLES`` (default 10) sets the examples per operation and phase; a deep run
raises it, e.g. to 300. ``LEDGER_FUZZ_SEED`` (default 1) varies what is generated; a failure
names the seed and the curl command that reproduces it.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
import waitress
from flask import Flask
from marshmallow import ValidationError
from schemathesis.engine import events

from benchmarks.generate import patient_lines
from ledger.bootstrap import Settings, build_ledger
from ledger.domain.values import Actor, Role
from ledger.identity.directory import Directory
from ledger.interfaces import schemas as command_schemas
from ledger.interfaces.http import create_app
from ledger.interfaces.http.context import ServerContext
from ledger.interfaces.importer import import_file
from ledger.projections.projector import Projector
from tests.e2e.fuzz_hooks import QUICK_WAIT  # the module registers its hook: a valid long-poll wait is kept short

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one-patient.jsonl"
EXAMPLES = int(os.environ.get("LEDGER_FUZZ_EXAMPLES", "10"))
SEED = int(os.environ.get("LEDGER_FUZZ_SEED", "1"))
#: what every response must pass; ``ignored_auth`` is added where the ledger has users
CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance", "response_schema_conformance"]
SERVER_USER = "dr.fuzz"


@dataclass
class Server:
    app: Flask
    token: str | None = None  # a sponsor's bearer token, on a ledger with users


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))


def trial_file(tmp_path: Path) -> Path:
    """The example patient and three synthetic phase I patients (one stratum), as one import file."""
    path = tmp_path / "trial.jsonl"
    lines = EXAMPLE.read_text().splitlines() + [json.dumps(line) for n in range(3) for line in patient_lines(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def serving(database_url: str, tmp_path: Path, secured: bool) -> Iterator[Server]:
    settings = Settings(database_url=database_url, user=SERVER_USER, role=Role.INVESTIGATOR)
    ledger = build_ledger(settings)
    report = import_file(ledger, trial_file(tmp_path), Actor(SERVER_USER, Role.INVESTIGATOR))
    assert not report.problems, report.problems
    token = None
    if secured:
        directory = Directory(ledger)
        admin = directory.authenticate(directory.bootstrap("admin.fuzz", "Ada Admin", Actor("installer", Role.INVESTIGATOR)).token)
        token = directory.register("sponsor.fuzz", "Sam Sponsor", Role.SPONSOR, admin).token
    ledger.close()
    context = ServerContext.open(settings)
    try:
        yield Server(create_app(context), token)
    finally:
        context.close()


@contextmanager
def listening(app: Flask) -> Iterator[str]:
    """``app`` under waitress, as ``ledger serve`` runs it, on a free port of this machine: its base URL."""
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=5)
        server.task_dispatcher.shutdown()


def configured(schema: Any, checks: list[str], token: str | None = None) -> Any:
    """The API as schemathesis read it from ``/openapi.json``, set up for this run."""
    schema = schema.exclude(path="/events/stream")
    schema.config.seed = SEED
    schema.config.generation.update(max_examples=EXAMPLES, database="none")
    schema.config.checks.update(included_check_names=checks)
    if token is not None:
        schema.config.update(headers={"Authorization": f"Bearer {token}"})
    return schema


def fuzz(schema: Any) -> Findings:
    """Run every phase of schemathesis (examples, coverage, fuzzing, stateful) and collect what it found."""
    findings = Findings()
    seen: set[tuple[str, str]] = set()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            recorder = event.recorder
            for interaction in recorder.interactions.values():
                if interaction.response is not None:
                    findings.statuses[recorder.label][interaction.response.status_code] += 1
            for check in (c for checks in recorder.checks.values() for c in checks):
                if check.failure_info is None:
                    continue
                failure = check.failure_info.failure
                if (key := (f"{failure.operation} {failure.title}", failure.message)) not in seen:
                    seen.add(key)
                    findings.problems.append(f"{key[0]} ({check.name}): {failure.message}\n  {check.failure_info.code_sample}")
        elif isinstance(event, events.NonFatalError):
            findings.problems.append(f"{event.label}: {event.info.title}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            findings.problems.append(f"schemathesis stopped: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            findings.problems.extend(f"{failure.operation} {failure.title}: {failure.message}" for failure in event.failures)
    return findings


def report(findings: Findings) -> str:
    return f"seed {SEED}, {EXAMPLES} examples; {len(findings.problems)} problem(s):\n\n" + "\n\n".join(findings.problems)


# --- the document --------------------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with serving(f"sqlite:///{tmp_path / 'ledger.sqlite'}", tmp_path, secured=False) as served:
        yield served


def test_served_document_is_valid_openapi_3_0(server: Server) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", server.app)
    assert schema.raw_schema["openapi"].startswith("3.0.")
    schema.validate()  # against the OpenAPI 3.0 schema; raises with the first violation


def test_every_pattern_in_the_document_is_an_ecma_262_regular_expression(server: Server) -> None:
    document = server.app.test_client().get("/openapi.json").get_json()
    patterns = set(re.findall(r'"pattern": ("(?:[^"\\]|\\.)*")', json.dumps(document)))
    assert patterns
    for pattern in map(json.loads, patterns):
        assert pattern.startswith("^") and pattern.endswith("$"), pattern
        jsonschema_rs.validator_for({"type": "string", "pattern": pattern})  # refuses what ECMA-262 does not parse, e.g. \Z


VALIDATORS = {
    "IDENTIFIER": (command_schemas.IDENTIFIER, ["S001", "a", "P-1.2:3_x", "S001\n", " S001", "S001 ", "", "-S1", "x" * 64, "x" * 65, "S\x00", "Ω1"]),
    "CODE": (command_schemas.CODE, ["PH_POS_ALL", "A", "a", "PH POS", "PH_POS_ALL\n", "_A", "A" * 64, "A" * 65]),
    "TEXT": (command_schemas.TEXT_PATTERN, ["Nausea", " x ", "\t\nx", "  ", "\n", "\u3000\u2028", "x\x00", "x\x1f", "x\x7f", "\x85a", "\xa0", "\ufeff", "😀"]),
    "MUTATION": (command_schemas.MUTATION, ["T315I", "p.E255K", "T315I*", ">", "T315I\n", "T 315"]),
    "KEY": (command_schemas.KEY, ["line-12", "ENR-01#3", "a/b@c", "/a", "a b", "a\n", "k" * 128, "k" * 129]),
    "VERSION": (command_schemas.VERSION, ["5.0", "4", "4.03.1", "5.", ".5", "5.0\n", "٥.٠", "v5"]),
}


@pytest.mark.parametrize("name", VALIDATORS)
def test_each_published_pattern_accepts_exactly_what_the_server_accepts(name: str) -> None:
    validator, samples = VALIDATORS[name]
    published = jsonschema_rs.validator_for({"type": "string", "pattern": validator.ecma_pattern})
    for sample in samples:
        try:
            validator(sample)
            accepted = True
        except ValidationError:
            accepted = False
        assert published.is_valid(sample) == accepted, f"{name} {'accepts' if accepted else 'refuses'} {sample!r}, its pattern does not"


@pytest.mark.parametrize(
    ("schema_name", "property_", "declared", "refused"),
    [
        ("RecordInoInfusion", "dose_mg_m2", {"minimum": 0.0, "exclusiveMinimum": True}, 0),  # above 0, not from 0
        ("CorrectEntry", "changes", {"minProperties": 1}, {}),  # at least one field, not a string's length
    ],
)
def test_document_declares_bounds_as_the_server_keeps_them(server: Server, schema_name: str, property_: str, declared: dict[str, Any], refused: Any) -> None:
    client = server.app.test_client()
    published = client.get("/openapi.json").get_json()["components"]["schemas"][schema_name]["properties"][property_]
    assert published.items() >= declared.items() and "minLength" not in published
    command = re.sub(r"(?<!^)(?=[A-Z])", "_", schema_name).lower()
    assert property_ in client.post(f"/commands/{command}", json={property_: refused}).get_json()["errors"]


# --- what fuzzing found ---------------------------------------------------------------------

START = {"patient_id": "S001", "started_on": "2016-06-01", "deviation": True, "reason": "a deviation may break CYCLE-CAP, within bounds"}
TOXICITY = {"patient_id": "S001", "onset_on": "2016-02-10", "term": "Nausea", "grade": 1, "attribution": "POSSIBLE"}


@pytest.mark.parametrize(
    ("request_", "field_"),
    [
        (("GET", "/patients/S001?as_of=0001-01-01T00:00:00%2B23:59", None), "as_of"),  # no time in UTC: was a 503 from the database
        (("GET", "/escalation?as_of=9999-12-31T23:59:59-23:59", None), "as_of"),
        (("GET", "/audit?as_of=0001-01-01T00:00:00%2B01:00", None), "as_of"),
        (("GET", "/patients/S001?valid_ob=2016-03-01", None), "valid_ob"),  # a misspelt parameter was ignored: today's state
        (("GET", "/patients/S001/history?as_of=2016-03-01T00:00:00%2B00:00", None), "as_of"),
        (("POST", "/commands/start_cycle", {**START, "cycle": 10**30}), "cycle"),  # was recorded, then broke the read models
        (("POST", "/commands/report_toxicity", {**TOXICITY, "ctcae_version": "5" + ".0" * 8}), "ctcae_version"),
        (("POST", "/commands/report_toxicity", {**TOXICITY, "ctcae_version": "٥.٠"}), "ctcae_version"),
    ],
)
def test_input_the_ledger_cannot_hold_is_refused_naming_the_field(server: Server, request_: tuple[str, str, Any], field_: str) -> None:
    method, path, body = request_
    answer = server.app.test_client().open(path, method=method, json=body)
    assert (answer.status_code, list(answer.get_json()["errors"])) == (422, [field_]), answer.get_json()


def test_audit_trail_as_of_a_time_and_on_a_date_answers_with_them(server: Server) -> None:
    answer = server.app.test_client().get("/audit?patient=S001&as_of=2030-01-01T00:00:00%2B01:00&valid_on=2016-02-02&limit=3")
    assert answer.status_code == 200  # was a 500: the dates were text before the answer's schema formatted them
    assert (answer.get_json()["as_of"], answer.get_json()["valid_on"], len(answer.get_json()["entries"])) == ("2030-01-01T00:00:00+01:00", "2016-02-02", 3)


@pytest.mark.parametrize("path", ["/escalation?stratum=NO_SUCH", "/decisions?stratum=NO_SUCH"])
def test_a_read_of_an_unknown_stratum_is_not_found(server: Server, path: str) -> None:
    answer = server.app.test_client().get(path)
    assert (answer.status_code, answer.get_json()["rule_id"]) == (404, "STRATUM-UNKNOWN")


# --- the fuzz ------------------------------------------------------------------------------


def project(database_url: str) -> int:
    """Bring the read models up to date; how many events that took."""
    ledger = build_ledger(Settings(database_url=database_url, user=SERVER_USER))
    try:
        return Projector(ledger).catch_up()
    finally:
        ledger.close()


def test_fuzzed_requests_get_no_server_error_and_only_documented_answers(database_url: str, tmp_path: Path) -> None:
    with serving(database_url, tmp_path, secured=False) as served:
        findings = fuzz(configured(schemathesis.openapi.from_wsgi("/openapi.json", served.app), CHECKS))
    assert not findings.problems, report(findings)
    project(database_url)  # whatever the fuzz got recorded, the read models can hold (a too long or too big value would fail here)
    assert findings.statuses["GET /patients/{patient_id}"][200], "the fuzz never met a real patient"
    assert findings.statuses["POST /commands/start_cycle"][422] and findings.statuses["POST /commands/start_cycle"][409]


def test_fuzzed_requests_of_a_signed_in_sponsor_or_of_nobody_get_no_server_error(database_url: str, tmp_path: Path) -> None:
    # over HTTP: schemathesis' in-process transport cannot send the requests of ``ignored_auth``
    # (without the token, and with a wrong one), which must then get a 401
    with serving(database_url, tmp_path, secured=True) as served, listening(served.app) as base_url:
        findings = fuzz(configured(schemathesis.openapi.from_url(f"{base_url}/openapi.json"), [*CHECKS, "ignored_auth"], served.token))
    assert not findings.problems, report(findings)
    assert findings.statuses["GET /patients/{patient_id}"][200], "the sponsor never read a real patient"
    assert findings.statuses["POST /commands/start_cycle"][403], "a sponsor records nothing (rule ACCESS-ROLE)"


# --- the live stream -----------------------------------------------------------------------


def test_live_stream_refuses_bad_parameters_naming_them(server: Server) -> None:
    client = server.app.test_client()
    for query, name in [("heartbeat=nan", "heartbeat"), ("heartbeat=0", "heartbeat"), ("after=-1", "after"), ("type=NoSuchEvent", "type"),
                        ("patient=%00", "patient"), ("surprise=1", "surprise")]:
        refused = client.get(f"/events/stream?{query}")
        assert (refused.status_code, list(refused.get_json()["errors"])) == (422, [name])
    refused = client.get("/events/stream", headers={"Last-Event-ID": "x"})
    assert (refused.status_code, list(refused.get_json()["errors"])) == (422, ["Last-Event-ID"])


def test_live_stream_sends_events_then_heartbeats_as_its_document_says(server: Server) -> None:
    client = server.app.test_client()
    declared = client.get("/openapi.json").get_json()["paths"]["/events/stream"]["get"]["responses"]["200"]["content"]
    position = 10**21  # far past the head: a heartbeat comes first
    for query, awaited in [("", "event: PatientEnrolled"), (f"&after={position}", f"id: {position}\nevent: heartbeat")]:
        response = client.get(f"/events/stream?heartbeat={QUICK_WAIT}{query}", buffered=False)
        assert response.status_code == 200 and response.mimetype in declared
        received, chunks = "", iter(response.response)
        while awaited not in received:
            chunk = next(chunks)
            received += chunk.decode() if isinstance(chunk, bytes) else chunk
        response.close()
        assert received.startswith("retry: ")
