"""`ledger verify` and `ledger seal` from the command line: exit 0 when intact, 3 naming the position."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

LEDGER = str(Path(sys.executable).parent / "ledger")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one-patient.jsonl"


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LEDGER, *args], env=env, capture_output=True, text=True, timeout=120)


def test_verify_seal_and_verify_against_the_checkpoint_then_a_tampered_ledger_fails(database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url, "LEDGER_USER": "auditor.ames"}
    assert run(env, "import", str(EXAMPLE)).returncode == 0
    intact = run(env, "verify", "--json")
    assert intact.returncode == 0, intact.stderr
    report = json.loads(intact.stdout)
    assert report["intact"] and report["events"] == 39 and report["first_problem"] is None  # 37 lines: 37 entries, the stratum's 2

    sealed = run(env, "seal", "--key", str(tmp_path / "auditor.pem"), "--out", str(tmp_path / "checkpoint.json"))
    assert sealed.returncode == 0, sealed.stderr
    checkpoint = json.loads((tmp_path / "checkpoint.json").read_text())
    assert checkpoint["position"] == report["position"] and checkpoint["chain_hash"] == report["chain_hash"]
    assert checkpoint["sealed_by"] == "auditor.ames" and len(checkpoint["signature"]) == 128
    extends = run(env, "verify", "--checkpoint", str(tmp_path / "checkpoint.json"), "--public-key", checkpoint["public_key"])
    assert extends.returncode == 0 and "extends the checkpoint" in extends.stdout

    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE ledger_entries SET recorded_by = 'mallory' WHERE position = 10"))
    finally:
        engine.dispose()
    broken = run(env, "verify")
    assert broken.returncode == 3 and "NOT INTACT at position 10" in broken.stderr
    assert run(env, "seal", "--key", str(tmp_path / "auditor.pem")).returncode == 3  # nothing sealed over a broken chain
