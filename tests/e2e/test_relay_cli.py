"""`ledger relay nats` as an operator runs it: killed at random moments and restarted while a
writer imports, across a NATS restart, as a subscriber of a secured ledger, and without NATS.

Whatever happens to the relay or the broker, the stream ends with every event of the ledger
exactly once, in position order: 0 missing, 0 duplicated.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.generate import write
from ledger.bootstrap import Settings, build_ledger
from ledger.domain.values import Actor, Role
from ledger.identity.directory import Directory
from ledger.interfaces import cli
from ledger.interfaces.importer import import_file
from ledger.interfaces.options import EXIT_BROKER
from ledger.streams.feed import Feed
from tests.conftest import RelayTarget
from tests.jetstream_probes import jetstream_answers, message_count, stored_messages

LEDGER = str(Path(sys.executable).parent / "ledger")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one-patient.jsonl"
NATS_SERVER = "/usr/sbin/nats-server"
PATIENTS = 30  # 1,110 import lines, about 1,150 events: a few seconds of writing on either backend
KILLS = 4


def every_event(database_url: str) -> list[dict[str, Any]]:
    ledger = build_ledger(Settings(database_url=database_url, user="reader"), create=False)
    try:
        return list(Feed(ledger).events())
    finally:
        ledger.close()


def assert_stream_holds_exactly(url: str, stream: str, events: list[dict[str, Any]], note: str = "") -> None:
    stored = stored_messages(url, stream)
    ids = [m.headers["Nats-Msg-Id"] for m in stored]
    missing = {e["entry_id"] for e in events} - set(ids)
    duplicated = len(ids) - len(set(ids))
    assert (len(missing), duplicated) == (0, 0), f"{len(missing)} missing, {duplicated} duplicated {note}"
    assert ids == [e["entry_id"] for e in events], f"out of order {note}"
    assert [int(m.headers["Ledger-Position"]) for m in stored] == [e["position"] for e in events]
    assert [m.sequence for m in stored] == list(range(1, len(events) + 1))


@pytest.mark.slow
def test_a_relay_killed_at_random_moments_and_restarted_publishes_every_event_exactly_once_in_order(
    database_url: str, relay_target: RelayTarget, tmp_path: Path
) -> None:
    path = tmp_path / "trial.jsonl"
    with path.open("w") as out:
        write(PATIENTS, out)
    build_ledger(Settings(database_url=database_url, user="setup")).close()  # the tables exist before either process opens them
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url, "LEDGER_USER": "importer"}
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    relay = [LEDGER, *relay_target.argv(), "--interval", "0.05", "--page-size", "40"]

    # 1. a writer imports while the relay runs; the relay is killed (SIGKILL) at a random moment after it started publishing, and restarted
    writer = subprocess.Popen([LEDGER, "import", str(path), "--batch-size", "3"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    killed_while_writing = 0
    try:
        for _ in range(KILLS):
            before = message_count(relay_target.url, relay_target.stream)
            process = subprocess.Popen(relay, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 5
            while message_count(relay_target.url, relay_target.stream) == before and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.5))
            if process.poll() is not None:
                pytest.fail(f"the relay stopped by itself (exit {process.returncode}): {process.communicate()[1]}")
            killed_while_writing += writer.poll() is None
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=30)
        _, writer_err = writer.communicate(timeout=180)
        assert writer.returncode == 0, writer_err
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.communicate()
    published_by_killed_relays = message_count(relay_target.url, relay_target.stream)

    # 2. the writer done, one run --once publishes what is missing
    final = subprocess.run([*relay, "--once", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    report = json.loads(final.stdout)

    # 3. the stream holds exactly the ledger's events, in order
    events = every_event(database_url)
    assert_stream_holds_exactly(relay_target.url, relay_target.stream, events, f"(random seed {seed})")
    assert killed_while_writing >= 1 and published_by_killed_relays > 0
    assert report == {"stream": relay_target.stream, "published": len(events) - published_by_killed_relays,
                      "position": events[-1]["position"], "sequence": len(events)}


class PrivateNats:
    """A NATS server with JetStream of this test's own, to stop and start again."""

    def __init__(self, store: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"nats://127.0.0.1:{self.port}"
        self.store = store
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                jetstream_answers(self.url)
                return
            except Exception:  # not listening yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[PrivateNats]:
    if not Path(NATS_SERVER).exists():
        why = f"no {NATS_SERVER} to start a NATS server of the test's own"
        if os.environ.get("LEDGER_TEST_REQUIRE_NATS"):
            pytest.fail(why)
        pytest.skip(why)
    server = PrivateNats(tmp_path / "jetstream")
    server.start()
    yield server
    server.kill()


def test_a_following_relay_rides_out_a_nats_restart_and_publishes_every_event_once(private_nats: PrivateNats, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url, "LEDGER_USER": "importer"}
    assert subprocess.run([LEDGER, "import", str(EXAMPLE)], env=env, capture_output=True, timeout=60).returncode == 0
    relay = subprocess.Popen(
        [LEDGER, "relay", "nats", "--url", private_nats.url, "--stream", "LEDGER", "--interval", "0.05"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for(lambda: message_count(private_nats.url, "LEDGER") == 39, "the first 39 events")

        # NATS dies; events are recorded meanwhile; NATS comes back on the same store
        private_nats.kill()
        later = tmp_path / "later.jsonl"
        with later.open("w") as commands:
            write(2, commands)
        assert subprocess.run([LEDGER, "import", str(later)], env=env, capture_output=True, timeout=60).returncode == 0
        time.sleep(1.0)  # the relay finds NATS gone and tries again, and again
        private_nats.start()
        total = len(every_event(database_url))
        wait_for(lambda: message_count(private_nats.url, "LEDGER") == total, f"all {total} events after the restart")
    finally:
        relay.send_signal(signal.SIGTERM)
        out, err = relay.communicate(timeout=30)
    assert relay.returncode == 0, err
    assert "trying again" in err
    events = every_event(database_url)
    assert_stream_holds_exactly(private_nats.url, "LEDGER", events)
    assert f"events published to stream LEDGER; it ends at position {events[-1]['position']} (sequence {len(events)})" in out


def wait_for(condition: Any, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {seconds:g} s for {what}")
        time.sleep(0.05)


def test_a_subscriber_relays_a_secured_ledger_and_the_summary_says_where_the_stream_ends(
    relay_target: RelayTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    ledger = build_ledger(Settings(database_url=database_url, user="setup"))
    import_file(ledger, EXAMPLE, Actor("coordinator.kim", Role.COORDINATOR))
    directory = Directory(ledger)
    admin = directory.authenticate(directory.bootstrap("admin.user", "Ada Admin", Actor("installer", Role.INVESTIGATOR)).token)
    token = directory.register("downstream.edc", "EDC feed", Role.SUBSCRIBER, admin).token
    ledger.close()
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("LEDGER_TOKEN", token)

    assert cli.main([*relay_target.argv(), "--once"]) == 0

    out, err = capsys.readouterr()
    events = every_event(database_url)
    last = events[-1]["position"]
    assert out.strip() == f"{len(events)} events published to stream {relay_target.stream}; it ends at position {last} (sequence {len(events)})"
    assert f"relaying to stream {relay_target.stream} ({relay_target.prefix}.>)" in err and "after position 0 (sequence 0)" in err
    assert_stream_holds_exactly(relay_target.url, relay_target.stream, events)


def test_without_nats_the_relay_exits_with_code_8_and_says_what_to_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    build_ledger(Settings(database_url=database_url, user="setup")).close()
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"nats://relay:s3cret@127.0.0.1:{probe.getsockname()[1]}"

    code = cli.main(["relay", "nats", "--url", url, "--once"])

    err = capsys.readouterr().err
    assert code == EXIT_BROKER == 9
    assert "cannot connect to NATS at nats://***@127.0.0.1" in err and "nats-server is running with JetStream" in err
    assert "s3cret" not in err and "Traceback" not in err
