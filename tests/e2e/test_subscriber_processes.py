"""Real processes: a writer imports while a subscriber consumes over HTTP and is killed and restarted mid-stream.

At the end the subscriber has handled every event the ledger holds, in commit order, none
missing; after idempotent handling (by entry id) none twice. Delivery is at least once, so
an event may have been handed over again after a kill — at most one per kill.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.generate import write
from ledger.bootstrap import Settings, build_ledger
from ledger.streams.feed import Feed

LEDGER = str(Path(sys.executable).parent / "ledger")
KILLS = 5


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[str]:
    """``ledger serve`` on a free port; its URL."""
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url, "LEDGER_USER": "site.system"}
    subprocess.run([LEDGER, "migrate"], env=env, check=True, capture_output=True)
    log = (tmp_path / "serve.log").open("w+")
    process = subprocess.Popen([LEDGER, "serve", "--port", "0", "--no-projector"], env=env, stderr=log, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    url = None
    while url is None and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
        log.seek(0)
        found = re.search(r"http://127\.0\.0\.1:(\d+)", log.read())
        url = f"http://127.0.0.1:{found.group(1)}" if found else None
    assert url is not None, f"the server did not start: {(tmp_path / 'serve.log').read_text()}"
    yield url
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def test_a_subscriber_killed_and_restarted_mid_stream_misses_nothing(server: str, database_url: str, tmp_path: Path) -> None:
    commands = tmp_path / "trial.jsonl"
    with commands.open("w") as out:
        write(16, out)
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url, "LEDGER_USER": "site.importer"}
    writer_log = tmp_path / "import.log"
    with writer_log.open("w") as log:
        writer = subprocess.Popen([LEDGER, "import", str(commands), "--batch-size", "5"], env=env, stdout=subprocess.DEVNULL, stderr=log)
    handled = tmp_path / "handled.txt"
    checkpoint = tmp_path / "position"
    record = f'printf "%s %s\\n" "$LEDGER_POSITION" "$LEDGER_ENTRY_ID" >> {handled}'
    subscribe = [LEDGER, "subscribe", server, "--checkpoint", str(checkpoint), "--exec", record]
    rng = random.Random(2311998)
    kills = while_writing = 0
    seen_at_kill: list[int] = []  # distinct events handled when each kill landed
    for _ in range(KILLS):
        before = lines(handled)
        subscriber = subprocess.Popen(subscribe, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while lines(handled) <= before and time.monotonic() < deadline:  # it is consuming: now kill it at some moment
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.4))
        while_writing += writer.poll() is None
        subscriber.send_signal(signal.SIGKILL)
        subscriber.wait(timeout=15)
        seen_at_kill.append(len(set(handled.read_text().splitlines())))
        kills += subscriber.returncode == -signal.SIGKILL
    assert writer.wait(timeout=300) == 0, writer_log.read_text()
    assert kills == KILLS and while_writing > 0
    final = subprocess.run([*subscribe, "--until-idle"], capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr

    ledger = build_ledger(Settings(database_url=database_url), create=False)
    expected = [(e["position"], e["entry_id"]) for e in Feed(ledger).events()]
    ledger.close()
    received = [(int(position), entry_id) for position, entry_id in (line.split() for line in handled.read_text().splitlines())]
    first_seen = list(dict.fromkeys(received))  # idempotent handling: an entry id counts once
    assert 0 < seen_at_kill[0] < len(expected), "the subscriber was not killed mid-stream"
    assert first_seen == expected  # every event, in commit order, none missing
    assert len(received) - len(first_seen) <= kills  # at least once: a kill may replay the event in hand
    assert int(checkpoint.read_text()) == expected[-1][0]


def lines(path: Path) -> int:
    return path.read_text().count("\n") if path.exists() else 0


def test_a_subscriber_refused_by_the_server_stops_with_the_reason(server: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [LEDGER, "subscribe", server, "--checkpoint", str(tmp_path / "p"), "--exec", "true", "--type", "NoSuchEvent", "--until-idle"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1 and "type" in result.stderr
    assert not (tmp_path / "p").exists()


def test_a_failing_handler_stops_the_subscriber_before_the_event(server: str, database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url, "LEDGER_USER": "site.importer"}
    example = Path(__file__).resolve().parents[2] / "examples" / "one-patient.jsonl"
    subprocess.run([LEDGER, "import", str(example)], env=env, check=True, capture_output=True)
    checkpoint = tmp_path / "p"
    handler = 'test "$LEDGER_EVENT_TYPE" != CycleStarted'  # fails on the first cycle
    result = subprocess.run([LEDGER, "subscribe", server, "--checkpoint", str(checkpoint), "--exec", handler, "--until-idle"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 8 and "failed on position" in result.stderr
    ledger = build_ledger(Settings(database_url=database_url), create=False)
    events = Feed(ledger).page(0, 1000).events
    ledger.close()
    cycle = next(e for e in events if e["type"] == "CycleStarted")
    assert int(checkpoint.read_text()) == max(e["position"] for e in events if e["position"] < cycle["position"])
