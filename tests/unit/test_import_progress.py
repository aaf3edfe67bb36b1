"""The import's progress bar: drawn on a terminal, silent when output goes to a file or pipe."""

from __future__ import annotations

import io

from ledger.interfaces.importer import ImportReport, Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal() -> None:
    screen = Terminal()
    progress = Progress(total=4, stream=screen, every=0)
    for line in range(1, 5):
        progress(line, ImportReport(lines=line))
    progress.close()
    assert "4/4 lines" in screen.getvalue()
    assert "#" * 30 in screen.getvalue()
    assert screen.getvalue().endswith("\n")


def test_progress_stays_silent_off_a_terminal() -> None:
    pipe = io.StringIO()
    progress = Progress(total=4, stream=pipe, every=0)
    progress(4, ImportReport(lines=4))
    progress.close()
    assert pipe.getvalue() == ""
