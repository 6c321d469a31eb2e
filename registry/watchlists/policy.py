"""Who may do what with watchlist entries and alerts, and how much of an alert each role sees.

Management: supervisors manage ``refer_secondary`` and ``notify`` entries; protection officers
manage ``protect`` entries; admins manage all (and a system import, with no officer, too).

Disclosure (``disclosure``, applied by ``alerts.alert_view``): the officer at the desk gets only
the instruction ("refer to secondary inspection" or "refer to protection officer"), never the
reason, the listed names or the source. Supervisors add the score, band, kind and reason, except
for ``protect`` entries. ``protect`` entries and their alerts are visible in full only to
protection officers (and to admins, for audit); hq analysts see everything else.

Adjudication: a protection officer decides ``protect`` alerts, a supervisor the others.
"""

from __future__ import annotations

from registry.models import Alert, Officer
from registry.problems import Problem

PROTECT = "protect"
INSTRUCTIONS = {
    "refer_secondary": "refer to secondary inspection",
    "notify": "process as usual: the listing's owner is notified",
    PROTECT: "refer to protection officer",
}


def may_manage(role: str | None, action: str) -> bool:
    """Whether a role may see and change entries with this action (None = system import)."""
    if role is None or role == "admin":
        return True
    if action == PROTECT:
        return role == "protection"
    return role == "supervisor"


def disclosure(role: str, action: str) -> str:
    """How much of an alert a role sees: ``instruction``, ``summary`` or ``full``."""
    if role == "admin":
        return "full"
    if action == PROTECT:
        return "full" if role == "protection" else "instruction"
    if role == "hq_analyst":
        return "full"
    return "summary" if role == "supervisor" else "instruction"


def role_of(officer: Officer | None) -> str | None:
    """The officer's role for ``may_manage`` (None: a system import, with no officer)."""
    return officer.role if officer else None


def refuse_unless_manages(officer: Officer | None, action: str) -> None:
    """403 unless the officer may manage entries with this action."""
    if not may_manage(role_of(officer), action):
        who = "protection officers" if action == PROTECT else "supervisors"
        raise Problem(
            403,
            "Forbidden",
            field="action",
            detail=f"{action} entries are managed by {who} (and admins)",
        )


def refuse_unless_adjudicates(officer: Officer, alert: Alert) -> None:
    """403 unless the officer is the one who decides this kind of alert."""
    if alert.action == PROTECT and officer.role != "protection":
        raise Problem(
            403,
            "Forbidden",
            field="alert_id",
            detail="a protection officer adjudicates this alert",
        )
    if alert.action != PROTECT and officer.role != "supervisor":
        raise Problem(
            403, "Forbidden", field="alert_id", detail="a supervisor adjudicates this alert"
        )
