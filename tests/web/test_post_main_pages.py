"""The post's main pages in a real browser (Playwright, headless Chromium) against a real
`borderpost serve` on SQLite, accounts created with the CLI as a technician does: the
keyboard-only desk (MRZ typed as a keyboard-wedge reader would, photo upload, check, save,
receipt whose QR code is decoded and verified, keystrokes counted), a watchlist hit seen at
the desk and adjudicated by a supervisor, Arabic (right to left), role refusals and CSRF, a
screenshot of every main page under tests/artifacts/screenshots/ on every run, search and
timeline at the post, the liaison page at a post, and the webcam's refused photo. The
national node's pages are in test_national_pages.py. Outside CI a missing Chromium skips;
under CI it fails.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from registry.web.i18n import gettext_for
from tests.support.pages import (
    POST,
    Node,
    count_keystrokes,
    decode_qr,
    launch,
    login,
    receipt_claims,
    register_at_desk,
    shot,
    td3,
    unique_number,
    wait_until,
)

pytestmark = [pytest.mark.browser]


# ---------------------------------------------------------------- the desk
def test_desk_from_mrz_to_verified_receipt_by_keyboard(
    browser: Any, post: Node, faces_dir: Path
) -> None:
    page = login(browser, post, "awa")
    assert page.url.endswith("/web/desk")
    number = unique_number()
    register_at_desk(page, td3(number))
    assert page.input_value("#f-document-number") == number
    assert page.input_value("#f-traveller-surname") == "CISSE"
    assert page.input_value("#f-traveller-date_of_birth") == "01/06/1982"  # the page's format
    assert page.locator('[data-check-for="document.number"] .ok').count() == 1
    assert page.locator('[data-check-for="mrz"] .ok').count() == 1
    count_keystrokes(page)
    page.set_input_files("#photo-file", str(faces_dir / "obama_1.jpg"))
    page.wait_for_selector("#photo-quality .accepted", timeout=60_000)
    assert page.evaluate("document.activeElement.id") == "submit"
    shot(page, "desk-filled", full_page=True)

    keystrokes = 0
    page.keyboard.press("Enter")  # Check & save: runs the checks
    keystrokes += 1
    page.wait_for_selector('#submit[data-state="save"]')
    assert page.is_visible("#decision")
    assert page.is_checked('input[name="decision"][value="cleared"]')
    assert page.evaluate("document.activeElement.id") == "submit"
    page.keyboard.press("Enter")  # save: the receipt opens with the print dialog
    keystrokes += 1
    page.wait_for_selector("#saved:not([hidden])")
    frame = page.frame_locator("#receipt-frame")
    frame.locator("#receipt-qr svg").wait_for()
    assert keystrokes < 10
    assert page.evaluate("window.__keys") == keystrokes
    assert page.evaluate("document.activeElement.id") == "mrz"  # ready for the next traveller
    shot(page, "desk-saved", full_page=True)

    href = page.get_attribute("#receipt-80", "href")
    crossing_id = re.search(r"/web/receipts/([0-9a-f-]{36})", href or "").group(1)  # type: ignore[union-attr]
    for paper in ("80mm", "a4"):
        receipt = page.context.new_page()
        receipt.goto(f"{post.url}/web/receipts/{crossing_id}?paper={paper}")
        assert receipt.get_attribute("body", "data-paper") == paper
        png = receipt.locator("#receipt-qr").screenshot()
        shot(receipt, f"receipt-{paper}", full_page=True)
        payload = decode_qr(png)
        claims = receipt_claims(post, payload)
        assert str(claims.crossing_id) == crossing_id
        assert claims.direction == "entry" and claims.node_code == POST
        with post.api("awa") as api:
            verified = api.post("/api/receipts/verify", json={"payload": payload})
        assert verified.status_code == 200 and verified.json()["crossing_id"] == crossing_id
        receipt.close()
    with post.api("awa") as api:
        stored = api.get(f"/api/crossings/{crossing_id}").json()
    assert stored["photo_sha256"] and stored["decision"] == "cleared"
    assert stored["document"]["number"] == number
    assert page.csp_violations == []  # type: ignore[attr-defined]
    page.context.close()


def test_watchlist_hit_at_the_desk_then_adjudicated_by_the_supervisor(
    browser: Any, post: Node
) -> None:
    number = unique_number()
    with post.api("sidi") as api:
        entry = api.post(
            "/api/watchlist/entries",
            json={
                "kind": "document",
                "reason": "reported stolen by the issuing state",
                "action": "refer_secondary",
                "issuing_state": "MLI",
                "document_number": number,
            },
        )
    assert entry.status_code == 201, entry.text
    page = login(browser, post, "lina")
    register_at_desk(page, td3(number, surname="TRAORE", given="ISSA"))
    page.keyboard.press("Enter")
    page.wait_for_selector("#instructions p")
    instruction = page.inner_text("#instructions")
    assert gettext_for("fr")("Refer to secondary inspection") in instruction
    assert "stolen" not in page.content()  # the desk never sees the reason
    assert not page.is_checked('input[name="decision"][value="cleared"]')
    shot(page, "desk-watchlist-hit", full_page=True)
    page.keyboard.press("ArrowDown")  # from "cleared" to "referred"
    assert page.is_checked('input[name="decision"][value="referred"]')
    page.keyboard.press("Enter")
    page.wait_for_selector("#saved:not([hidden])")
    assert gettext_for("fr")("Refer to secondary inspection") in page.inner_text("#saved-alerts")
    page.context.close()

    supervisor = login(browser, post, "sidi")
    assert supervisor.url.endswith("/web/alerts")
    card = supervisor.locator("article.alert", has_text="TRAORE")
    card.wait_for()
    assert "reported stolen" in card.inner_text()  # the supervisor sees the reason
    shot(supervisor, "alerts-to-adjudicate", full_page=True)
    card.locator('input[value="confirmed"]').check()
    card.locator("textarea").fill("passport matches the stolen list; traveller referred")
    card.locator('button[type="submit"]').click()
    supervisor.wait_for_selector("#flash")
    assert supervisor.locator("article.alert", has_text="TRAORE").count() == 0
    with post.api("sidi") as api:
        assert all(a["traveller"]["surname"] != "TRAORE" for a in api.get("/api/alerts").json())
    supervisor.goto(f"{post.url}/web/officers/activity?username=lina")
    assert supervisor.locator("#activity-events tbody tr").count() > 0
    shot(supervisor, "officers-activity", full_page=True)
    supervisor.context.close()


def test_arabic_is_right_to_left_with_translated_labels(browser: Any, post: Node) -> None:
    ar = gettext_for("ar")
    page = login(browser, post, "lina")
    page.select_option("#language-select", "ar")
    page.click("#language-submit")
    page.wait_for_load_state("networkidle")
    assert page.get_attribute("html", "dir") == "rtl"
    assert page.get_attribute("html", "lang") == "ar"
    label = page.inner_text('label[for="mrz"]')
    assert label == ar("MRZ (document reader)") and label != "MRZ (document reader)"
    assert page.inner_text("#submit") == ar("Check & save")
    shot(page, "desk-arabic", full_page=True)
    page.goto(f"{post.url}/web/desk")  # stored on the account: still Arabic
    assert page.get_attribute("html", "dir") == "rtl"
    page.select_option("#language-select", "fr")
    page.click("#language-submit")
    page.wait_for_load_state("networkidle")
    assert page.get_attribute("html", "dir") == "ltr"
    page.context.close()


def test_officer_is_refused_hq_and_liaison_and_forms_need_their_token(
    browser: Any, post: Node
) -> None:
    page = login(browser, post, "awa")
    for path in ("/web/hq/dashboard", "/web/hq/search", "/web/liaison", "/web/admin/officers"):
        response = page.goto(f"{post.url}{path}")
        assert response is not None and response.status == 403, path
    shot(page, "forbidden")
    page.goto(f"{post.url}/web/desk")
    nav = page.locator("nav.menu").inner_text()
    assert gettext_for("fr")("Statistics") not in nav
    assert gettext_for("fr")("Liaison") not in nav
    token = page.get_attribute('meta[name="csrf-token"]', "content")
    refused = page.request.post(
        f"{post.url}/web/language", form={"language": "en"}, max_redirects=0
    )
    assert refused.status == 403
    forged = page.request.post(
        f"{post.url}/web/language",
        form={"language": "fr", "csrf_token": "forged"},
        max_redirects=0,
    )
    assert forged.status == 403
    accepted = page.request.post(
        f"{post.url}/web/language", form={"language": "fr", "csrf_token": token}, max_redirects=0
    )
    assert accepted.status == 303
    script_without_token = page.request.post(
        f"{post.url}/web/desk/check",
        data=json.dumps({"crossing": {"direction": "entry"}}),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    assert script_without_token.status == 403
    page.context.close()


# ---------------------------------------------------------------- every main page
PAGES = {
    "supervisor": ("sidi", ["/web/desk", "/web/alerts", "/web/officers/activity"]),
    "protection": ("fatou", ["/web/referrals", "/web/alerts"]),
    "hq": ("moussa", ["/web/hq/dashboard", "/web/hq/search?name=cisse", "/web/hq/stays"]),
    "liaison": ("liaison", ["/web/liaison"]),
    "admin": (
        "boss",
        [
            "/web/admin/officers",
            "/web/admin/posts",
            "/web/admin/agreements",
            "/web/admin/sync",
        ],
    ),
}


def test_every_main_page_renders_without_csp_violation(browser: Any, post: Node) -> None:
    anonymous = browser.new_page()
    anonymous.goto(f"{post.url}/web/login")
    shot(anonymous, "login")
    anonymous.close()
    for role, (username, paths) in PAGES.items():
        page = login(browser, post, username)
        nav_links = page.locator("nav.menu a").evaluate_all("links => links.map(a => a.pathname)")
        for path in paths:
            response = page.goto(f"{post.url}{path}")
            assert response is not None and response.status == 200, path
            assert page.is_visible("#sync-banner")  # this post has never synchronised
            assert path.split("?")[0] in nav_links or path.startswith("/web/hq/search")
            name = path.strip("/").split("?")[0].replace("web/", "").replace("/", "-")
            shot(page, f"{role}-{name}", full_page=True)
        assert page.csp_violations == [], page.csp_violations  # type: ignore[attr-defined]
        page.context.close()


def test_search_and_timeline_for_an_analyst_at_the_post(browser: Any, post: Node) -> None:
    number = unique_number()
    with post.api("awa") as api:
        created = api.post(
            "/api/crossings", json={"direction": "entry", "mrz": "\n".join(td3(number))}
        )
    assert created.status_code == 201
    page = login(browser, post, "moussa")
    page.goto(f"{post.url}/web/hq/search")
    page.fill("#s-state", "MLI")
    page.fill("#s-number", number)
    page.press("#s-number", "Enter")
    page.wait_for_selector("#results-document tbody tr")
    page.click("#results-document tbody tr a")
    page.wait_for_selector("#timeline li")
    assert number in page.inner_text("#timeline")
    shot(page, "hq-timeline", full_page=True)
    page.context.close()


def test_liaison_page_at_a_post_says_where_the_work_is_done(browser: Any, post: Node) -> None:
    page = login(browser, post, "liaison")
    assert page.inner_text("#not-available") == gettext_for("fr")(
        "Liaison work is done on the national node."
    )
    page.context.close()


def test_webcam_capture_shows_why_a_photo_is_refused_and_the_override_saves(
    playwright: Any, post: Node
) -> None:
    """Chromium's fake camera (a test pattern, no face): the quality gate refuses the photo
    and says why; the officer gives a reason and saves anyway."""
    chromium = launch(
        playwright, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"
    )
    try:
        page = login(chromium, post, "awa")
        page.context.grant_permissions(["camera"], origin=post.url)
        register_at_desk(page, td3(unique_number(), surname="CAMARA", given="AWA"))
        page.click("#camera-start")
        page.wait_for_selector("#camera:not([hidden])")
        wait_until(page, "document.getElementById('camera').videoWidth > 0")
        page.keyboard.press("Enter")  # the capture button has the focus
        page.wait_for_selector("#photo-quality .refused", timeout=60_000)
        assert gettext_for("fr")("No face found") in page.inner_text("#photo-quality")
        assert page.is_visible("#override-field")
        shot(page, "desk-photo-refused", full_page=True)
        page.fill("#f-photo_quality_override", "traveller wears a medical mask")
        page.click("#submit")
        page.wait_for_selector('#submit[data-state="save"]')
        # the override is a warning: no decision preselected, the officer chooses it
        assert not page.is_checked('input[name="decision"][value="cleared"]')
        page.check('input[name="decision"][value="cleared"]')
        page.click("#submit")
        page.wait_for_selector("#saved:not([hidden])")
        href = page.get_attribute("#receipt-80", "href") or ""
        crossing_id = href.split("/")[3].split("?")[0]
        with post.api("awa") as api:
            stored = api.get(f"/api/crossings/{crossing_id}").json()
        assert any(c["code"] == "photo_quality_override" for c in stored["checks"])
        assert stored["photo_sha256"]
        page.context.close()
    finally:
        chromium.close()
