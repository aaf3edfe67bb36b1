"""What the relay sends for an event: its subject, headers and payload (no broker, no database)."""

from __future__ import annotations

import json
import string
from urllib.parse import unquote

from hypothesis import given
from hypothesis import strategies as st

from ledger.streams.relay import Message, patient_token, shown, subject_of

#: study subject ids as the command schemas accept them
PATIENT_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}", fullmatch=True)

EVENT = {
    "position": 7,
    "entry_id": "5722cfd1-1e10-4910-9607-f177a43574c2",
    "type": "ToxicityReported",
    "patient_id": "S.001",
    "stratum": "default",
    "occurred_on": "2016-02-10",
    "recorded_at": "2026-03-01T09:00:00+00:00",
    "recorded_by": "coord.lee",
    "role": "coordinator",
    "reason": "grade ≥ 3 seen at the visit",
    "source": None,
    "data": {"term": "Nausea", "grade": 1},
}


def test_a_dot_in_a_patient_id_is_escaped_so_it_stays_one_subject_token() -> None:
    assert patient_token("S.001") == "S%2E001"
    assert patient_token("SITE-3:P_01") == "SITE-3:P_01"


def test_an_event_of_no_patient_goes_to_the_dash_token() -> None:
    assert patient_token(None) == "-"
    assert subject_of("ledger", {"type": "EscalationDecided", "patient_id": None}) == "ledger.EscalationDecided.-"


@given(PATIENT_IDS)
def test_every_patient_id_gives_one_safe_token_that_unescapes_to_it(patient_id: str) -> None:
    token = patient_token(patient_id)
    assert set(token) <= set(string.ascii_letters + string.digits + "_:-%")  # no '.', '*', '>' or space
    assert token != "-"
    assert unquote(token) == patient_id


def test_the_subject_is_prefix_event_type_and_patient() -> None:
    assert subject_of("acme.ledger", EVENT) == "acme.ledger.ToxicityReported.S%2E001"


def test_a_message_carries_the_feed_document_as_compact_utf8_json_and_its_ids_in_headers() -> None:
    message = Message.of("ledger", EVENT)
    assert json.loads(message.payload.decode("utf-8")) == EVENT
    assert b", " not in message.payload and "≥".encode() in message.payload
    assert message.headers == {"Nats-Msg-Id": EVENT["entry_id"], "Ledger-Position": "7", "Ledger-Type": "ToxicityReported"}
    assert (message.position, message.entry_id) == (7, EVENT["entry_id"])


def test_a_server_url_is_shown_without_its_credentials() -> None:
    assert shown("nats://relay:s3cret@broker:4222,nats://other:4222") == "nats://***@broker:4222,nats://other:4222"
