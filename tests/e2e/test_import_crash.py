"""An import killed mid-way loses at most its open batch; running it again completes it exactly, with or without command ids of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from benchmarks.generate import write

LEDGER = str(Path(sys.executable).parent / "ledger")


def entry_kinds(url: str) -> Counter[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return Counter(dict(connection.execute(text("select kind, count(*) from ledger_entries group by kind")).tuples().all()))
    finally:
        engine.dispose()


def events(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("select count(*) from ledger_events")).scalar() or 0)
    except Exception:  # the table does not exist yet
        return 0
    finally:
        engine.dispose()


@pytest.mark.parametrize("own_ids", [True, False], ids=["own-command-ids", "derived-ids"])
def test_a_killed_import_rerun_records_every_line_exactly_once(database_url: str, tmp_path: Path, own_ids: bool) -> None:
    path = tmp_path / "trial.jsonl"
    with path.open("w") as out:
        lines = write(24, out)  # every line carries a command_id
    if not own_ids:  # the import derives them from the file's content
        commands = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps({k: v for k, v in c.items() if k != "command_id"}) + "\n" for c in commands))
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url, "LEDGER_USER": "importer"}
    importer = subprocess.Popen([LEDGER, "import", str(path), "--batch-size", "25"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while events(database_url) < 200 and time.monotonic() < deadline and importer.poll() is None:
        time.sleep(0.05)
    importer.send_signal(signal.SIGKILL)
    importer.wait(timeout=30)
    assert importer.returncode == -signal.SIGKILL, "the import finished before it could be killed"
    before = events(database_url)
    assert before > 0

    rerun = subprocess.run([LEDGER, "import", str(path), "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["duplicates"] > 0 and report["recorded"] > 0  # committed batches kept, the open one redone
    assert report["duplicates"] + report["recorded"] == lines
    kinds = entry_kinds(database_url)
    assert kinds["PatientEnrolled"] == 24
    assert kinds["BosutinibDoseRecorded"] == 24 * 28
    assert kinds["InoInfusionRecorded"] == 24 * 4
    assert sum(kinds.values()) - kinds["EscalationOpened"] - kinds["PatientAssignedToDoseLevel"] == lines
