"""Who may open which page: the role sets of the web routes and the navigation built from them.

The navigation shows only the pages the logged-in role may open; the same role sets are the
``opt={"roles": ...}`` of the routes, so the menu and the guard never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.web.i18n import N_

DESK = ("officer", "supervisor")
ALERT_DESK = ("supervisor", "protection")
SUPERVISION = ("supervisor",)
PROTECTION = ("protection",)
HQ = ("hq_analyst", "admin")
LIAISON = ("liaison",)
ADMIN = ("admin",)

HOME_BY_ROLE = {
    "officer": "/web/desk",
    "supervisor": "/web/alerts",
    "protection": "/web/referrals",
    "hq_analyst": "/web/hq/dashboard",
    "liaison": "/web/liaison",
    "admin": "/web/admin/officers",
}


@dataclass(frozen=True)
class NavItem:
    """One entry of the navigation bar."""

    key: str
    label: str
    url: str
    roles: tuple[str, ...]
    national_only: bool = False


NAVIGATION: tuple[NavItem, ...] = (
    NavItem("desk", N_("Registration desk"), "/web/desk", DESK),
    NavItem("post_search", N_("Search"), "/web/search", DESK),
    NavItem("post_stays", N_("Stays"), "/web/stays", DESK),
    NavItem("alerts", N_("Alerts"), "/web/alerts", ALERT_DESK),
    NavItem("activity", N_("Officers' activity"), "/web/officers/activity", SUPERVISION),
    NavItem("referrals", N_("Protection referrals"), "/web/referrals", PROTECTION),
    NavItem("hq_search", N_("Search"), "/web/hq/search", HQ),
    NavItem("hq_dashboard", N_("Statistics"), "/web/hq/dashboard", HQ),
    NavItem("hq_stays", N_("Stays"), "/web/hq/stays", HQ),
    NavItem("liaison", N_("Liaison"), "/web/liaison", LIAISON),
    NavItem("admin_officers", N_("Accounts"), "/web/admin/officers", ADMIN),
    NavItem("admin_peers", N_("Posts"), "/web/admin/posts", ADMIN),
    # imports belong at national: a post's own entries never travel up to it
    NavItem(
        "admin_watchlist", N_("Watchlist import"), "/web/admin/watchlist", ADMIN, national_only=True
    ),
    NavItem("admin_agreements", N_("Agreements"), "/web/admin/agreements", ADMIN),
    NavItem("admin_sync", N_("Sync status"), "/web/admin/sync", ADMIN),
)


def navigation_for(role: str | None, node_role: str = "post") -> list[NavItem]:
    """The entries a role may open on this kind of node (``post`` or ``national``), in menu
    order."""
    if role is None:
        return []
    return [
        item
        for item in NAVIGATION
        if role in item.roles and (node_role == "national" or not item.national_only)
    ]


def home_for(role: str) -> str:
    return HOME_BY_ROLE.get(role, "/web/account")
