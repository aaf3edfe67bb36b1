"""PostgreSQL restarted under load: during an import, and during ``ledger serve``. What is lost, and how long recovery takes.

Restarts the local server with ``pg_ctlcluster VERSION main restart`` (``--restart-command`` to
change it): run it where nothing else needs the server at that moment.

1. **Import**: ``ledger import`` of a generated trial in a subprocess; once it is well under way
   the server is restarted. The import waits the outage out (``TrialLedger.outage_seconds``) and
   finishes by itself; the ledger then holds every line exactly once and ``ledger verify`` passes.
   Figures: the restart's duration, the import's stall (the longest time without a new event),
   lines recorded, lost and duplicated.
2. **Serve**: ``ledger serve`` in a subprocess; a client posts a new enrollment every 20 ms and
   reads ``/health``; the server is restarted. Figures: how long requests failed (first failure to
   first success after it), how many answered 503, and that every command answered 201 is in the
   ledger exactly once and none answered otherwise is (0 lost, 0 phantom), and the slowest answer
   (a request that waited the outage out). The server is never restarted.

    python -m benchmarks.outage [--patients 60] [--server URL] [--down-seconds S] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from benchmarks.generate import write
from benchmarks.import_speed import fresh_database

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def ledger_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ledger.interfaces.cli", *args]


def restart_command(down_seconds: float = 0.0) -> list[str]:
    """``pg_ctlcluster … restart``; with ``down_seconds``, stop, stay down that long, then start."""
    version = sorted(os.listdir("/etc/postgresql"))[0]
    cluster = f"pg_ctlcluster --skip-systemctl-redirect {version} main"
    if down_seconds > 0:
        return ["sh", "-c", f"{cluster} stop && sleep {down_seconds:g} && {cluster} start"]
    return [*cluster.split(), "restart"]


def count(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(sql)).scalar() or 0)
    except Exception:
        return -1  # the server is away
    finally:
        engine.dispose()


def restart(command: list[str], url: str) -> tuple[float, float]:
    """Restart the server; how long the command took, and how long the server could not be used meanwhile.

    A probe opens a new connection and runs ``SELECT 1`` every 10 ms; the server is unusable from
    the start of the first probe that fails to the start of the next one that succeeds.
    """
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 10})
    probes: list[tuple[float, bool]] = []  # (started, succeeded)
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            started = time.perf_counter()
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                probes.append((started, True))
            except Exception:
                probes.append((started, False))
            time.sleep(0.01)

    prober = threading.Thread(target=probe)
    prober.start()
    began = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    took = time.perf_counter() - began
    time.sleep(0.5)  # the probe sees the server answer again
    done.set()
    prober.join()
    engine.dispose()
    first_failure = next((t for t, ok in probes if not ok), None)
    if first_failure is None:
        return took, 0.0
    back = next((t for t, ok in probes if ok and t > first_failure), probes[-1][0])
    return took, back - first_failure


def import_scenario(url: str, patients: int, tmp: Path, command: list[str]) -> dict[str, Any]:
    path = tmp / "trial.jsonl"
    with path.open("w") as out:
        lines = write(patients, out)
    env = {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_USER": "site.importer", "PYTHONPATH": os.getcwd()}
    subprocess.run(ledger_command("migrate"), env=env, check=True, capture_output=True)
    log = (tmp / "import.log").open("w")
    started = time.perf_counter()
    importer = subprocess.Popen(ledger_command("import", str(path), "--batch-size", "20", "--json"), env=env, stdout=subprocess.PIPE, stderr=log)
    progress: list[tuple[float, int]] = []
    restarting: Future[tuple[float, float]] | None = None
    with ThreadPoolExecutor(max_workers=1) as pool:  # the restart runs beside the watch on the import's progress
        while importer.poll() is None:
            events = count(url, "SELECT count(*) FROM ledger_events")
            now = time.perf_counter()
            if events >= 0 and (not progress or events > progress[-1][1]):
                progress.append((now, events))
            if restarting is None and events > lines // 3:
                restarting = pool.submit(restart, command, url)
            time.sleep(0.05)
        restarted_for, down_for = restarting.result() if restarting else (None, 0.0)
    report = json.loads(importer.stdout.read() or b"{}") if importer.stdout else {}
    log.close()
    elapsed = time.perf_counter() - started
    stall = max((b[0] - a[0] for a, b in zip(progress, progress[1:], strict=False)), default=0.0)
    kinds = count(url, "SELECT count(*) FROM ledger_entries WHERE kind NOT IN ('EscalationOpened', 'PatientAssignedToDoseLevel')")
    verified = subprocess.run(ledger_command("verify", "--json"), env=env, capture_output=True, text=True)
    return {
        "lines": lines,
        "exit": importer.returncode,
        "recorded": report.get("recorded"),
        "duplicates_acknowledged": report.get("duplicates"),
        "restart_seconds": round(restarted_for or 0.0, 2),
        "unavailable_seconds": round(down_for, 2),
        "longest_stall_seconds": round(stall, 2),
        "import_seconds": round(elapsed, 2),
        "lost": max(lines - kinds, 0),
        "duplicated": max(kinds - lines, 0),
        "verify_ok": verified.returncode == 0,
        "stderr_tail": (tmp / "import.log").read_text().strip().splitlines()[-3:],
    }


def serve_scenario(url: str, tmp: Path, command: list[str], seconds: float = 8.0) -> dict[str, Any]:
    env = {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_USER": "site.system", "LEDGER_ROLE": "coordinator", "PYTHONPATH": os.getcwd()}
    subprocess.run(ledger_command("migrate"), env=env, check=True, capture_output=True)
    log_path = tmp / "serve.log"
    log = log_path.open("w")
    server = subprocess.Popen(ledger_command("serve", "--port", "0", "--no-projector"), env=env, stderr=log, stdout=subprocess.DEVNULL)
    base = None
    deadline = time.monotonic() + 60
    while base is None and time.monotonic() < deadline:
        time.sleep(0.1)
        found = re.search(r"http://127\.0\.0\.1:(\d+)", log_path.read_text())
        base = f"http://127.0.0.1:{found.group(1)}" if found else None
    assert base is not None, log_path.read_text()
    answers: list[tuple[float, str, int, float]] = []  # (answered at, patient id, status, seconds it took)
    stop = threading.Event()

    def post_forever() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            patient = f"R{n:05d}"
            body = json.dumps({"patient_id": patient, "enrolled_on": "2016-03-01", "diagnosis": "PH_POS_ALL", "phase": "I",
                               "stratum": f"r{n // 3}", "cd22_percent": 50.0, "abl_mutations": [], "bsa_m2": 1.8}).encode()
            request = urllib.request.Request(f"{base}/commands/enroll_patient", data=body, headers={"Content-Type": "application/json"})
            sent = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError:
                status = 0
            answered = time.perf_counter()
            answers.append((answered, patient, status, answered - sent))
            time.sleep(0.02)

    poster = threading.Thread(target=post_forever)
    poster.start()
    time.sleep(seconds / 3)
    restarted_at = time.perf_counter()
    restart_seconds, down_for = restart(command, url)
    time.sleep(seconds * 2 / 3)
    stop.set()
    poster.join()
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)
    log.close()
    failed = [a for a in answers if a[2] != 201]
    first_failure = min((a[0] for a in failed), default=None)
    recovered = min((a[0] for a in answers if a[2] == 201 and first_failure is not None and a[0] > first_failure), default=None)
    engine = create_engine(url)
    with engine.connect() as connection:
        enrolled = [p for (p,) in connection.execute(text("SELECT patient_id FROM ledger_entries WHERE kind = 'PatientEnrolled'"))]
    engine.dispose()
    created = {p for _, p, s, _ in answers if s == 201}
    waits = sorted(a[3] for a in answers)
    return {
        "requests": len(answers),
        "answered_201": len(created),
        "answered_503": sum(1 for a in answers if a[2] == 503),
        "other_failures": sum(1 for a in answers if a[2] not in (201, 503)),
        "restart_seconds": round(restart_seconds, 2),
        "unavailable_seconds": round(down_for, 2),
        "failing_seconds": round(recovered - first_failure, 2) if first_failure and recovered else 0.0,
        "slowest_answer_seconds": round(waits[-1], 2) if waits else 0.0,
        "median_answer_seconds": round(waits[len(waits) // 2], 3) if waits else 0.0,
        "recovered_after_restart_seconds": round((recovered or restarted_at) - restarted_at, 2),
        "lost": len(created - set(enrolled)),
        "phantom": len(set(enrolled) - created),
        "duplicated": len(enrolled) - len(set(enrolled)),
        "server_restarted": False,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=60)
    parser.add_argument("--server", default=SERVER, help="the PostgreSQL server (an admin URL); its cluster is restarted")
    parser.add_argument("--restart-command", help="how to restart the server (default: pg_ctlcluster VERSION main restart)")
    parser.add_argument("--down-seconds", type=float, default=0.0, help="stop the server, keep it down this long, then start it")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    command = args.restart_command.split() if args.restart_command else restart_command(args.down_seconds)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        with fresh_database(args.server, tmp, "outage_import") as url:
            results["import"] = import_scenario(url, args.patients, tmp, command)
        with fresh_database(args.server, tmp, "outage_serve") as url:
            results["serve"] = serve_scenario(url, tmp, command)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    i, s = results["import"], results["serve"]
    print("PostgreSQL restarted during an import")
    print(f"  restart {i['restart_seconds']} s (server unusable for {i['unavailable_seconds']} s)")
    print(f"  import exit {i['exit']}, {i['import_seconds']} s, longest stall {i['longest_stall_seconds']} s")
    print(f"  lines {i['lines']}: lost {i['lost']}, duplicated {i['duplicated']}; verify {'ok' if i['verify_ok'] else 'FAILED'}")
    print("PostgreSQL restarted during ledger serve")
    print(f"  restart {s['restart_seconds']} s (server unusable for {s['unavailable_seconds']} s)")
    print(f"  {s['requests']} requests: {s['answered_201']} recorded, {s['answered_503']} answered 503, "
          f"{s['other_failures']} other failures")
    print(f"  requests failed for {s['failing_seconds']} s; slowest answer {s['slowest_answer_seconds']} s "
          f"(median {s['median_answer_seconds']} s); lost {s['lost']}, phantom {s['phantom']}, duplicated {s['duplicated']}; "
          "the server was not restarted")


if __name__ == "__main__":
    main()
