"""Pages of a post (issue 16). Search, a traveller's history and the open stays and overstayers, in
Chromium against a real `borderpost serve`: an officer and a supervisor find a traveller by
document and by any part of the name, open the history, see the post's overstayers; every
read is in the audit log with its purpose; the other roles are refused (403) and the menu
offers the pages only to the desk roles. Screenshots at 1366x768 in French, Arabic and
English go to tests/artifacts/screenshots/. A face alert shows the supervisor the portrait
taken at the crossing beside the listed one kept with the entry (two audited reads), and nobody
else; an entry listed before portraits were kept says so. The watchlist import is national's.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from registry.web.i18n import gettext_for
from tests.support import pages
from tests.support.pages import VIEWPORTS, Node, in_view, served_post, shot, td3
from tests.support.servers import cli

pytestmark = [pytest.mark.browser]

ACCOUNTS = (
    ("awa", "officer"),
    ("sidi", "supervisor"),
    ("fatou", "protection"),
    ("moussa", "hq_analyst"),
    ("liaison", "liaison"),
    ("boss", "admin"),
)
# Short allowed stays, so that an entry back-dated by a few days is an overstay.
STAY_RULES = {
    "default": {"max_days": 2, "window_days": 30},
    "MLI": {"max_days": 2, "window_days": 30},
}
PAGES = ("/web/search", "/web/stays", "/web/stays?kind=open")


@pytest.fixture(scope="module")
def post(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with served_post(
        tmp_path_factory.mktemp("post-search"), ACCOUNTS, stay_rules_json=json.dumps(STAY_RULES)
    ) as node:
        yield node


@pytest.fixture(scope="module")
def travellers(post: Node) -> dict[str, Any]:
    """DEMBELE SEYDOU KALIFA entered five days ago (an overstay under the short rule), went
    out and came back today; TRAORE AWA entered today (an open stay, not an overstay)."""
    numbers = {
        "dembele": "D" + uuid.uuid4().hex[:7].upper(),
        "traore": "T" + uuid.uuid4().hex[:7].upper(),
    }
    now = datetime.now(UTC)
    with post.api("awa") as api:
        ids = {}
        for when, direction, who in (
            (now - timedelta(days=6), "entry", "dembele"),
            (now - timedelta(days=5, hours=20), "exit", "dembele"),
            (now - timedelta(days=5), "entry", "dembele"),
            (now - timedelta(minutes=5), "entry", "traore"),
        ):
            surname, given = ("DEMBELE", "SEYDOU KALIFA") if who == "dembele" else ("TRAORE", "AWA")
            created = api.post(
                "/api/crossings",
                json={
                    "direction": direction,
                    "mrz": "\n".join(td3(numbers[who], surname=surname, given=given)),
                    "occurred_at": when.isoformat(),
                },
            )
            assert created.status_code == 201, created.text
            ids[who] = created.json()["traveller_id"]
    return {"numbers": numbers, "ids": ids}


def login(browser: Any, node: Node, username: str, lang: str = "fr") -> Any:
    page = pages.login(browser, node, username, viewport=(1366, 768), locale="en-US")
    if lang != "fr":
        page.select_option("#language-select", lang)
        page.click("#language-submit")
        page.wait_for_load_state("networkidle")
    return page


def audit_events(node: Node, username: str) -> list[tuple[str, str, str, str]]:
    """(action, record_type, purpose, detail) of an account's audit events, oldest first."""
    with sqlite3.connect(node.data_dir / "borderpost.db") as db:
        return db.execute(
            "SELECT e.action, e.record_type, e.purpose, e.detail FROM audit_event e "
            "JOIN officer o ON replace(o.id, '-', '') = replace(e.officer_id, '-', '') "
            "WHERE o.username = ? ORDER BY e.seq",
            (username,),
        ).fetchall()


