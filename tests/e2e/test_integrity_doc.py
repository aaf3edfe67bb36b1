"""The recomputation docs/integrity.md gives auditors works on a real ledger, and fails on a changed one."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from ledger.bootstrap import Settings, build_ledger
from ledger.domain.values import Actor, Role
from ledger.interfaces.importer import import_file

ROOT = Path(__file__).resolve().parents[2]


def test_the_auditors_recomputation_in_the_docs_agrees_with_the_ledger(tmp_path: Path) -> None:
    script = re.search(r"```python\n(.*?)```", (ROOT / "docs" / "integrity.md").read_text(), re.DOTALL).group(1)  # type: ignore[union-attr]
    (tmp_path / "recompute.py").write_text(script)
    database = tmp_path / "ledger.sqlite"
    ledger = build_ledger(Settings(database_url=f"sqlite:///{database}", user="t"))
    import_file(ledger, ROOT / "examples" / "one-patient.jsonl", Actor("coordinator.kim", Role.COORDINATOR))
    ledger.close()
    done = subprocess.run([sys.executable, str(tmp_path / "recompute.py"), str(database)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("intact"), done.stdout + done.stderr
    with sqlite3.connect(database) as db:
        db.execute("UPDATE ledger_entries SET recorded_by = 'someone.else' WHERE position = 5")
    changed = subprocess.run([sys.executable, str(tmp_path / "recompute.py"), str(database)], capture_output=True, text=True, timeout=60)
    assert changed.returncode != 0 and "position 5" in changed.stderr
