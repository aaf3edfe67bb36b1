"""The CLI's users, sign-in and signatures: ``ledger user ...``, ``ledger sign ...``.

Until a ledger has a registered user it runs unsecured, as the configured local user
(``LEDGER_USER``/``LEDGER_ROLE``). ``ledger user bootstrap`` registers its first admin; from
then on every invocation signs in with ``LEDGER_TOKEN`` (or a prompt on a terminal) and is
checked against rule ACCESS-ROLE; an auditor's or a sponsor's every use is itself recorded.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from ledger.application import TrialLedger
from ledger.bootstrap import Settings
from ledger.commands import SignRecord
from ledger.domain.access import RecordsViewed
from ledger.domain.values import Role, SignatureMeaning, SignatureScope
from ledger.encoding import plain
from ledger.errors import NotAuthenticated
from ledger.identity.directory import Directory, Issued
from ledger.policies import access

ROLES = [r.value for r in Role if r is not Role.SYSTEM]
MEANINGS = [m.value for m in SignatureMeaning]


def add_parsers(sub: Any) -> None:
    users = sub.add_parser("user", help="users and their roles (an admin's; the first is bootstrapped)").add_subparsers(title="user", metavar="ACTION")
    boot = users.add_parser("bootstrap", help="register the first user of a ledger, an admin, and print their token")
    _user_arguments(boot, role=False)
    boot.set_defaults(handler=_bootstrap, action="user bootstrap")
    add = users.add_parser("add", help="register a user and print their token (shown once)")
    _user_arguments(add, role=True)
    add.set_defaults(handler=_add, action="register_user")
    role = users.add_parser("role", help="change a user's role")
    role.add_argument("user_id")
    role.add_argument("role", choices=ROLES)
    role.add_argument("--reason")
    role.set_defaults(handler=_role, action="change_user_role")
    for name, action, handler, what in (
        ("deactivate", "deactivate_user", _deactivate, "stop a user from signing in (their entries stay)"),
        ("reactivate", "reactivate_user", _reactivate, "let a deactivated user sign in again"),
        ("reset-credential", "issue_credential", _reset, "issue a new credential and print it (the old one stops working)"),
    ):
        p = users.add_parser(name, help=what)
        p.add_argument("user_id")
        p.add_argument("--reason")
        p.add_argument("--json", action="store_true")
        p.set_defaults(handler=handler, action=action)
    listing = users.add_parser("list", help="every user, role and status")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list, action="user list", reads_only=True)

    sign = sub.add_parser("sign", help="an investigator's electronic signature (the credential is entered again)")
    scopes = sign.add_subparsers(title="sign", metavar="WHAT")
    cycle = scopes.add_parser("cycle", help="sign one cycle of a patient")
    cycle.add_argument("patient_id")
    cycle.add_argument("cycle", type=int)
    casebook = scopes.add_parser("casebook", help="sign a patient's whole casebook")
    casebook.add_argument("patient_id")
    decision = scopes.add_parser("decision", help="sign a 3+3 escalation decision")
    decision.add_argument("stratum")
    decision.add_argument("decision_entry_id")
    for p, scope in ((cycle, SignatureScope.CYCLE), (casebook, SignatureScope.CASEBOOK), (decision, SignatureScope.ESCALATION_DECISION)):
        p.add_argument("--meaning", required=True, choices=MEANINGS, help="what the signature means (21 CFR 11.50)")
        p.add_argument("--reason")
        p.add_argument("--credential-stdin", action="store_true", help="read the credential from standard input instead of a prompt")
        p.add_argument("--json", action="store_true")
        p.set_defaults(handler=_sign, action=SignRecord.name, scope=scope)


def _user_arguments(p: argparse.ArgumentParser, role: bool) -> None:
    p.add_argument("user_id")
    p.add_argument("--name", required=True, dest="printed_name", help="the printed name shown with the user's signatures")
    if role:
        p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--reason")
    p.add_argument("--json", action="store_true")


# --- signing in -------------------------------------------------------------------------


def signed_in(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> Settings:
    """The settings with the signed-in user, once the ledger has users; the configured one before."""
    if not ledger.secured:
        return settings
    token = os.environ.get("LEDGER_TOKEN") or _prompt_token()
    actor = Directory(ledger).authenticate(token)
    access.check(args.action, actor.role, actor.user)
    if actor.role in access.AUDITED_READERS:
        ledger.record_access(RecordsViewed, actor, view=args.action, arguments=_arguments(args))
    return replace(settings, user=actor.user, role=actor.role)


def _prompt_token() -> str:
    if not sys.stdin.isatty():
        raise NotAuthenticated("this ledger has users: set LEDGER_TOKEN=USER_ID:CREDENTIAL (or run on a terminal to be asked)")
    user_id = input("user id: ").strip()
    return f"{user_id}:{getpass.getpass('credential: ')}"


def _arguments(args: argparse.Namespace) -> dict[str, Any]:
    """What was asked, for the access record: the plain arguments only."""
    skip = {"handler", "action", "reads_only", "migrates", "json"}
    return {k: str(v) if isinstance(v, Path) else plain(v) for k, v in sorted(vars(args).items()) if k not in skip and not callable(v)}


# --- handlers ----------------------------------------------------------------------------


def _bootstrap(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    return _issued(args, Directory(ledger).bootstrap(args.user_id, args.printed_name, settings.actor))


def _add(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    return _issued(args, Directory(ledger).register(args.user_id, args.printed_name, Role(args.role), settings.actor, args.reason))


def _reset(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    return _issued(args, Directory(ledger).reissue(args.user_id, settings.actor, args.reason))


def _role(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    Directory(ledger).change_role(args.user_id, Role(args.role), settings.actor, args.reason)
    print(f"{args.user_id} now acts as {args.role}")
    return 0


def _deactivate(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    Directory(ledger).deactivate(args.user_id, settings.actor, args.reason)
    print(f"{args.user_id} is deactivated")
    return 0


def _reactivate(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    Directory(ledger).reactivate(args.user_id, settings.actor, args.reason)
    print(f"{args.user_id} is active again")
    return 0


def _issued(args: argparse.Namespace, issued: Issued) -> int:
    if args.json:
        print(json.dumps({"user_id": issued.user_id, "token": issued.token}))
    else:
        print(f"{issued.user_id}'s token (shown once; give it to them, they sign in with LEDGER_TOKEN):\n{issued.token}")
    return 0


def _list(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    users = Directory(ledger).users()
    if args.json:
        print(json.dumps({"users": plain(users)}, indent=2))
    else:
        for u in users:
            state = "active" if u["active"] else "deactivated"
            print(f"{u['user_id']:<24} {u['role']:<13} {state:<12} {u['printed_name']}")
    return 0


def _sign(args: argparse.Namespace, ledger: TrialLedger, settings: Settings) -> int:
    """Sign after entering the credential again (21 CFR 11.200(a)(1)(i): each signing, not only the first)."""
    if args.credential_stdin:
        credential = sys.stdin.readline().strip()
    elif sys.stdin.isatty():
        credential = getpass.getpass(f"credential of {settings.user}, to sign: ")
    else:
        raise NotAuthenticated("a signature needs the credential entered again: on a terminal, or with --credential-stdin")
    command = SignRecord(
        scope=args.scope,
        meaning=SignatureMeaning(args.meaning),
        patient_id=getattr(args, "patient_id", None),
        cycle=getattr(args, "cycle", None),
        stratum=getattr(args, "stratum", None),
        decision_entry_id=getattr(args, "decision_entry_id", None),
        reason=args.reason,
        credential=credential.rpartition(":")[2],
    )
    outcome = ledger.handle(command, settings.actor)
    if args.json:
        print(json.dumps({"entry_id": outcome.entry_ids[0]}))
    else:
        print(f"signed ({args.meaning}) by {settings.user}: entry {outcome.entry_ids[0]}")
    return 0

