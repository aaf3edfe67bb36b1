"""``ledger verify`` and ``ledger seal``: the hash chain recomputed, and signed checkpoints (docs/integrity.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ledger.application import TrialLedger
from ledger.bootstrap import Settings
from ledger.integrity.checkpoint import Checkpoint, CheckpointError, load_or_create_key, public_hex, read_checkpoint, seal
from ledger.integrity.verify import VerifyReport, verify
from ledger.interfaces.importer import Progress
from ledger.interfaces.options import EXIT_INTEGRITY, EXIT_OK, EXIT_USAGE


def add_parsers(sub: Any) -> None:
    check = sub.add_parser("verify", help="recompute the hash chain over every stored event; exit 3 naming the first that does not verify")
    check.add_argument("--checkpoint", type=Path, metavar="FILE", help="also prove the ledger still extends this signed checkpoint")
    check.add_argument("--public-key", metavar="HEX", help="the checkpoint must be signed with this Ed25519 public key")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=_verify, reads_only=True, action="verify")

    sealing = sub.add_parser("seal", help="verify, then write a signed checkpoint of the chain's head to keep outside the system")
    sealing.add_argument("--key", type=Path, required=True, metavar="FILE", help="Ed25519 private key (PEM); created when missing")
    sealing.add_argument("--out", type=Path, metavar="FILE", help="write the checkpoint here (default: print it)")
    sealing.set_defaults(handler=_seal, reads_only=True, action="seal")


def _verify_with_progress(ledger: TrialLedger, checkpoint: Checkpoint | None = None) -> VerifyReport:
    progress = Progress(0, label="verifying", unit="events")
    try:
        return verify(ledger.engine, checkpoint, on_progress=progress.position)
    finally:
        progress.close()


def _verify(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    checkpoint = None
    if args.checkpoint is not None:
        try:
            checkpoint = read_checkpoint(args.checkpoint, args.public_key)
        except CheckpointError as error:
            print(f"integrity: {error}", file=sys.stderr)
            return EXIT_INTEGRITY
    report = _verify_with_progress(ledger, checkpoint)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    elif report.intact:
        extends = f"; it extends the checkpoint at position {checkpoint.position} sealed {checkpoint.sealed_at}" if checkpoint else ""
        print(f"intact: {report.events} events up to position {report.position}, chain hash {report.chain_hash}{extends}")
    else:
        first = report.problems[0]
        print(f"NOT INTACT at position {first.position}: {first.why}", file=sys.stderr)
        for other in report.problems[1:]:
            print(f"  also at position {other.position}: {other.why}", file=sys.stderr)
    return EXIT_OK if report.intact else EXIT_INTEGRITY


def _seal(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    report = _verify_with_progress(ledger)
    if not report.intact:
        first = report.problems[0]
        print(f"NOT INTACT at position {first.position}: {first.why}; nothing sealed", file=sys.stderr)
        return EXIT_INTEGRITY
    try:
        key, created = load_or_create_key(args.key)
    except (CheckpointError, ValueError, OSError) as error:
        print(f"invalid: --key {args.key}: {error}", file=sys.stderr)
        return EXIT_USAGE
    if created:
        print(f"created Ed25519 key {args.key} (public key {public_hex(key)}); keep it private", file=sys.stderr)
    document = seal(key, report.position, report.chain_hash, report.events, ledger.clock.now().isoformat(), settings.user)
    text = json.dumps(document, indent=2)
    if args.out is None:
        print(text)
    else:
        args.out.write_text(text + "\n")
        print(f"sealed position {report.position} ({report.events} events), chain hash {report.chain_hash}, into {args.out}", file=sys.stderr)
    return EXIT_OK
