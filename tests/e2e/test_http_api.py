"""The HTTP API in-process (Flask's test client), on SQLite and PostgreSQL: commands, reads, sign-in and the feed."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ledger.bootstrap import Settings, build_ledger
from ledger.domain.values import Actor, Role
from ledger.identity.directory import Directory
from ledger.interfaces.http import create_app
from ledger.interfaces.http.context import ServerContext
from ledger.interfaces.importer import import_file
from ledger.interfaces.schemas import parse_command
from ledger.persistence import EntryRow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one-patient.jsonl"
ENROLL = {
    "patient_id": "H001", "enrolled_on": "2016-03-01", "diagnosis": "PH_POS_ALL", "phase": "I", "stratum": "http",
    "cd22_percent": 55.0, "abl_mutations": [], "bsa_m2": 1.7, "source": "EDC ENR-9",
}


@pytest.fixture
def context(database_url: str) -> Iterator[ServerContext]:
    settings = Settings(database_url=database_url, user="site.coordinator", role=Role.COORDINATOR)
    ledger = build_ledger(settings)
    report = import_file(ledger, EXAMPLE, Actor("site.coordinator", Role.COORDINATOR))
    assert report.ok
    ledger.close()
    server = ServerContext.open(settings, poll_interval=0.02)
    yield server
    server.close()


@pytest.fixture
def client(context: ServerContext) -> FlaskClient:
    return create_app(context).test_client()


def entries(context: ServerContext) -> int:
    with context.reader.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(EntryRow)).scalar_one())


def all_events(client: FlaskClient, headers: dict[str, str] | None = None, **query: Any) -> list[dict[str, Any]]:
    events, after = [], 0
    while True:
        page = client.get("/events", query_string={"after": after, "limit": 7, **query}, headers=headers).get_json()
        events += page["events"]
        if page["next_after"] == after:
            return events
        after = page["next_after"]


def test_a_command_is_recorded_and_a_resent_one_is_acknowledged_with_its_original_entries(client: FlaskClient, context: ServerContext) -> None:
    first = client.post("/commands/enroll_patient", json={**ENROLL, "command_id": "edc-enr-9"})
    assert first.status_code == 201, first.get_json()
    recorded = first.get_json()
    assert recorded["command"] == "enroll_patient" and len(recorded["entry_ids"]) >= 1 and not recorded["duplicate"]
    count = entries(context)
    again = client.post("/commands/enroll_patient", json={**ENROLL, "command_id": "edc-enr-9"})
    assert again.status_code == 200
    assert again.get_json()["entry_ids"] == recorded["entry_ids"] and again.get_json()["duplicate"]
    assert entries(context) == count


def test_malformed_and_refused_commands_name_the_field_or_rule_and_record_nothing(client: FlaskClient, context: ServerContext) -> None:
    before = entries(context)
    bad = client.post("/commands/record_bosutinib_dose", json={"patient_id": "S001", "taken_on": "2016-02-03", "dose_mg": "lots"})
    assert bad.status_code == 422 and set(bad.get_json()["errors"]) == {"dose_mg"}
    missing = client.post("/commands/start_cycle", json={"patient_id": "S001", "cycle": 2})
    assert missing.status_code == 422 and "started_on" in missing.get_json()["errors"]
    unknown_field = client.post("/commands/start_cycle", json={"patient_id": "S001", "cycle": 2, "started_on": "2016-03-01", "dose": 1})
    assert unknown_field.status_code == 422 and "dose" in unknown_field.get_json()["errors"]
    not_object = client.post("/commands/start_cycle", data="[1, 2]", content_type="application/json")
    assert not_object.status_code == 422 and "body" in not_object.get_json()["errors"]
    other_command = client.post("/commands/start_cycle", json={"command": "record_death", "patient_id": "S001", "died_on": "2016-03-01"})
    assert other_command.status_code == 422 and "command" in other_command.get_json()["errors"]
    refused = client.post("/commands/start_cycle", json={"patient_id": "S001", "cycle": 7, "started_on": "2017-01-01"})
    assert refused.status_code == 409
    assert refused.get_json()["rule_id"] and refused.get_json()["rule_id"] in refused.get_json()["message"]
    unknown_patient = client.post("/commands/start_cycle", json={"patient_id": "NOBODY", "cycle": 1, "started_on": "2017-01-01"})
    assert unknown_patient.status_code == 409 and unknown_patient.get_json()["rule_id"] == "PATIENT-UNKNOWN"
    assert entries(context) == before


def test_reads_answer_the_contract_documents_as_of_and_valid_on(client: FlaskClient) -> None:
    now = client.get("/patients/S001").get_json()
    assert now["patient_id"] == "S001" and now["bosutinib_doses"] > 0
    early = client.get("/patients/S001", query_string={"valid_on": "2016-02-01"}).get_json()
    assert early["bosutinib_doses"] == 0 and early["valid_on"] == "2016-02-01"
    before_anything = client.get("/patients/S001", query_string={"as_of": "2000-01-01T00:00:00+00:00"})
    assert before_anything.status_code == 404 and before_anything.get_json()["rule_id"] == "PATIENT-UNKNOWN"
    assert client.get("/patients/NOBODY").status_code == 404
    history = client.get("/patients/S001/history").get_json()
    assert history["entries"][0]["type"] == "PatientEnrolled" and history["entries"][0]["source"] == "EDC form ENR-01"
    assert client.get("/escalation").get_json()["strata"][0]["stratum"] == "default"
    assert "decisions" in client.get("/decisions").get_json()
    audit = client.get("/audit", query_string={"patient": "S001", "limit": 5}).get_json()
    assert len(audit["entries"]) == 5 and audit["entries"][0]["patient_id"] == "S001"
    bad = client.get("/patients/S001", query_string={"valid_on": "yesterday"})
    assert bad.status_code == 422 and "valid_on" in bad.get_json()["errors"]


def test_the_feed_pages_through_every_event_in_commit_order_and_filters(client: FlaskClient, context: ServerContext) -> None:
    events = all_events(client)
    positions = [e["position"] for e in events]
    assert positions == sorted(positions) and len(set(positions)) == len(events) == entries(context)
    first = events[0]
    assert list(first) == ["position", "entry_id", "type", "patient_id", "stratum", "occurred_on", "recorded_at", "recorded_by", "role",
                           "reason", "source", "data"]
    assert first["type"] == "PatientEnrolled" and first["data"]["patient_id"] == "S001" and first["recorded_by"] == "site.coordinator"
    doses = all_events(client, type="BosutinibDoseRecorded")
    assert doses and all(e["type"] == "BosutinibDoseRecorded" for e in doses)
    assert [e["entry_id"] for e in doses] == [e["entry_id"] for e in events if e["type"] == "BosutinibDoseRecorded"]
    two_types = all_events(client, type="CycleStarted,PatientEnrolled")
    assert {e["type"] for e in two_types} == {"CycleStarted", "PatientEnrolled"}
    assert all_events(client, patient="NOBODY") == []
    # a filtered page that found nothing still moves the position past what it read
    last = client.get("/events", query_string={"after": 0, "patient": "NOBODY"}).get_json()
    assert last == {"events": [], "next_after": positions[-1]}
    assert client.get("/events", query_string={"type": "NoSuchEvent"}).status_code == 422
    assert client.get("/events", query_string={"limit": 0}).status_code == 422
    assert client.get("/events", query_string={"after": -1}).status_code == 422


def test_a_long_poll_returns_as_soon_as_an_event_commits(client: FlaskClient, context: ServerContext, database_url: str) -> None:
    head = client.get("/health").get_json()["head"]
    writer = build_ledger(Settings(database_url=database_url, user="other.process", role=Role.COORDINATOR), create=False)

    def write_later() -> None:
        time.sleep(0.5)
        writer.handle(parse_command({"command": "enroll_patient", **ENROLL}), Actor("other.process", Role.COORDINATOR))

    thread = threading.Thread(target=write_later)
    started = time.monotonic()
    thread.start()
    answer = client.get("/events", query_string={"after": head, "wait": 20}).get_json()
    waited = time.monotonic() - started
    thread.join()
    writer.close()
    assert answer["events"] and answer["events"][0]["type"] == "PatientEnrolled" and answer["events"][0]["patient_id"] == "H001"
    assert 0.4 < waited < 10
    empty_started = time.monotonic()
    idle = client.get("/events", query_string={"after": answer["next_after"], "wait": 0.3}).get_json()
    assert idle == {"events": [], "next_after": answer["next_after"]} and time.monotonic() - empty_started >= 0.3


def sse_events(response: Any, count: int) -> list[dict[str, str]]:
    """The first ``count`` Server-Sent Events of a streamed response, each as its fields."""
    found: list[dict[str, str]] = []
    buffer = ""
    for chunk in response.response:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
            if "event" in fields:
                found.append(fields)
            if len(found) == count:
                response.close()
                return found
    return found


def test_the_live_stream_sends_events_resumes_after_last_event_id_and_beats_when_idle(client: FlaskClient, context: ServerContext) -> None:
    events = all_events(client)
    streamed = sse_events(client.get("/events/stream", query_string={"after": 0, "heartbeat": 0.1}, buffered=False), 5)
    assert [int(e["id"]) for e in streamed] == [e["position"] for e in events[:5]]
    assert json.loads(streamed[0]["data"]) == events[0] and streamed[0]["event"] == events[0]["type"]
    resumed = sse_events(client.get("/events/stream", headers={"Last-Event-ID": str(events[2]["position"])}, buffered=False), 2)
    assert [int(e["id"]) for e in resumed] == [events[3]["position"], events[4]["position"]]
    tail = sse_events(client.get("/events/stream", query_string={"after": events[-1]["position"], "heartbeat": 0.1}, buffered=False), 1)
    assert tail[0]["event"] == "heartbeat" and int(tail[0]["id"]) == events[-1]["position"]
    assert client.get("/events/stream", headers={"Last-Event-ID": "soon"}).status_code == 422


def test_a_secured_ledger_signs_each_request_in_and_checks_the_role(context: ServerContext, client: FlaskClient) -> None:
    with context.ledger() as ledger:
        directory = Directory(ledger)
        admin = directory.authenticate(directory.bootstrap("admin.user", "Ada Admin", Actor("installer", Role.INVESTIGATOR)).token)
        tokens = {role: directory.register(f"{role.value}.user", role.value.title(), role, admin).token
                  for role in (Role.COORDINATOR, Role.SUBSCRIBER, Role.SPONSOR)}

    def bearer(role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[role]}"}

    before = entries(context)
    assert client.get("/patients/S001").status_code == 401
    wrong = client.get("/patients/S001", headers={"Authorization": "Bearer coordinator.user:not-the-secret"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
    assert entries(context) == before + 1  # the failed sign-in is itself recorded
    assert client.get("/patients/S001", headers=bearer(Role.COORDINATOR)).status_code == 200
    recorded = client.post("/commands/enroll_patient", json=ENROLL, headers=bearer(Role.COORDINATOR))
    assert recorded.status_code == 201
    refused = client.post("/commands/enroll_patient", json={**ENROLL, "patient_id": "H002"}, headers=bearer(Role.SUBSCRIBER))
    assert refused.status_code == 403 and refused.get_json()["rule_id"] == "ACCESS-ROLE"
    assert client.get("/events", headers=bearer(Role.COORDINATOR)).status_code == 403
    feed = all_events(client, headers=bearer(Role.SUBSCRIBER))
    assert feed[-1]["entry_id"] == recorded.get_json()["entry_ids"][-1]
    assert {"AuthenticationFailed", "UserRegistered"} <= {e["type"] for e in feed}
    sponsor = client.get("/patients/S001/history", headers=bearer(Role.SPONSOR))
    assert sponsor.status_code == 403
    shown = client.get("/patients/S001", headers=bearer(Role.SPONSOR)).get_json()
    assert shown["patient_id"] == "S001" and not {'"reason":', '"source":', '"site":'} & {token for token in json.dumps(shown).split() if token.endswith(":")}
    viewed = [e for e in all_events(client, headers=bearer(Role.SUBSCRIBER)) if e["type"] == "RecordsViewed"]
    assert [e["recorded_by"] for e in viewed] == ["sponsor.user"]


def test_health_reports_the_head_without_sign_in(client: FlaskClient, context: ServerContext) -> None:
    health = client.get("/health").get_json()
    assert health["ok"] and health["head"] == context.feed.head() and health["secured"] is False


def test_the_openapi_document_is_served_with_every_command_and_the_feed(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    paths = set(document["paths"])
    assert {"/commands/enroll_patient", "/commands/void_entry", "/events", "/events/stream", "/patients/{patient_id}", "/audit"} <= paths
    body = document["paths"]["/commands/enroll_patient"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/EnrollPatient")
    assert {"201", "200", "409", "422"} <= set(document["paths"]["/commands/enroll_patient"]["post"]["responses"])
