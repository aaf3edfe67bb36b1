"""The README's walkthrough runs as written, so it never rots."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Five-minute walkthrough", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)  # type: ignore[union-attr]


def test_the_readme_walkthrough_runs_and_shows_what_it_promises(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("LEDGER_ROLE", None)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", walkthrough()], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out, err = done.stdout, done.stderr
    assert "37 lines: 37 recorded" in out
    assert "DAY_1_ONLY" in out
    assert "INO-DAY1-ONLY" in err and "CYCLE-ORDER" in err
    assert "acknowledged protocol deviation BOS-DOSE" in out
    grades = re.findall(r'"grade": (\d)', out)
    assert grades == ["2", "3"]  # before the correction, then now
    assert "EntryCorrected" in out and "source document verification" in out
    assert "Stratum default" in out
    assert "OVERDUE" in out and "fu-completed:S001:2017-03-28" in out
    assert "5 due: 5 recorded, 0 recorded before, 0 refused" in out  # the DLT evaluation, visits 2-4, the year's end
    assert re.search(r"status\s+COMPLETED", out) and "visits 1, missed 3" in out
    assert "ACCESS-ROLE" in err and "authentication failed" in err
    assert re.search(r"signed .* cycle 2 reviewed by Dr Asha Jain \(dr\.jain\)\s+RE-REVIEW REQUIRED", out)
