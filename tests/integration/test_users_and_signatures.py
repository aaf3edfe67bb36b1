"""Users, authentication and electronic signatures, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from datetime import date

import pytest
from sqlalchemy import select

from ledger.application import TrialLedger
from ledger.audit import AuditFilter, export
from ledger.clock import FixedClock
from ledger.commands import CorrectEntry, RecordBosutinibDose, ReportToxicity, SignRecord, StartCycle
from ledger.domain.values import Actor, Attribution, Role, SignatureMeaning, SignatureScope
from ledger.errors import CommandRefused, NotAuthenticated
from ledger.identity.credentials import parse_token
from ledger.identity.directory import Directory
from ledger.persistence import CredentialRow, EntryRow
from ledger.policies.access import sponsor_view
from ledger.projections.projector import Projector
from ledger.provenance import decisions_document
from ledger.queries import patient_document
from tests.integration.test_decisions import cohort_escalated
from tests.integration.test_recording import enroll
from tests.odm_checks import tag, undefined_references, valid_odm

D = date.fromisoformat
INSTALLER = Actor("installer", Role.INVESTIGATOR)


def kinds(ledger: TrialLedger) -> list[str]:
    with ledger.transaction(commit=False) as session:
        return list(session.execute(select(EntryRow.kind).order_by(EntryRow.position)).scalars())


@pytest.fixture
def secured(ledger: TrialLedger) -> tuple[Directory, dict[str, str]]:
    """A ledger with an admin, a coordinator and an investigator; their tokens by user id."""
    directory = Directory(ledger)
    admin = directory.bootstrap("root", "Robin Root", INSTALLER)
    tokens = {"root": admin.token}
    root = directory.authenticate(admin.token)
    for user_id, name, role in (("kim", "Kim Coordinator", Role.COORDINATOR), ("jain", "Dr Asha Jain", Role.INVESTIGATOR)):
        tokens[user_id] = directory.register(user_id, name, role, root).token
    return directory, tokens


def test_the_first_user_is_an_admin_and_after_that_only_an_admin_registers_users(ledger: TrialLedger) -> None:
    directory = Directory(ledger)
    assert not ledger.secured
    issued = directory.bootstrap("root", "Robin Root", INSTALLER)
    assert ledger.secured
    assert directory.authenticate(issued.token) == Actor("root", Role.ADMIN)
    with pytest.raises(CommandRefused, match="USER-BOOTSTRAP"):
        directory.bootstrap("mallory", "Mallory", INSTALLER)
    with pytest.raises(CommandRefused, match="ACCESS-ROLE"):
        directory.register("mallory", "Mallory", Role.ADMIN, INSTALLER)  # not an admin of this ledger
    assert [u["user_id"] for u in directory.users()] == ["root"]


def test_credentials_are_stored_only_as_salted_hashes(ledger: TrialLedger, secured: tuple[Directory, dict[str, str]]) -> None:
    _, tokens = secured
    with ledger.transaction(commit=False) as session:
        stored = dict(session.execute(select(CredentialRow.user_id, CredentialRow.secret_hash)).tuples().all())
    assert set(stored) == {"root", "kim", "jain"}
    for user_id, token in tokens.items():
        secret = parse_token(token)[1]
        assert stored[user_id].startswith("$argon2id$") and secret not in stored[user_id]
    with ledger.engine.connect() as connection:
        events = connection.exec_driver_sql(f"SELECT state FROM {ledger.recorder.events_table_name}").scalars().all()
    assert not any(parse_token(t)[1].encode() in bytes(s) for t in tokens.values() for s in events)


def test_failed_authentication_is_recorded_and_says_only_that_it_failed(ledger: TrialLedger, secured: tuple[Directory, dict[str, str]]) -> None:
    directory, tokens = secured
    for token in ("kim:not-the-credential", "nobody:whatever", "garbage"):
        with pytest.raises(NotAuthenticated, match="authentication failed"):
            directory.authenticate(token)
    root = directory.authenticate(tokens["root"])
    directory.deactivate("kim", root, reason="left the site")
    with pytest.raises(NotAuthenticated):
        directory.authenticate(tokens["kim"])
    assert kinds(ledger).count("AuthenticationFailed") == 4
    with ledger.transaction(commit=False) as session:
        failed = session.execute(select(EntryRow.recorded_by, EntryRow.role).where(EntryRow.kind == "AuthenticationFailed")).tuples().all()
    assert set(failed) == {("system:authentication", "system")}


def test_a_reissued_credential_replaces_the_old_one(ledger: TrialLedger, secured: tuple[Directory, dict[str, str]]) -> None:
    directory, tokens = secured
    root = directory.authenticate(tokens["root"])
    new = directory.reissue("kim", root)
    assert directory.authenticate(new.token) == Actor("kim", Role.COORDINATOR)
    with pytest.raises(NotAuthenticated):
        directory.authenticate(tokens["kim"])


def test_role_changes_are_recorded_and_the_last_admin_stays(ledger: TrialLedger, secured: tuple[Directory, dict[str, str]]) -> None:
    directory, tokens = secured
    root = directory.authenticate(tokens["root"])
    directory.change_role("kim", Role.MONITOR, root, reason="now monitors site 2")
    assert directory.authenticate(tokens["kim"]) == Actor("kim", Role.MONITOR)
    with pytest.raises(CommandRefused, match="USER-LAST-ADMIN"):
        directory.deactivate("root", root)
    with pytest.raises(CommandRefused, match="USER-LAST-ADMIN"):
        directory.change_role("root", Role.AUDITOR, root)
    with pytest.raises(CommandRefused, match="ACCESS-ROLE"):
        directory.change_role("jain", Role.ADMIN, directory.authenticate(tokens["jain"]))
    assert kinds(ledger).count("UserRoleChanged") == 1


def test_an_admin_cannot_record_clinical_facts_once_users_exist(ledger: TrialLedger, secured: tuple[Directory, dict[str, str]]) -> None:
    directory, tokens = secured
    root = directory.authenticate(tokens["root"])
    with pytest.raises(CommandRefused, match="ACCESS-ROLE"):
        enroll(ledger, root)
    enroll(ledger, directory.authenticate(tokens["kim"]))
    assert "PatientEnrolled" in kinds(ledger)


def sign(ledger: TrialLedger, actor: Actor, token: str, scope: SignatureScope, **fields: object) -> str:
    command = SignRecord(scope=scope, meaning=SignatureMeaning.REVIEWED, credential=parse_token(token)[1], **fields)  # type: ignore[arg-type]
    return ledger.handle(command, actor).entry_ids[0]


def test_a_signature_needs_the_signers_credential_and_holds_what_was_signed(ledger: TrialLedger, secured: tuple[Directory, dict[str, str]]) -> None:
    directory, tokens = secured
    kim, jain = directory.authenticate(tokens["kim"]), directory.authenticate(tokens["jain"])
    enroll(ledger, kim)
    ledger.handle(StartCycle(patient_id="P001", cycle=1, started_on=D("2016-02-02")), kim)
    with pytest.raises(CommandRefused, match="SIGNATURE: the credential entered does not match"):
        sign(ledger, jain, tokens["kim"], SignatureScope.CYCLE, patient_id="P001", cycle=1)
    with pytest.raises(CommandRefused, match="ACCESS-ROLE"):
        sign(ledger, kim, tokens["kim"], SignatureScope.CYCLE, patient_id="P001", cycle=1)
    with pytest.raises(CommandRefused, match="no cycle 2"):
        sign(ledger, jain, tokens["jain"], SignatureScope.CYCLE, patient_id="P001", cycle=2)
    entry_id = sign(ledger, jain, tokens["jain"], SignatureScope.CYCLE, patient_id="P001", cycle=1)
    [signature] = patient_document(ledger, "P001", valid_on=D("2016-02-10"))["signatures"]
    assert signature["entry_id"] == entry_id
    assert (signature["signer"], signature["printed_name"], signature["meaning"]) == ("jain", "Dr Asha Jain", "reviewed")
    assert signature["status"] == "VALID" and len(signature["state_hash"]) == 64


def test_a_later_change_to_signed_data_requires_re_review(ledger: TrialLedger, secured: tuple[Directory, dict[str, str]]) -> None:
    directory, tokens = secured
    kim, jain = directory.authenticate(tokens["kim"]), directory.authenticate(tokens["jain"])
    enroll(ledger, kim)
    ledger.handle(StartCycle(patient_id="P001", cycle=1, started_on=D("2016-02-02")), kim)
    dose = ledger.handle(RecordBosutinibDose(patient_id="P001", taken_on=D("2016-02-02"), dose_mg=300), kim).entry_ids[0]
    cycle1 = sign(ledger, jain, tokens["jain"], SignatureScope.CYCLE, patient_id="P001", cycle=1)
    casebook = sign(ledger, jain, tokens["jain"], SignatureScope.CASEBOOK, patient_id="P001")

    def statuses() -> dict[str, str]:
        return {s["entry_id"]: s["status"] for s in patient_document(ledger, "P001", valid_on=D("2016-06-01"))["signatures"]}

    assert statuses() == {cycle1: "VALID", casebook: "VALID"}
    outcome = ledger.handle(CorrectEntry(patient_id="P001", entry_id=dose, changes={"taken_on": "2016-02-03"}, reason="transcription"), kim)
    assert statuses() == {cycle1: "RE-REVIEW REQUIRED", casebook: "RE-REVIEW REQUIRED"}
    invalidated = [e for e in ledger.load_patient("P001").entries if e.kind == "SignatureInvalidated"]
    assert {e.data["changed_by_entry_id"] for e in invalidated} == {outcome.entry_ids[0]}
    assert {e.data["signature_entry_id"] for e in invalidated} == {cycle1, casebook}
    # signed again, then a fact outside the signed cycle leaves the cycle's signature standing
    again = sign(ledger, jain, tokens["jain"], SignatureScope.CYCLE, patient_id="P001", cycle=1)
    ledger.handle(
        ReportToxicity(
            patient_id="P001", onset_on=D("2016-04-01"), term="Rash", grade=1, attribution=Attribution.UNLIKELY, serious=False, hematologic=False
        ),
        kim,
    )
    assert statuses()[again] == "VALID"


def test_signing_needs_registered_users(ledger: TrialLedger, investigator: Actor) -> None:
    enroll(ledger, investigator)
    with pytest.raises(CommandRefused, match="SIGNATURE"):
        ledger.handle(SignRecord(scope=SignatureScope.CASEBOOK, meaning=SignatureMeaning.APPROVED, patient_id="P001", credential="x"), investigator)


def test_a_signed_decision_needs_re_review_when_a_fact_of_its_basis_is_corrected(
    ledger: TrialLedger, secured: tuple[Directory, dict[str, str]], clock: FixedClock
) -> None:
    directory, tokens = secured
    jain = directory.authenticate(tokens["jain"])
    cohort_escalated(ledger, jain, clock)
    [decision] = decisions_document(ledger)["decisions"]
    signed = sign(ledger, jain, tokens["jain"], SignatureScope.ESCALATION_DECISION, stratum="default", decision_entry_id=decision["entry_id"])
    [before] = decisions_document(ledger)["decisions"][0]["signatures"]
    assert (before["entry_id"], before["status"]) == (signed, "VALID")
    start = next(e for e in ledger.load_patient("P1").entries if e.kind == "CycleStarted")
    assert start.entry_id in decision["basis"]
    ledger.handle(CorrectEntry(patient_id="P1", entry_id=start.entry_id, changes={"started_on": "2016-01-05"}, reason="date from source"), jain)
    [after] = decisions_document(ledger)["decisions"][0]["signatures"]
    assert after["status"] == "RE-REVIEW REQUIRED"
    assert any(e.kind == "SignatureInvalidated" for e in ledger.load_escalation("default").entries)  # type: ignore[union-attr]


def test_the_sponsor_view_drops_free_text_at_any_depth() -> None:
    doc = {"decisions": [{"entry_id": "e1", "reason": "PI on leave", "signatures": [{"signer": "jain", "source": "memo"}]}], "site": "Ward 3"}
    assert sponsor_view(doc) == {"decisions": [{"entry_id": "e1", "signatures": [{"signer": "jain"}]}]}


def test_signatures_and_their_invalidation_export_as_valid_odm(ledger: TrialLedger, secured: tuple[Directory, dict[str, str]]) -> None:
    directory, tokens = secured
    kim, jain = directory.authenticate(tokens["kim"]), directory.authenticate(tokens["jain"])
    enroll(ledger, kim)
    ledger.handle(StartCycle(patient_id="P001", cycle=1, started_on=D("2016-02-02")), kim)
    dose = ledger.handle(RecordBosutinibDose(patient_id="P001", taken_on=D("2016-02-02"), dose_mg=300), kim).entry_ids[0]
    sign(ledger, jain, tokens["jain"], SignatureScope.CYCLE, patient_id="P001", cycle=1)
    ledger.handle(CorrectEntry(patient_id="P001", entry_id=dose, changes={"taken_on": "2016-02-03"}, reason="transcription"), kim)
    Projector(ledger).catch_up()
    out = io.StringIO()
    export(ledger, "odm", AuditFilter(patient_id="P001"), out)
    root = valid_odm(out.getvalue())
    assert not undefined_references(root)
    signatures = [e for e in root.iter() if tag(e) == "Signature"]
    assert len(signatures) == 1
    assert any(tag(e) == "FullName" and e.text == "Dr Asha Jain" for e in root.iter())
    assert "SignatureInvalidated" in out.getvalue()
