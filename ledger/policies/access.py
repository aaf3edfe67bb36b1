"""Rule ACCESS-ROLE: what each role may do, once the ledger has registered users.

One table for every command and every query of the CLI (docs/access.md prints it). The
protocol's own authority rules stay where they are and apply in any case: an escalation
decision or an acknowledged deviation needs an investigator (ESC-3PLUS3, DEVIATION), the
scheduler's entries the system (FU-VISIT, FU-WINDOW, DLT-WINDOW).
"""

from __future__ import annotations

from ledger.commands import COMMANDS, ELAPSED_COMMANDS, USER_COMMANDS, SignRecord
from ledger.domain.values import Role
from ledger.errors import CommandRefused

RULE = "ACCESS-ROLE"

COORDINATOR, INVESTIGATOR, MONITOR, AUDITOR, SPONSOR, SUBSCRIBER, ADMIN, SYSTEM = (
    Role.COORDINATOR,
    Role.INVESTIGATOR,
    Role.MONITOR,
    Role.AUDITOR,
    Role.SPONSOR,
    Role.SUBSCRIBER,
    Role.ADMIN,
    Role.SYSTEM,
)

#: who records clinical facts
CLINICAL = frozenset({COORDINATOR, INVESTIGATOR})
#: who reads the trial's state (the sponsor's documents are pseudonymised)
STATE_READERS = frozenset({COORDINATOR, INVESTIGATOR, MONITOR, AUDITOR, SPONSOR})
#: who reads entries with their free text: who recorded what and why
TRAIL_READERS = frozenset({COORDINATOR, INVESTIGATOR, MONITOR, AUDITOR})

ALLOWED: dict[str, frozenset[Role]] = {
    **{name: CLINICAL for name in COMMANDS},
    "decide_escalation": frozenset({INVESTIGATOR}),
    **{cls.name: frozenset({SYSTEM}) for cls in ELAPSED_COMMANDS},
    SignRecord.name: frozenset({INVESTIGATOR}),
    **{name: frozenset({ADMIN}) for name in USER_COMMANDS},
    # queries and operations of the CLI
    "import": CLINICAL,
    "patient show": STATE_READERS,
    "patient history": TRAIL_READERS,
    "escalation show": STATE_READERS,
    "decisions": STATE_READERS,
    "summary": STATE_READERS,
    "schedule show": STATE_READERS,
    "report": STATE_READERS,
    "export sdtm": STATE_READERS,
    "audit show": TRAIL_READERS,
    "audit export": frozenset({MONITOR, AUDITOR}),
    "verify": frozenset({MONITOR, AUDITOR, ADMIN}),
    "seal": frozenset({AUDITOR, ADMIN}),
    "user list": frozenset({ADMIN, AUDITOR, MONITOR}),
    "project": frozenset({ADMIN}),
    "rebuild": frozenset({ADMIN}),
    "migrate": frozenset({ADMIN}),
    "scheduler run": frozenset({ADMIN}),
    "serve": frozenset({ADMIN}),
    "events": frozenset({SUBSCRIBER}),  # the HTTP feed and live stream
    "relay nats": frozenset({SUBSCRIBER, ADMIN}),  # downstream systems' events, through the broker
    "demo": frozenset(),  # an empty ledger's synthetic trial: never on a ledger with users
    "user bootstrap": frozenset(),  # the first user only
}

#: what reading leaves an entry in the ledger (rule ACCESS-AUDITED): every read by these roles
AUDITED_READERS = frozenset({AUDITOR, SPONSOR})


#: fields that may hold free text about a patient (rule ACCESS-SPONSOR): never in the sponsor's view
FREE_TEXT = frozenset({"reason", "source", "cause", "site", "birth_year", "sex", "mrd_level"})


def sponsor_view(document: object) -> object:
    """The document without any free-text field, at any depth."""
    if isinstance(document, dict):
        return {k: sponsor_view(v) for k, v in document.items() if k not in FREE_TEXT}
    if isinstance(document, list):
        return [sponsor_view(v) for v in document]
    return document


def check(action: str, role: Role, user: str) -> None:
    """Refuse (ACCESS-ROLE) an action the role may not take."""
    allowed = ALLOWED.get(action)
    if allowed is None:
        raise KeyError(f"no access rule for {action!r}")
    if role not in allowed:
        who = ", ".join(sorted(r.value for r in allowed)) or "no role once the ledger has users"
        raise CommandRefused(RULE, f"{user} acts as {role.value} and may not {action.replace('_', ' ')}; allowed: {who}")