def test_officer_finds_a_traveller_by_name_and_document_and_opens_the_history(
    browser: Any, post: Node, travellers: dict[str, Any]
) -> None:
    page = login(browser, post, "awa")
    nav = page.locator("nav.menu a").evaluate_all("links => links.map(a => a.pathname)")
    assert "/web/search" in nav and "/web/stays" in nav
    page.click('nav.menu a[href="/web/search"]')
    page.fill("#s-name", "Seydou Dembele")  # given name first, one of two given names
    page.press("#s-name", "Enter")
    page.wait_for_selector("#results-name tbody tr")
    assert "DEMBELE SEYDOU KALIFA" in page.inner_text("#results-name tbody tr >> nth=0")
    shot(page, "post-search-name-fr")
    page.click("#results-name tbody tr >> nth=0 >> a")
    page.wait_for_selector("#history tbody tr")
    assert page.locator("#history tbody tr").count() == 3
    history = page.inner_text("#history")
    assert travellers["numbers"]["dembele"] in history
    fr = gettext_for("fr")
    assert fr("Exit") in history and fr("Entry") in history
    # the day in French order (dd/mm/yyyy), never the browser's (en-US) mm/dd/yyyy
    entered = (datetime.now(UTC) - timedelta(days=5)).astimezone().date()
    first_row = page.inner_text("#history tbody tr >> nth=0")
    assert entered.strftime("%d/%m/%Y") in first_row or entered.strftime("%d/%m/%Y") in history
    assert page.inner_text("#person-dob") == "01/06/1982"
    shot(page, "post-traveller-history-fr")

    page.goto(f"{post.url}/web/search")
    page.fill("#s-state", "MLI")
    page.fill("#s-number", travellers["numbers"]["traore"])
    page.press("#s-number", "Enter")
    page.wait_for_selector("#results-document tbody tr")
    assert "TRAORE AWA" in page.inner_text("#results-document")
    page.goto(f"{post.url}/web/search?name=Traore")  # surname alone finds her
    assert "TRAORE AWA" in page.inner_text("#results-name")
    page.goto(f"{post.url}/web/search?name=Nobody+Atall")
    assert page.is_visible("#no-results")
    page.context.close()

    events = audit_events(post, "awa")
    searches = [e for e in events if e[0] == "search"]
    assert {e[1] for e in searches} >= {"name", "document"}
    assert all(e[2] == "search" for e in searches)
    history_reads = [e for e in events if e[1] == "traveller" and e[0] == "read"]
    assert history_reads and history_reads[-1][2] == "history"
    assert (
        travellers["ids"]["dembele"].replace("-", "")
        in json.dumps([e[3] for e in events]).replace("-", "")
        or history_reads
    )


def test_supervisor_sees_the_post_overstayers_and_open_stays(
    browser: Any, post: Node, travellers: dict[str, Any]
) -> None:
    page = login(browser, post, "sidi")
    page.goto(f"{post.url}/web/stays")
    overstays = page.inner_text("#stays")
    assert "DEMBELE" in overstays and "TRAORE" not in overstays
    row = page.locator("#stays tbody tr", has_text="DEMBELE")
    assert int(row.locator("td >> nth=5").inner_text()) >= 1
    shot(page, "post-stays-overstays-fr")
    page.select_option("#kind", "open")
    page.click("form.filters button")
    page.wait_for_load_state("networkidle")
    open_stays = page.inner_text("#stays")
    assert "DEMBELE" in open_stays and "TRAORE" in open_stays
    assert int(page.inner_text("#stays-count")) == 2
    page.click("#stays tbody tr >> nth=0 >> a")
    page.wait_for_selector("#history tbody tr")
    page.context.close()
    kinds = {e[1] for e in audit_events(post, "sidi") if e[0] == "search"}
    assert {"overstays", "open_stays"} <= kinds


@pytest.mark.parametrize("lang", ["fr", "ar", "en"])
def test_screenshots_in_three_languages(
    browser: Any, post: Node, travellers: dict[str, Any], lang: str
) -> None:
    page = login(browser, post, "awa", lang)
    assert page.get_attribute("html", "lang") == lang
    page.goto(f"{post.url}/web/search?name=dembele")
    page.wait_for_selector("#results-name tbody tr")
    shot(page, f"post-search-{lang}")
    page.goto(f"{post.url}/web/travellers/{travellers['ids']['dembele']}")
    assert page.inner_text("#person-dob") == "01/06/1982"
    shot(page, f"post-traveller-{lang}")
    page.goto(f"{post.url}/web/stays")
    shot(page, f"post-stays-{lang}")
    page.context.close()


