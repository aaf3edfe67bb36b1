"""``ledger report`` (the protocol's objectives O1–O8) and ``ledger export sdtm`` (docs/report.md).

The report's libraries (lifelines, SciPy, matplotlib, pandas) are imported inside the handlers,
so every other command starts without them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, cast

from ledger.application import TrialLedger
from ledger.bootstrap import Settings
from ledger.domain.values import Role
from ledger.encoding import plain
from ledger.interfaces.options import EXIT_OK, EXIT_USAGE, add_time_options
from ledger.policies import access


def add_parsers(sub: Any) -> None:
    report = sub.add_parser("report", help="the trial's objectives O1-O8 as of a date, with the entry ids behind every figure")
    add_time_options(report)
    report.add_argument("--json", action="store_true", help="the report as JSON (contract.md), with the entry ids of every figure")
    report.add_argument("--html", type=Path, metavar="FILE", help="also write one self-contained HTML page with the tables and figures")
    report.add_argument("--figures", type=Path, metavar="DIR", help="also write the figures as PNG and SVG into DIR")
    report.add_argument("--output", type=Path, metavar="FILE", help="write the text or JSON report to FILE (default: standard output)")
    report.set_defaults(handler=_report, reads_only=True, action="report")

    export = sub.add_parser("export", help="the trial's data in a data standard's shape").add_subparsers(title="export", metavar="FORMAT")
    sdtm = export.add_parser("sdtm", help="SDTM-shaped DM, EX, AE, RS and DS datasets as CSV and SAS transport (.xpt)")
    add_time_options(sdtm)
    sdtm.add_argument("--dir", type=Path, required=True, metavar="DIR", help="the directory to write the datasets into")
    sdtm.add_argument("--no-xpt", dest="xpt", action="store_false", help="CSV only")
    sdtm.set_defaults(handler=_export_sdtm, reads_only=True, action="export sdtm")


def _report(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    from ledger.reports import figures, html
    from ledger.reports.data import gather
    from ledger.reports.objectives import report_document
    from ledger.reports.text import text_report

    data = gather(ledger, args.as_of, args.valid_on)
    doc = _shown_to(settings, report_document(ledger, args.as_of, args.valid_on, data=data))
    try:
        if args.html or args.figures:
            rendered = figures.all_figures(data, doc)
            if args.figures:
                figures.save(rendered, args.figures)
            if args.html:
                args.html.write_text(html.page(doc, rendered), encoding="utf-8")
        out = json.dumps(plain(doc), indent=2) if args.json else text_report(doc)
        if args.output:
            args.output.write_text(out + "\n", encoding="utf-8")
        else:
            print(out)
    except BrokenPipeError:
        raise
    except OSError as error:
        print(f"invalid: {error.filename}: {error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _export_sdtm(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    from ledger.reports import sdtm
    from ledger.reports.data import gather

    data = gather(ledger, args.as_of, args.valid_on)
    sets = sdtm.datasets(data, ledger.protocol.trial_id, without_free_text=settings.role is Role.SPONSOR)
    try:
        written = sdtm.write(sets, args.dir, xpt=args.xpt)
    except BrokenPipeError:
        raise
    except OSError as error:
        print(f"invalid: --dir {args.dir}: {error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
    for s in sets:
        print(f"{s.domain}: {len(s.rows)} rows")
    print(f"{len(written)} files written to {args.dir}", file=sys.stderr)
    return EXIT_OK


def _shown_to(settings: Settings, doc: dict[str, Any]) -> dict[str, Any]:
    """The sponsor's report has no free-text field (rule ACCESS-SPONSOR)."""
    return cast(dict[str, Any], access.sponsor_view(doc)) if settings.role is Role.SPONSOR else doc
