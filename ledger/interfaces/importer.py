"""``ledger import FILE.jsonl``: run a file of command objects, one per line, in order.

Each line is its own transaction: all of its events or none. The import stops at the first
refused or malformed line unless ``keep_going``; lines before it stay recorded, and running
the file again records exactly what is missing for lines that carry a ``command_id``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ledger.application import TrialLedger
from ledger.domain.values import Actor
from ledger.errors import CommandRefused, InvalidCommand
from ledger.interfaces.schemas import parse_command


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


def numbered_lines(stream: TextIO) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(stream, start=1):
        if line.strip():
            yield number, line


def import_file(
    ledger: TrialLedger,
    path: Path,
    actor: Actor,
    keep_going: bool = False,
    on_line: Callable[[int, ImportReport], None] | None = None,
) -> ImportReport:
    report = ImportReport()
    started = time.perf_counter()
    with path.open(encoding="utf-8") as stream:
        for number, line in numbered_lines(stream):
            report.lines += 1
            problem = _run_line(ledger, number, line, actor, report)
            if problem is not None:
                report.problems.append(problem)
                if not keep_going:
                    report.stopped_at = number
                    break
            if on_line is not None:
                on_line(number, report)
    report.seconds = time.perf_counter() - started
    return report


def _run_line(ledger: TrialLedger, number: int, line: str, actor: Actor, report: ImportReport) -> Problem | None:
    try:
        command = parse_command(json.loads(line))
        outcome = ledger.handle(command, actor)
    except json.JSONDecodeError as error:
        return Problem(number, "invalid", f"not valid JSON ({error.msg} at column {error.colno})")
    except InvalidCommand as error:
        return Problem(number, "invalid", str(error))
    except CommandRefused as error:
        return Problem(number, "refused", str(error))
    if outcome.duplicate:
        report.duplicates += 1
    else:
        report.recorded += 1
        report.entries += len(outcome.entry_ids)
        report.deviations += len(outcome.deviations)
    return None


class Progress:
    """A one-line progress bar on standard error, drawn only on a terminal."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, every: float = 0.2) -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.every = every
        self.enabled = stream.isatty()
        self.started = time.perf_counter()
        self.last = 0.0

    def __call__(self, line: int, report: ImportReport) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < self.every and line < self.total):
            return
        self.last = now
        done = min(line / self.total, 1.0)
        bar = "#" * int(done * 30)
        rate = report.lines / max(now - self.started, 1e-9)
        self.stream.write(f"\rimporting [{bar:<30}] {line}/{self.total} lines {rate:.0f}/s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def count_lines(path: Path) -> int:
    with path.open(encoding="utf-8") as stream:
        return sum(1 for _ in stream)
