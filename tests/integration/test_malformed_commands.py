"""Malformed commands are refused naming a field, before any rule runs, and change nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import fields

from ledger.application import TrialLedger
from ledger.bootstrap import Settings, build_ledger
from ledger.clock import FixedClock
from ledger.domain.values import Actor
from ledger.errors import InvalidCommand
from ledger.interfaces.importer import import_file
from ledger.interfaces.schemas import SCHEMAS, parse_command

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one-patient.jsonl"

VALID: dict[str, dict[str, Any]] = {
    "enroll_patient": {"patient_id": "P900", "enrolled_on": "2016-02-01", "diagnosis": "PH_POS_ALL", "phase": "I",
                       "cd22_percent": 50, "abl_mutations": [], "bsa_m2": 1.8},
    "start_cycle": {"patient_id": "S001", "cycle": 3, "started_on": "2016-03-29"},
    "record_bosutinib_dose": {"patient_id": "S001", "taken_on": "2016-03-02", "dose_mg": 300},
    "modify_bosutinib_dose": {"patient_id": "S001", "effective_on": "2016-03-02", "dose_mg": 200, "reason": "rash"},
    "record_ino_infusion": {"patient_id": "S001", "given_on": "2016-03-01", "dose_mg_m2": 1.0},
    "report_toxicity": {"patient_id": "S001", "onset_on": "2016-03-02", "term": "Rash", "grade": 2, "attribution": "POSSIBLE"},
    "assess_response": {"patient_id": "S001", "assessed_on": "2016-03-20", "response": "CR"},
    "end_treatment": {"patient_id": "S001", "ended_on": "2016-03-20", "end_reason": "COMPLETED"},
    "record_follow_up": {"patient_id": "S001", "contacted_on": "2016-06-20", "vital_status": "ALIVE"},
    "record_death": {"patient_id": "S001", "died_on": "2016-09-01"},
    "decide_escalation": {"stratum": "default", "decided_on": "2016-03-20", "dose_mg": 300, "decision": "ESCALATE"},
    "void_entry": {"patient_id": "S001", "entry_id": "x", "reason": "wrong patient"},
}

# per kind of field, values that field must refuse
WRONG_BY_FIELD: list[tuple[type[fields.Field], list[Any]]] = [
    (fields.Date, ["2016-13-45", "yesterday", [], 20160101]),
    (fields.AwareDateTime, ["2016-02-02T25:00:00+00:00", "noon", []]),
    (fields.Integer, ["lots", [], 2.5, {"n": 1}]),
    (fields.Float, ["lots", [], {"n": 1}, "nan"]),
    (fields.Enum, ["MAYBE", [], 3]),
    (fields.Boolean, ["perhaps", [], {"n": 1}]),
    (fields.List, ["T315I", {"n": 1}, [[]], [""]]),
    (fields.String, ["no such value!", [], {"n": 1}, ""]),
]
FREE_TEXT = {"term", "reason", "cause"}


def wrong_values(field: fields.Field, name: str) -> list[Any]:
    if name in FREE_TEXT:
        return [[], {"n": 1}, ""]
    return next(values for kind, values in WRONG_BY_FIELD if isinstance(field, kind))


@st.composite
def malformed(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid command with one field broken; returns it and the field that is broken."""
    name = draw(st.sampled_from(sorted(VALID)))
    data = {"command": name, **VALID[name]}
    how = draw(st.sampled_from(["drop", "wrong", "extra"]))
    required = [f for f, spec in SCHEMAS[name]().fields.items() if spec.required]
    if how == "drop":
        field = draw(st.sampled_from(required))
        del data[field]
    elif how == "wrong":
        field = draw(st.sampled_from(sorted(VALID[name])))
        data[field] = draw(st.sampled_from(wrong_values(SCHEMAS[name]().fields[field], field)))
    else:
        names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=3, max_size=12)
        field = draw(names.filter(lambda f: f not in SCHEMAS[name]().fields and f != "command"))
        data[field] = 1
    return data, field


@pytest.fixture
def sqlite_ledger(tmp_path: Path, clock: FixedClock) -> Iterator[TrialLedger]:
    """The property runs on the embedded store only: parsing never reaches the database."""
    trial = build_ledger(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}", user="tester"), clock=clock)
    yield trial
    trial.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=malformed())
def test_a_malformed_command_is_refused_naming_the_field_and_changes_nothing(
    sqlite_ledger: TrialLedger, investigator: Actor, tmp_path_factory: pytest.TempPathFactory, case: tuple[dict[str, Any], str]
) -> None:
    data, field = case
    if sqlite_ledger.store.recorder.max_notification_id() is None:
        import_file(sqlite_ledger, EXAMPLE, investigator)
    before = sqlite_ledger.store.recorder.max_notification_id()
    with pytest.raises(InvalidCommand) as refusal:
        parse_command(data)
    assert field in {name.split(".")[0] for name in refusal.value.errors}
    path = tmp_path_factory.mktemp("line") / "one.jsonl"
    path.write_text(json.dumps(data) + "\n")
    report = import_file(sqlite_ledger, path, investigator)
    assert report.problems and report.problems[0].kind == "invalid" and field in report.problems[0].message
    assert sqlite_ledger.store.recorder.max_notification_id() == before


@pytest.mark.parametrize("name", sorted(VALID))
def test_every_valid_sample_parses(name: str) -> None:
    assert parse_command({"command": name, **VALID[name]}).name == name


def test_an_unknown_command_is_refused_naming_the_command_field() -> None:
    with pytest.raises(InvalidCommand) as refusal:
        parse_command({"command": "delete_everything", "patient_id": "P001"})
    assert list(refusal.value.errors) == ["command"]


def test_a_deviation_without_a_reason_is_refused_naming_reason() -> None:
    with pytest.raises(InvalidCommand) as refusal:
        parse_command({"command": "start_cycle", "patient_id": "P001", "cycle": 7, "started_on": "2016-02-02", "deviation": True})
    assert "reason" in refusal.value.errors


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("patient_id", "P001\n"),  # a trailing newline would make a second patient
        ("command_id", "x\x00y"),  # a NUL the database would refuse mid-import
        ("reason", "   "),  # a reason must say something
        ("source", "EDC\x07"),
    ],
)
def test_identifiers_and_text_with_hidden_characters_are_refused(field: str, value: str) -> None:
    data = {"command": "start_cycle", "patient_id": "P001", "cycle": 1, "started_on": "2016-02-02", field: value}
    with pytest.raises(InvalidCommand) as refusal:
        parse_command(data)
    assert field in refusal.value.errors


def test_a_reason_may_run_over_several_lines() -> None:
    command = parse_command({"command": "start_cycle", "patient_id": "P001", "cycle": 1, "started_on": "2016-02-02", "reason": "one\ntwo"})
    assert command.reason == "one\ntwo"