def test_other_roles_are_refused_and_not_offered_the_pages(
    browser: Any, post: Node, travellers: dict[str, Any]
) -> None:
    history = f"/web/travellers/{travellers['ids']['dembele']}"
    for username in ("fatou", "moussa", "liaison", "boss"):
        page = login(browser, post, username)
        nav = page.locator("nav.menu a").evaluate_all("links => links.map(a => a.pathname)")
        assert "/web/search" not in nav and "/web/stays" not in nav, username
        for path in (*PAGES, "/web/search?name=dembele", history):
            response = page.goto(f"{post.url}{path}")
            assert response is not None and response.status == 403, (username, path)
            assert "DEMBELE" not in page.content()
        page.context.close()
    reads = [e for e in audit_events(post, "moussa") if e[0] in ("search", "read")]
    assert reads == []  # a refused page reads nothing
    for username in ("awa", "sidi"):
        page = login(browser, post, username)
        for path in (*PAGES, history):
            response = page.goto(f"{post.url}{path}")
            assert response is not None and response.status == 200, (username, path)
        missing = page.goto(f"{post.url}/web/travellers/{uuid.uuid4()}")
        assert missing is not None and missing.status == 404
        page.context.close()


def test_watchlist_import_is_not_offered_nor_accepted_at_a_post(browser: Any, post: Node) -> None:
    """A post's own entries never reach national: the import is national's alone."""
    page = login(browser, post, "boss")
    nav = page.locator("nav.menu a").evaluate_all("links => links.map(a => a.pathname)")
    assert "/web/admin/watchlist" not in nav and "/web/admin/officers" in nav
    response = page.goto(f"{post.url}/web/admin/watchlist")
    assert response is not None and response.status == 403
    fr = gettext_for("fr")
    assert page.inner_text("#error-detail") == fr(
        "Watchlist imports are done on the national node."
    )
    page.goto(f"{post.url}/web/admin/officers")
    token = page.get_attribute('meta[name="csrf-token"]', "content") or ""
    refused = page.request.post(
        f"{post.url}/web/admin/watchlist/import",
        multipart={
            "csrf_token": token,
            "file": {
                "name": "list.csv",
                "mimeType": "text/csv",
                "buffer": b"external_id,kind\nW1,document\n",
            },
        },
        headers={"Origin": post.url},
    )
    assert refused.status == 403
    with post.api("boss") as api:
        assert api.get("/api/watchlist/entries").json() == []  # nothing was imported
    page.context.close()


