"""Write a synthetic, rule-abiding import file: N phase I patients, three per stratum.

Each patient: enrollment, cycle 1 with 28 daily bosutinib doses and InO on days 1, 8 and 15,
a toxicity, a CRi response on day 28, and cycle 2 with day-1-only InO (37 lines a patient).

    python benchmarks/generate.py 100 > /tmp/trial.jsonl
"""

from __future__ import annotations

import json
import sys
from datetime import date, timedelta
from typing import Any, TextIO


def patient_lines(n: int) -> list[dict[str, Any]]:
    pid = f"B{n:04d}"
    start = date(2016, 1, 4) + timedelta(days=n % 200)
    lines: list[dict[str, Any]] = [
        {"command": "enroll_patient", "patient_id": pid, "enrolled_on": start.isoformat(), "diagnosis": "PH_POS_ALL", "phase": "I",
         "stratum": f"S{n // 3:03d}", "cd22_percent": 55.0, "abl_mutations": [], "bsa_m2": 1.8, "command_id": f"{pid}-enroll"},
        {"command": "start_cycle", "patient_id": pid, "cycle": 1, "started_on": start.isoformat(), "command_id": f"{pid}-c1"},
    ]
    for day in range(1, 29):
        on = start + timedelta(days=day - 1)
        if day in (1, 8, 15):
            lines.append({"command": "record_ino_infusion", "patient_id": pid, "given_on": on.isoformat(),
                          "dose_mg_m2": 0.8 if day == 1 else 0.5, "command_id": f"{pid}-c1-ino{day}"})
        lines.append({"command": "record_bosutinib_dose", "patient_id": pid, "taken_on": on.isoformat(), "dose_mg": 300,
                      "command_id": f"{pid}-c1-bos{day}"})
    lines.append({"command": "report_toxicity", "patient_id": pid, "onset_on": (start + timedelta(days=9)).isoformat(), "term": "Nausea",
                  "grade": 1, "attribution": "POSSIBLE", "command_id": f"{pid}-tox1"})
    lines.append({"command": "assess_response", "patient_id": pid, "assessed_on": (start + timedelta(days=27)).isoformat(),
                  "response": "CRi", "cytogenetic": "CCyR", "command_id": f"{pid}-resp1"})
    c2 = start + timedelta(days=28)
    lines.append({"command": "start_cycle", "patient_id": pid, "cycle": 2, "started_on": c2.isoformat(), "command_id": f"{pid}-c2"})
    lines.append({"command": "record_ino_infusion", "patient_id": pid, "given_on": c2.isoformat(), "dose_mg_m2": 1.0,
                  "command_id": f"{pid}-c2-ino1"})
    return lines


def write(patients: int, out: TextIO) -> int:
    count = 0
    for n in range(patients):
        for line in patient_lines(n):
            out.write(json.dumps(line) + "\n")
            count += 1
    return count


if __name__ == "__main__":
    write(int(sys.argv[1]) if len(sys.argv) > 1 else 100, sys.stdout)
