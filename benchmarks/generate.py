"""Write synthetic, rule-abiding import files (JSON Lines, one command a line).

Two shapes:

- ``write(patients, out)``: N phase I patients, three per stratum. Each patient: enrollment,
  cycle 1 with 28 daily bosutinib doses and InO on days 1, 8 and 15, a toxicity, a CRi
  response on day 28, and cycle 2 with day-1-only InO (37 lines a patient).
- ``write_scale(patients, out)``: a whole trial at scale (``make bench``), about 250 events a
  patient (1,000 patients ≈ 250k events); see ``scale_patient_lines``.

Every line carries a unique ``command_id``.

    python -m benchmarks.generate 100 > /tmp/trial.jsonl
    python -m benchmarks.generate --scale --patients 1000 > /tmp/trial.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, timedelta
from typing import Any, TextIO

Line = dict[str, Any]


def patient_lines(n: int) -> list[Line]:
    pid = f"B{n:04d}"
    start = date(2016, 1, 4) + timedelta(days=n % 200)
    lines: list[Line] = [
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


# --- the trial at scale ---------------------------------------------------------------------

CYCLES = 6
CYCLE_DAYS = 28
BOSUTINIB_MG = 300
#: every LONG_EVERY-th patient (the third of each stratum) gets extra low-grade toxicities
LONG_EVERY = 3
#: a long patient's aggregate holds LONG_MIN_EVENTS + (a spread of 0..LONG_SPREAD-1) events
LONG_MIN_EVENTS = 300
LONG_SPREAD = 50
#: first day of the first stratum's enrollment; strata open every 3 days, 120 strata a round
FIRST_DAY = date(2016, 1, 4)
TERMS = ("Nausea", "Fatigue", "Diarrhea", "Headache", "Rash maculo-papular", "Anorexia", "Vomiting", "Alanine aminotransferase increased")


def scale_patient_id(n: int) -> str:
    return f"P{n:05d}"


def scale_stratum(n: int) -> str:
    return f"S{n // 3:04d}"


def enrollment_date(n: int) -> date:
    """Three patients per stratum on consecutive days; strata three days apart, in rounds."""
    return FIRST_DAY + timedelta(days=(n // 3 % 120) * 3 + n % 3)


def is_long(n: int) -> bool:
    return n % LONG_EVERY == LONG_EVERY - 1


def long_target(n: int) -> int:
    """How many events a long patient's aggregate holds: 300..349, spread over the patients."""
    return LONG_MIN_EVENTS + (n // LONG_EVERY * 17) % LONG_SPREAD


def scale_patient_lines(n: int) -> list[Line]:
    """One patient's whole course, recorded in clinical-date order; one event in the patient's
    aggregate a line.

    Enrollment in phase I at 300 mg (three patients a stratum, so the 3+3 cohort rule
    ESC-COHORT holds); 6 cycles of 28 days with a bosutinib dose every day; InO on days 1, 8
    and 15 of cycle 1 (0.8/0.5/0.5 mg/m²); a CR on day 28 of cycle 1, so cycles 2–6 get InO
    1.0 mg/m² on day 1 only; a response assessment at the end of every cycle; two grade 1–2
    toxicities a cycle; the end of treatment (COMPLETED) on day 28 of cycle 6; follow-up
    contacts 84 and 168 days later. That is 204 events; every third patient also gets grade 1
    laboratory toxicities, on the treatment days in turn, up to ``long_target(n)`` (300–349)
    events.
    """
    pid = scale_patient_id(n)
    start = enrollment_date(n)
    seq = 0

    def line(command: str, **fields: Any) -> Line:
        nonlocal seq
        seq += 1
        return {"command": command, "patient_id": pid, **fields, "command_id": f"{pid}-{seq:04d}"}

    def on(offset: int) -> str:
        return (start + timedelta(days=offset)).isoformat()

    treatment_days = CYCLES * CYCLE_DAYS
    extra = max(long_target(n) - 204, 0) if is_long(n) else 0
    lines: list[Line] = [
        line("enroll_patient", enrolled_on=start.isoformat(), diagnosis="PH_POS_ALL" if n % 5 else "CML_LYMPHOID_BP", phase="I",
             stratum=scale_stratum(n), cd22_percent=float(30 + n % 70), abl_mutations=[] if n % 4 else ["E255K"],
             bsa_m2=round(1.5 + (n % 9) * 0.05, 2), sex="FM"[n % 2], birth_year=1940 + n % 40),
    ]
    for offset in range(treatment_days):
        cycle, d = offset // CYCLE_DAYS + 1, offset % CYCLE_DAYS + 1
        if d == 1:
            lines.append(line("start_cycle", cycle=cycle, started_on=on(offset)))
        if cycle == 1 and d in (1, 8, 15):
            lines.append(line("record_ino_infusion", given_on=on(offset), dose_mg_m2=0.8 if d == 1 else 0.5))
        elif cycle > 1 and d == 1:
            lines.append(line("record_ino_infusion", given_on=on(offset), dose_mg_m2=1.0))
        lines.append(line("record_bosutinib_dose", taken_on=on(offset), dose_mg=BOSUTINIB_MG))
        if d in (10, 20):
            k = cycle * 2 + d // 10 + n
            lines.append(line("report_toxicity", onset_on=on(offset), term=TERMS[k % len(TERMS)], grade=1 + k % 2,
                              attribution=("UNLIKELY", "POSSIBLE")[k % 2]))
        for k in range(offset, extra, treatment_days):  # the long patients' laboratory toxicities
            lines.append(line("report_toxicity", onset_on=on(offset), term=TERMS[(k + n) % len(TERMS)], grade=1,
                              attribution="UNLIKELY", source="laboratory panel"))
        if d == CYCLE_DAYS:
            lines.append(line("assess_response", assessed_on=on(offset), response="CR", cytogenetic="CCyR",
                              mrd="NEGATIVE" if cycle > 2 else "POSITIVE", mrd_level=None if cycle > 2 else 0.001))
    ended = start + timedelta(days=treatment_days - 1)
    lines.append(line("end_treatment", ended_on=ended.isoformat(), end_reason="COMPLETED"))
    for visit in (1, 2):
        lines.append(line("record_follow_up", contacted_on=(ended + timedelta(days=84 * visit)).isoformat(), vital_status="ALIVE",
                          disease_status="REMISSION"))
    return lines


def scale_events(patients: int) -> int:
    """How many events ``write_scale(patients)`` records: a patient's lines, and per stratum
    the escalation's opening and one assignment per patient."""
    strata = (patients + 2) // 3
    return sum(len(scale_patient_lines(n)) for n in range(patients)) + patients + strata


def write_scale(patients: int, out: TextIO) -> int:
    """Write the trial at scale, one patient after another; the number of lines."""
    count = 0
    for n in range(patients):
        for item in scale_patient_lines(n):
            out.write(json.dumps(item) + "\n")
            count += 1
    return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="write a synthetic, rule-abiding import file to standard output")
    parser.add_argument("count", nargs="?", type=int, help="patients of the small shape (default 100)")
    parser.add_argument("--scale", action="store_true", help="the trial at scale (~250 events a patient)")
    parser.add_argument("--patients", type=int, help="patients (default: 100, or 1,000 with --scale)")
    args = parser.parse_args(argv)
    patients = args.patients or args.count
    if args.scale:
        write_scale(patients or 1000, sys.stdout)
    else:
        write(patients or 100, sys.stdout)


if __name__ == "__main__":
    main()