def test_a_face_alert_shows_the_supervisor_the_live_and_the_listed_portraits(
    browser: Any, post: Node, faces_dir: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(faces_dir / "obama_1.jpg", photos / "listed.jpg")
    listing = tmp_path / "faces.csv"
    listing.write_text(
        "external_id,kind,surname,given_names,date_of_birth,nationality,issuing_state,"
        "document_number,reason,action,source,valid_from,valid_to,photo\n"
        "F1,person,LISTED,PERSON,,,,,wanted for questioning,refer_secondary,interpol,,,"
        "listed.jpg\n",
        encoding="utf-8",
    )
    cli(post.env, "watchlist", "import", str(listing), "--photos", str(photos))
    time.sleep(1.5)  # the server reloads its matcher every 0.5 s
    crossing = {
        "direction": "entry",
        "decision": "referred",
        "mrz": "\n".join(td3("F" + uuid.uuid4().hex[:7].upper(), surname="SANOGO", given="ALI")),
    }
    with post.api("awa") as api:
        created = api.post(
            "/api/crossings",
            files={
                "crossing": (None, json.dumps(crossing), "application/json"),
                "photo": ("live.jpg", (faces_dir / "obama_2.jpg").read_bytes(), "image/jpeg"),
            },
        )
    assert created.status_code == 201, created.text
    assert created.json()["alerts"], "the face listing raised no alert"
    page = login(browser, post, "sidi")
    card = page.locator("article.alert", has_text="SANOGO")
    card.wait_for()
    loaded = "(img) => img.complete && img.naturalWidth > 0"
    image, listed = card.locator("img.live-photo"), card.locator("img.listed-photo")
    assert image.count() == 1 and listed.count() == 1
    page.wait_for_function(loaded, arg=image.element_handle())
    page.wait_for_function(loaded, arg=listed.element_handle())
    sizes = "(img) => [img.naturalWidth, img.naturalHeight]"
    assert listed.evaluate(sizes) == [150, 188]
    assert card.locator(".listed-photo-missing").count() == 0
    shot(page, "alert-face-portraits-fr", full_page=True)
    src, listed_src = image.get_attribute("src") or "", listed.get_attribute("src") or ""
    events = audit_events(post, "sidi")
    reads = [e for e in events if e[1] == "photo"]
    assert reads and reads[-1][2] == "alert_review"
    alert_id = card.get_attribute("id").removeprefix("alert-")  # type: ignore[union-attr]
    listed_reads = [e for e in events if e[1] == "watchlist_entry"]
    assert [(e[0], e[2], json.loads(e[3])["alert"]) for e in listed_reads] == [
        ("read", "alert_review", alert_id)
    ]
    answer = page.request.get(f"{post.url}{listed_src}")
    assert answer.status == 200 and answer.body().startswith(b"\xff\xd8\xff")
    assert answer.headers["content-type"] == "image/jpeg"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert len([e for e in audit_events(post, "sidi") if e[1] == "watchlist_entry"]) == 2
    page.context.close()
    # the protection officer adjudicates protect alerts only: these portraits are not theirs
    other = login(browser, post, "fatou")
    for path in (src, listed_src, f"/web/alerts/{uuid.uuid4()}/listed-photo"):
        answer = other.goto(f"{post.url}{path}")
        assert answer is not None and answer.status == 404
    officer = login(browser, post, "awa")
    for path in (src, listed_src):
        answer = officer.goto(f"{post.url}{path}")
        assert answer is not None and answer.status == 403
    assert not [
        e
        for e in audit_events(post, "fatou") + audit_events(post, "awa")
        if e[1] == "watchlist_entry" and e[2] == "alert_review"
    ]
    other.context.close()
    officer.context.close()


def test_an_entry_listed_without_a_portrait_says_so_beside_the_live_one(
    browser: Any, post: Node, faces_dir: Path, tmp_path: Path
) -> None:
    """An entry enrolled before listed portraits were kept: its face template only."""
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(faces_dir / "biden_1.jpg", photos / "listed.jpg")
    listing = tmp_path / "faces.csv"
    listing.write_text(
        "external_id,kind,surname,given_names,date_of_birth,nationality,issuing_state,"
        "document_number,reason,action,source,valid_from,valid_to,photo\n"
        "F2,person,OLDER,LISTING,,,,,wanted for questioning,refer_secondary,interpol,,,"
        "listed.jpg\n",
        encoding="utf-8",
    )
    cli(post.env, "watchlist", "import", str(listing), "--photos", str(photos))
    with sqlite3.connect(post.data_dir / "borderpost.db") as db:  # as before migration 0018
        db.execute("UPDATE watchlist_entry SET listed_portrait = NULL WHERE external_id = 'F2'")
    time.sleep(1.5)  # the server reloads its matcher every 0.5 s
    crossing = {
        "direction": "entry",
        "decision": "referred",
        "mrz": "\n".join(td3("F" + uuid.uuid4().hex[:7].upper(), surname="KONATE", given="BA")),
    }
    with post.api("awa") as api:
        created = api.post(
            "/api/crossings",
            files={
                "crossing": (None, json.dumps(crossing), "application/json"),
                "photo": ("live.jpg", (faces_dir / "biden_2.jpg").read_bytes(), "image/jpeg"),
            },
        )
    assert created.status_code == 201, created.text
    assert created.json()["alerts"], "the face listing raised no alert"
    for language in ("fr", "ar", "en"):
        page = login(browser, post, "sidi", lang=language)
        card = page.locator("article.alert", has_text="KONATE")
        card.wait_for()
        assert card.locator("img.live-photo").count() == 1
        assert card.locator("img.listed-photo").count() == 0
        missing = card.locator(".listed-photo-missing").inner_text()
        _ = gettext_for(language)
        assert missing == _(
            "No listed portrait is held for this entry: it was listed before the watchlist "
            "kept portraits."
        )
        page.context.close()
    alert_id = created.json()["alerts"][0]["id"]
    page = login(browser, post, "sidi")
    page.select_option("#language-select", "fr")  # the account's language, as it was
    page.click("#language-submit")
    page.wait_for_load_state("networkidle")
    answer = page.goto(f"{post.url}/web/alerts/{alert_id}/listed-photo")
    assert answer is not None and answer.status == 404
    page.context.close()


def test_officer_activity_counts_per_day_and_pages_the_actions_in_words(
    browser: Any, post: Node, travellers: dict[str, Any]
) -> None:
    with post.api("awa") as api:
        for n in range(55):  # 55 audited searches: more than one page of actions
            found = api.get("/api/search/name", params={"name": f"Dembele{n}"})
            assert found.status_code == 200
    fr = gettext_for("fr")
    page = login(browser, post, "sidi")
    page.goto(f"{post.url}/web/officers/activity")
    today = datetime.now(UTC).astimezone().date()
    row = page.locator("#activity-days tbody tr", has_text="Awa")
    assert int(row.locator(f'td[data-day="{today.isoformat()}"]').inner_text()) >= 1
    five_days_ago = (today - timedelta(days=5)).isoformat()
    assert int(row.locator(f'td[data-day="{five_days_ago}"]').inner_text()) >= 1
    header = page.locator("#activity-days thead").inner_text()
    assert today.strftime("%d/%m/%Y") in header  # days in the reader's format
    shot(page, "officers-activity-overview-fr")
    row.locator("a").click()
    page.wait_for_selector("#activity-events tbody tr")
    columns = page.locator("#activity-events thead th").all_inner_texts()
    assert fr("Reason for access") in columns
    assert fr("Purpose") not in columns  # not the traveller's "Motif du voyage"
    events = page.locator("#activity-events tbody tr")
    assert events.count() == 50
    text = page.inner_text("#activity-events")
    assert fr("Searched") in text and fr("Search") in text
    assert "search:" not in text and '"query"' not in text  # no raw audit codes or JSON
    shot(page, "officers-activity-actions-fr", full_page=True)
    page.click("#page-next")
    page.wait_for_selector("#activity-events tbody tr")
    assert "offset=50" in page.url
    assert page.locator("#page-previous").count() == 1
    assert fr("Created") in page.inner_text("#activity-events")  # the registrations, older
    missing = page.goto(f"{post.url}/web/officers/activity?username=nobody")
    assert missing is not None and missing.status == 404
    page.context.close()
    reads = [e for e in audit_events(post, "sidi") if e[1] == "officer_activity"]
    assert reads and all(e[2] == "supervision" for e in reads)
    officer = login(browser, post, "awa")
    refused = officer.goto(f"{post.url}/web/officers/activity?username=sidi")
    assert refused is not None and refused.status == 403
    officer.context.close()


@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
def test_search_history_stays_and_activity_fit_the_screen(
    browser: Any, post: Node, travellers: dict[str, Any], width: int, height: int
) -> None:
    """At 1366x768 and 1024x768 each page's form and the first lines of its result are in
    view without scrolling."""
    page = login(browser, post, "sidi")
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{post.url}/web/search")
    page.fill("#s-name", "Dembele")
    page.press("#s-name", "Enter")
    page.wait_for_selector("#results-name tbody tr")
    shot(page, f"post-search-{width}x{height}")
    assert in_view(page, "#s-name") and in_view(page, "#s-name ~ button, form:has(#s-name) button")
    assert in_view(page, "#results-name tbody tr:first-child"), "the first person found"
    page.click("#results-name tbody tr >> nth=0 >> a")
    page.wait_for_selector("#history tbody tr")
    shot(page, f"post-traveller-{width}x{height}")
    assert in_view(page, "#person-dob")
    assert in_view(page, "#history tbody tr:first-child"), "the latest crossing"
    page.goto(f"{post.url}/web/stays")
    shot(page, f"post-stays-{width}x{height}")
    assert in_view(page, "form.filters button")
    assert in_view(page, "#stays tbody tr:first-child"), "the first overstayer"
    page.goto(f"{post.url}/web/officers/activity")
    shot(page, f"officers-activity-{width}x{height}")
    assert in_view(page, "#activity-days tbody tr:first-child"), "the first officer's days"
    page.locator("#activity-days tbody tr", has_text="Awa").locator("a").click()
    page.wait_for_selector("#activity-events tbody tr")
    shot(page, f"officers-activity-actions-{width}x{height}")
    assert in_view(page, "#activity-events tbody tr:first-child"), "the latest action"
    page.context.close()
