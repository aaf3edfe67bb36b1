"""Rule ACCESS-ROLE through the CLI: each role allowed and refused exactly what docs/access.md says.

The expected table is written out here, not read from the code, so a change to the code's
table that the documentation does not make fails this test.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import cast
from uuid import UUID

import pytest
from sqlalchemy import select

from ledger.application import TrialLedger
from ledger.bootstrap import Settings, build_ledger
from ledger.domain.values import Actor, Entry, Role
from ledger.identity.directory import Directory
from ledger.interfaces import cli
from ledger.persistence import EntryRow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one-patient.jsonl"
ROLES = ("coordinator", "investigator", "monitor", "auditor", "sponsor", "subscriber", "admin")
C, I, M, A, S, SUB, AD = ROLES  # noqa: E741

# action → (the arguments that ask for it, the roles allowed)
MATRIX: dict[str, tuple[list[str], set[str]]] = {
    "enroll_patient": (["enroll-patient", "P900"], {C, I}),
    "start_cycle": (["start-cycle", "S001"], {C, I}),
    "record_bosutinib_dose": (["record-bosutinib-dose", "S001"], {C, I}),
    "modify_bosutinib_dose": (["modify-bosutinib-dose", "S001"], {C, I}),
    "record_ino_infusion": (["record-ino-infusion", "S001"], {C, I}),
    "report_toxicity": (["report-toxicity", "S001"], {C, I}),
    "resolve_toxicity": (["resolve-toxicity", "S001"], {C, I}),
    "assess_response": (["assess-response", "S001"], {C, I}),
    "end_treatment": (["end-treatment", "S001"], {C, I}),
    "record_follow_up": (["record-follow-up", "S001"], {C, I}),
    "record_lost_to_follow_up": (["record-lost-to-follow-up", "S001"], {C, I}),
    "record_death": (["record-death", "S001"], {C, I}),
    "correct_entry": (["correct-entry", "S001"], {C, I}),
    "void_entry": (["void-entry", "S001"], {C, I}),
    "decide_escalation": (["decide-escalation"], {I}),
    "import": (["import", str(EXAMPLE)], {C, I}),
    "sign": (["sign", "casebook", "S001", "--meaning", "reviewed", "--credential-stdin"], {I}),
    "patient show": (["patient", "show", "S001"], {C, I, M, A, S}),
    "patient history": (["patient", "history", "S001"], {C, I, M, A}),
    "escalation show": (["escalation", "show"], {C, I, M, A, S}),
    "decisions": (["decisions"], {C, I, M, A, S}),
    "summary": (["summary"], {C, I, M, A, S}),
    "schedule show": (["schedule", "show"], {C, I, M, A, S}),
    "report": (["report", "--json"], {C, I, M, A, S}),
    "export sdtm": (["export", "sdtm", "--dir", "SDTM", "--no-xpt"], {C, I, M, A, S}),
    "audit show": (["audit"], {C, I, M, A}),
    "audit export": (["audit", "export", "--format", "csv"], {M, A}),
    "verify": (["verify"], {M, A, AD}),
    "seal": (["seal", "--key", "KEY"], {A, AD}),
    "user list": (["user", "list"], {AD, A, M}),
    "user add": (["user", "add", "new.user", "--name", "New User", "--role", "monitor"], {AD}),
    "user role": (["user", "role", "no.such.user", "auditor"], {AD}),
    "user deactivate": (["user", "deactivate", "no.such.user"], {AD}),
    "user reactivate": (["user", "reactivate", "no.such.user"], {AD}),
    "user reset-credential": (["user", "reset-credential", "no.such.user"], {AD}),
    "user bootstrap": (["user", "bootstrap", "second.admin", "--name", "Second"], set()),
    "project": (["project"], {AD}),
    "rebuild": (["rebuild"], {AD}),
    "migrate": (["migrate"], {AD}),
    "scheduler run": (["scheduler", "run", "--once"], {AD}),
    "serve": (["serve", "--port", "0"], {AD}),  # the server itself is replaced by a stand-in below
    # no NATS listens there: an allowed role gets past the access check to exit 9, a refused one stops at it
    "relay nats": (["relay", "nats", "--url", "nats://127.0.0.1:1", "--once"], {SUB, AD}),
    "demo": (["demo"], set()),
}


@pytest.fixture
def tokens(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A ledger with the example patient and one user per role; their tokens by role."""
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    ledger = build_ledger(Settings(database_url=database_url))
    directory = Directory(ledger)
    root = directory.bootstrap("admin.user", "Ada Admin", Actor("installer", Role.INVESTIGATOR))
    result = {AD: root.token}
    admin = directory.authenticate(root.token)
    for role in ROLES[:-1]:
        result[role] = directory.register(f"{role}.user", role.title(), Role(role), admin).token
    ledger.close()
    yield result


