"""``ledger import FILE.jsonl``: run a file of command objects, one per line, in order.

Each line is atomic: all of its events or none. Lines are committed in batches (a savepoint
per line inside one transaction per batch); the import stops at the first refused or
malformed line unless ``keep_going``, and the lines before it stay recorded.

Every line is imported under a ``command_id``: its own, or one derived from the file's content
up to and including that line (``import:`` and the SHA-256 of those lines, each without its
line ending). Running a file again after a crash therefore records exactly the lines that are
missing; so does importing a file that has grown since (appended lines get new ids, the earlier
ones keep theirs). A line changed or inserted before others gives those others new ids: such a
file is a different file, and the rules judge its lines afresh. (Two files that begin with the
same lines share those lines' ids: the same commands in the same place.)
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, TextIO

from ledger.application import Outcome, TrialLedger
from ledger.commands import Command
from ledger.domain.values import Actor
from ledger.errors import CommandRefused, InvalidCommand, LedgerError
from ledger.interfaces.schemas import parse_command

#: lines committed per transaction; a crash loses at most this many (running the file again records them)
DEFAULT_BATCH_SIZE = 100
DERIVED_ID_PREFIX = "import:"


@dataclass
class Problem:
    line: int
    kind: str  # "invalid" or "refused"
    message: str


@dataclass
class ImportReport:
    lines: int = 0
    recorded: int = 0
    duplicates: int = 0
    entries: int = 0
    deviations: int = 0
    problems: list[Problem] = field(default_factory=list)
    stopped_at: int | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def rate(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        refused = sum(p.kind == "refused" for p in self.problems)
        invalid = sum(p.kind == "invalid" for p in self.problems)
        text = (
            f"{self.lines} lines: {self.recorded} recorded ({self.entries} entries, {self.deviations} deviations), "
            f"{self.duplicates} duplicates, {refused} refused, {invalid} invalid "
            f"in {self.seconds:.2f} s ({self.rate:.0f} lines/s)"
        )
        if self.stopped_at is not None:
            text += f"; stopped at line {self.stopped_at}"
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "lines": self.lines,
            "recorded": self.recorded,
            "duplicates": self.duplicates,
            "entries": self.entries,
            "deviations": self.deviations,
            "problems": [{"line": p.line, "kind": p.kind, "message": p.message} for p in self.problems],
            "stopped_at": self.stopped_at,
            "seconds": round(self.seconds, 3),
            "lines_per_second": round(self.rate, 1),
        }


def numbered_lines(stream: BinaryIO) -> Iterator[tuple[int, str | UnicodeDecodeError, str]]:
    """Non-blank lines with their numbers and derived command ids; a line that is not UTF-8 comes as its decoding error."""
    content = hashlib.sha256()
    for number, raw in enumerate(stream, start=1):
        content.update(raw.rstrip(b"\r\n") + b"\n")  # a last line without its newline keeps its id once more lines follow
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            yield number, error, ""
            continue
        if line.strip():
            yield number, line, f"{DERIVED_ID_PREFIX}{content.hexdigest()}"


def import_file(
    ledger: TrialLedger,
    path: Path,
    actor: Actor,
    keep_going: bool = False,
    on_line: Callable[[int, ImportReport], None] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ImportReport:
    """Run the file's commands in order, committing ``batch_size`` lines per transaction.

    Each line stays atomic (a savepoint of its own); a crash loses at most the batch being
    written, and running the file again then records exactly the lines that are missing.
    """
    run = _Run(ledger, actor, keep_going, on_line, max(batch_size, 1))
    started = time.perf_counter()
    with path.open("rb") as stream:
        for number, line, derived_id in numbered_lines(stream):
            if not run.add(number, line, derived_id):
                break
        else:
            run.flush()
    run.report.seconds = time.perf_counter() - started
    return run.report


class ImportFailed(Exception):
    """The database failed on a line (not a refusal); the lines before it are recorded."""

    def __init__(self, line: int, report: ImportReport, error: Exception) -> None:
        self.line = line
        self.report = report
        super().__init__(f"line {line}: {error}")


class _Run:
    """An import in progress: parsed lines waiting for their batch, and the report so far."""

    def __init__(self, ledger: TrialLedger, actor: Actor, keep_going: bool, on_line: Callable[[int, ImportReport], None] | None, batch_size: int) -> None:
        self.ledger, self.actor, self.keep_going, self.on_line, self.batch_size = ledger, actor, keep_going, on_line, batch_size
        self.report = ImportReport()
        self.pending: list[tuple[int, Command]] = []

    def add(self, number: int, line: str | UnicodeDecodeError, derived_id: str) -> bool:
        """Queue one line (under ``derived_id`` unless it has a ``command_id``); False once the import has stopped."""
        if isinstance(line, UnicodeDecodeError):
            return self.flush() and self.done(number, Problem(number, "invalid", f"not UTF-8 text (byte {line.start + 1})"))
        try:
            command = parse_command(json.loads(line))
        except json.JSONDecodeError as error:
            return self.flush() and self.done(number, Problem(number, "invalid", f"not valid JSON ({error.msg} at column {error.colno})"))
        except InvalidCommand as error:
            return self.flush() and self.done(number, Problem(number, "invalid", str(error)))
        if command.command_id is None:
            command = replace(command, command_id=derived_id)
        self.pending.append((number, command))
        return len(self.pending) < self.batch_size or self.flush()

    def flush(self) -> bool:
        """Record the queued lines; False once the import has stopped."""
        if not self.pending:
            return True
        batch, self.pending = self.pending, []
        try:
            results = self.ledger.handle_batch([command for _, command in batch], self.actor, stop_at_refusal=not self.keep_going)
        except LedgerError:
            raise
        except Exception:
            # not a refusal: find the line, keeping every line before it recorded
            results = self._one_by_one(batch)

        going = True
        for (number, _), result in zip(batch, results, strict=False):
            if isinstance(result, Outcome):
                going = self.done(number, None, result)
            else:
                kind = "invalid" if isinstance(result, InvalidCommand) else "refused"
                going = self.done(number, Problem(number, kind, str(result)))
        return going

    def _one_by_one(self, batch: list[tuple[int, Command]]) -> list[Outcome | LedgerError]:
        results: list[Outcome | LedgerError] = []
        for number, command in batch:
            try:
                results.append(self.ledger.handle(command, self.actor))
            except (CommandRefused, InvalidCommand) as refusal:
                results.append(refusal)
                if not self.keep_going:
                    break
            except Exception as error:
                raise ImportFailed(number, self.report, error) from error
        return results

    def done(self, number: int, problem: Problem | None, outcome: Outcome | None = None) -> bool:
        report = self.report
        report.lines += 1
        if outcome is not None and outcome.duplicate:
            report.duplicates += 1
        elif outcome is not None:
            report.recorded += 1
            report.entries += len(outcome.entry_ids)
            report.deviations += len(outcome.deviations)
        if problem is not None:
            report.problems.append(problem)
            if not self.keep_going:
                report.stopped_at = number
        if self.on_line is not None:
            self.on_line(number, report)
        return problem is None or self.keep_going


class Progress:
    """A one-line progress bar on standard error, drawn only on a terminal.

    ``total`` of 0 means "as far as the caller says": ``position(done, total)`` moves it.
    """

    def __init__(self, total: int, stream: TextIO = sys.stderr, every: float = 0.2, label: str = "importing", unit: str = "lines") -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.every = every
        self.label = label
        self.unit = unit
        self.enabled = stream.isatty()
        self.started = time.perf_counter()
        self.last = 0.0
        self.drawn = False

    def __call__(self, line: int, report: ImportReport) -> None:
        self.draw(line, report.lines)

    def position(self, done: int, total: int) -> None:
        self.total = max(total, 1)
        self.draw(done, done)

    def draw(self, done: int, count: int) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < self.every and done < self.total):
            return
        self.last = now
        self.drawn = True
        fraction = min(done / self.total, 1.0)
        bar = "#" * int(fraction * 30)
        rate = count / max(now - self.started, 1e-9)
        self.stream.write(f"\r{self.label} [{bar:<30}] {done}/{self.total} {self.unit} {rate:.0f}/s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def count_lines(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(1 for _ in stream)
