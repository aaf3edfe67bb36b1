"""``ledger report`` and ``ledger export sdtm`` on the synthetic demo trial, as a sponsor's analyst runs them.

The demo is recorded once per backend (it takes seconds), then one scenario runs the report as
JSON, as an HTML page with its figures, and the SDTM export through the CLI's entry point.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from ledger.application import TrialLedger
from ledger.demo import run_demo
from ledger.interfaces import cli
from ledger.persistence import EntryRow

pytestmark = pytest.mark.slow


@pytest.fixture
def demo(ledger: TrialLedger, database_url: str, monkeypatch: pytest.MonkeyPatch) -> TrialLedger:
    assert run_demo(ledger, io.StringIO()) == 0
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("LEDGER_USER", "analyst")
    return ledger


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def entry_ids(value: object) -> set[str]:
    """Every entry id named anywhere in the report."""
    if isinstance(value, dict):
        found = {v for k, v in value.items() if k in ("entry_id", "from_entry_id", "to_entry_id") and isinstance(v, str)}
        for k, v in value.items():
            if k in ("entry_ids", "population_entry_ids", "sources"):
                found |= set(v)
            else:
                found |= entry_ids(v)
        return found
    if isinstance(value, list):
        return {i for v in value for i in entry_ids(v)}
    return set()


def test_report_json_html_and_sdtm_export_of_the_demo_trial(demo: TrialLedger, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    json_report_answers_every_objective_with_the_entries_behind_it(demo, capsys)
    html_page_and_figures_are_written(capsys, tmp_path)
    export_sdtm_writes_the_five_domains_as_csv_and_xpt(capsys, tmp_path)


def json_report_answers_every_objective_with_the_entries_behind_it(demo: TrialLedger, capsys: pytest.CaptureFixture[str]) -> None:
    report = json.loads(run(capsys, "report", "--json", "--valid-on", "2017-06-30"))
    o = report["objectives"]
    assert set(o) == {f"O{n}" for n in range(1, 9)}
    assert all(o[k]["sources"] for k in o)
    (stratum,) = o["O1"]["strata"]
    assert stratum["mtd_mg"] == 400 and [d["patient_id"] for d in stratum["dlts"]] == ["D105", "D110", "D111"]
    overall = o["O2"]["overall"]
    assert (overall["n"], overall["cr_cri"]["count"], o["O2"]["by_phase"]["I"]["n"], o["O2"]["by_phase"]["II"]["n"]) == (16, 11, 12, 4)
    assert o["O2"]["overall"]["cr_cri"]["ci95"] == pytest.approx([0.4134, 0.8898], abs=1e-4)  # exact 95% CI of 11/16
    assert (o["O4"]["n"], o["O4"]["deaths"]) == (16, 2)
    assert 0 < o["O4"]["one_year"]["estimate"] < 1 and len(o["O4"]["one_year"]["ci95"]) == 2
    assert o["O8"]["dose_limiting"]["count"] == 3
    # every entry id the report names is a real entry of the ledger
    with demo.transaction(commit=False) as session:
        known = set(session.execute(select(EntryRow.entry_id)).scalars())
    named = entry_ids(report)
    assert named and named <= known


def html_page_and_figures_are_written(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    page, figures = tmp_path / "report.html", tmp_path / "figures"
    text = run(capsys, "report", "--html", str(page), "--figures", str(figures))
    assert "O2 response" in text and "CR/CRi 11/16" in text
    html = page.read_text(encoding="utf-8")
    for heading in ("O1 · Safety", "O2 · Response", "O3 · Duration", "O4 · Overall survival", "O5 ·", "O6 ·", "O7 ·", "O8 · Safety"):
        assert heading in html
    assert html.count("data:image/svg+xml;base64,") == 3 and "http" not in html.replace("http://www.w3.org", "")
    for name in ("swimmer", "survival", "escalation"):
        assert (figures / f"{name}.png").read_bytes().startswith(b"\x89PNG")
        assert "<svg" in (figures / f"{name}.svg").read_text(encoding="utf-8")


def export_sdtm_writes_the_five_domains_as_csv_and_xpt(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = run(capsys, "export", "sdtm", "--dir", str(tmp_path / "sdtm"))
    assert "DM: 16 rows" in out
    for domain, columns in {
        "dm": {"STUDYID", "DOMAIN", "USUBJID", "SUBJID", "RFSTDTC", "DTHFL", "SEX", "ARM"},
        "ex": {"EXTRT", "EXDOSE", "EXDOSU", "EXSTDTC"},
        "ae": {"AETERM", "AETOXGR", "AEREL"},
        "rs": {"RSTESTCD", "RSORRES", "RSDTC"},
        "ds": {"DSDECOD", "DSSTDTC"},
    }.items():
        with (tmp_path / "sdtm" / f"{domain}.csv").open(encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert rows and columns | {"ENTRYID"} <= set(rows[0])
        assert all(r["ENTRYID"] for r in rows)
        assert (tmp_path / "sdtm" / f"{domain}.xpt").stat().st_size > 0
    import pyreadstat

    frame, meta = pyreadstat.read_xport(str(tmp_path / "sdtm" / "ae.xpt"))
    assert meta.table_name == "AE" and len(frame) == 22 and "AETOXGR" in frame.columns