def run(argv: list[str], token: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setenv("LEDGER_TOKEN", token)
    monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))
    code = cli.main(argv)
    return code, capsys.readouterr().err


def test_each_role_is_allowed_and_refused_exactly_what_the_table_says(
    tokens: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, err = run(["import", str(EXAMPLE)], tokens[I], capsys, monkeypatch)
    assert code == 0, err
    served: list[str] = []
    monkeypatch.setattr("ledger.interfaces.serve_cli.run_server", lambda args, settings: served.append(settings.user))
    wrong = []
    for action, (argv, allowed) in MATRIX.items():
        for role in ROLES:
            args = [str(tmp_path / f"{role}.pem") if a == "KEY" else str(tmp_path / f"{role}-sdtm") if a == "SDTM" else a for a in argv]
            code, err = run(args, tokens[role], capsys, monkeypatch)
            refused = code == cli.EXIT_REFUSED and "ACCESS-ROLE" in err
            assert code != cli.EXIT_AUTH, err
            if refused == (role in allowed):
                wrong.append(f"{role} {'refused' if refused else 'allowed'} {action}: exit {code} {err.strip()[:160]}")
    assert not wrong, "\n".join(wrong)
    assert served == ["admin.user"]


def test_without_a_valid_token_nothing_runs_and_the_attempt_is_recorded(
    tokens: dict[str, str], database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, err = run(["summary"], "monitor.user:wrong", capsys, monkeypatch)
    assert code == cli.EXIT_AUTH and "authentication failed" in err
    monkeypatch.delenv("LEDGER_TOKEN")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert cli.main(["summary"]) == cli.EXIT_AUTH
    assert "LEDGER_TOKEN" in capsys.readouterr().err
    ledger = build_ledger(Settings(database_url=database_url))
    with ledger.transaction(commit=False) as session:
        failed = session.execute(select(EntryRow.kind).where(EntryRow.kind == "AuthenticationFailed")).scalars().all()
    ledger.close()
    assert len(failed) == 1


def test_auditor_and_sponsor_reads_leave_an_entry_and_the_sponsor_sees_no_free_text(
    tokens: dict[str, str], database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run(["import", str(EXAMPLE)], tokens[I], capsys, monkeypatch)
    for role in (M, A, S):
        code, out = run(["patient", "show", "S001", "--json"], tokens[role], capsys, monkeypatch)
        assert code == 0
    monkeypatch.setenv("LEDGER_TOKEN", tokens[S])
    assert cli.main(["patient", "show", "S001", "--json"]) == 0
    sponsor_view = json.loads(capsys.readouterr().out)
    assert not {"reason", "source", "cause", "site", "birth_year", "sex"} & _keys(sponsor_view)
    ledger = build_ledger(Settings(database_url=database_url))
    with ledger.transaction(commit=False) as session:
        viewed = session.execute(select(EntryRow.recorded_by).where(EntryRow.kind == "RecordsViewed")).scalars().all()
    ledger.close()
    assert sorted(viewed) == ["auditor.user", "sponsor.user", "sponsor.user"]


def _keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_every_export_is_recorded_with_its_format_filters_and_size(
    tokens: dict[str, str], database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run(["import", str(EXAMPLE)], tokens[I], capsys, monkeypatch)
    code, err = run(["audit", "export", "--format", "json", "--patient", "S001"], tokens[M], capsys, monkeypatch)
    assert code == 0, err
    ledger = build_ledger(Settings(database_url=database_url))
    [entry] = [e for e in _access_entries(ledger) if e.kind == "AuditExported"]
    ledger.close()
    assert entry.recorded_by == "monitor.user" and entry.role == "monitor"
    assert entry.data["export_format"] == "json" and entry.data["filters"]["patient"] == "S001" and entry.data["entries"] >= 37


def _access_entries(ledger: TrialLedger) -> list[Entry]:
    from ledger.domain.access import AccessRecord

    with ledger.transaction(commit=False) as session:
        ids = session.execute(select(EntryRow.aggregate_id).where(EntryRow.kind.in_(["AuditExported", "RecordsViewed"]))).scalars().all()
    return [e for i in ids for e in cast(AccessRecord, ledger.store.repository.get(UUID(i))).entries]
