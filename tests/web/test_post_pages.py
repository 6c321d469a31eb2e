"""Issue 16, pages for what a post does, in Chromium at 1366x768 against a real post: from
the desk to a crossing's page, a protection referral attached there (and the desk and the
crossing page then say that one exists); a correction by a superseding version with its
reason (the stay computed again); a referral's case followed up and closed by the
protection officer; one's own password change and an administrator's reset that forces a
change at the next login. Each page's role checks: a role that may not see gets 403 whether
the record exists or not. Refused forms keep what was typed (never a password) and say why
in the page's language. Screenshots in French and Arabic under tests/artifacts/screenshots/.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from markupsafe import escape

from registry.web.i18n import gettext_for
from tests.support.pages import (
    PASSWORD,
    VIEWPORTS,
    Node,
    add_accounts,
    in_view,
    login,
    shot,
    td3,
    type_mrz,
    unique_number,
    wait_until,
)
from tests.support.servers import cli

FR = gettext_for("fr")
AR = gettext_for("ar")
WIDTH, HEIGHT = 1366, 768
ALREADY_REFERRED = (
    "A protection referral is already attached to this crossing: the protection officer "
    "follows it up. Tell them in person what you have to add."
)
OUTSIDERS = {  # who may not open a crossing's page: the desk's roles only
    "fatou": "protection",
    "moussa": "hq_analyst",
    "liaison": "liaison",
    "boss": "admin",
}


def open_as(
    browser: Any,
    node: Node,
    username: str,
    password: str = PASSWORD,
    size: tuple[int, int] = (WIDTH, HEIGHT),
) -> Any:
    """A fresh browser context (1366x768 unless ``size``), logged in; returns its page."""
    return login(browser, node, username, password=password, viewport=size)


def choose_language(page: Any, lang: str) -> None:
    page.select_option("#language-select", lang)
    page.click("#language-submit")
    page.wait_for_load_state("networkidle")
    assert page.get_attribute("html", "lang") == lang


def csrf(page: Any) -> str:
    """The session's CSRF token, read from the officer's home page."""
    page.goto(page.url.split("/web/")[0] + "/web/")
    return str(page.get_attribute('meta[name="csrf-token"]', "content"))


def register(page: Any) -> str:
    """Register a traveller at the desk by keyboard; the new crossing's id."""
    page.goto(page.url.split("/web/")[0] + "/web/desk")
    type_mrz(page, td3(unique_number(), surname="TOURE", given="MARIAM"))
    wait_until(page, "document.activeElement && document.activeElement.id === 'submit'")
    page.keyboard.press("Enter")  # the checks
    page.wait_for_selector('#submit[data-state="save"]')
    if not page.evaluate("!!document.querySelector('input[name=\"decision\"]:checked')"):
        page.check('input[name="decision"][value="cleared"]')
        page.focus("#submit")
    page.keyboard.press("Enter")  # save
    page.wait_for_selector("#saved-banner:not([hidden])")
    href = page.get_attribute("#saved-banner-refer", "href") or ""
    found = re.search(r"/web/crossings/([0-9a-f-]{36})#referral$", href)
    assert found, href
    return found.group(1)


def refused_everywhere(page: Any, node: Node, paths: list[str]) -> None:
    """Each path answers 403, exactly as the same path with an unknown id does."""
    for path in paths:
        response = page.goto(f"{node.url}{path}")
        assert response is not None and response.status == 403, path
        unknown = re.sub(r"[0-9a-f-]{36}", str(uuid.uuid4()), path)
        response = page.goto(f"{node.url}{unknown}")
        assert response is not None and response.status == 403, unknown


# ---------------------------------------------------------------- referral from the desk
def test_desk_to_crossing_page_attaches_a_referral_that_the_desk_then_shows(
    browser: Any, post: Node
) -> None:
    page = open_as(browser, post, "awa")
    crossing_id = register(page)
    page.click("#saved-banner-refer")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/web/crossings/{crossing_id}#referral")
    assert not page.is_visible("#referral-exists")
    assert page.is_visible("#referral-form")
    # a refused form: the category kept, the reason in French
    page.select_option("#r-category", "unaccompanied_minor")
    page.evaluate("document.getElementById('referral-form').noValidate = true")
    page.click("#referral-submit")  # the note left empty: the server says why
    page.wait_for_selector("#referral-error")
    assert page.inner_text("#referral-error") == FR(
        "Write what the protection officer needs to know."
    )
    assert page.input_value("#r-category") == "unaccompanied_minor"
    page.fill("#r-note", "Voyage seule, environ 14 ans, dit rejoindre un oncle.")
    page.click("#referral-submit")
    page.wait_for_selector("#referral-exists")
    assert page.inner_text("#flash") == FR(
        "The protection officer has been alerted: referral attached."
    )
    assert page.inner_text("#referral-exists") == FR(
        "A protection referral is attached to this crossing: the protection officer follows it up."
    )
    assert "environ 14 ans" not in page.content()  # the desk never reads the referral back
    # no second referral is offered: the page says one exists, and a forged one is refused
    assert not page.is_visible("#referral-form") and not page.is_visible("#referral-submit")
    assert page.inner_text("#referral-attached") == FR(ALREADY_REFERRED)
    second = page.request.post(
        f"{post.url}/web/crossings/{crossing_id}/referrals",
        form={"category": "other_vulnerability", "note": "encore", "csrf_token": csrf(page)},
        max_redirects=0,
    )
    assert second.status == 409 and str(escape(FR(ALREADY_REFERRED))) in second.text()
    assert "environ 14 ans" not in second.text()
    page.goto(f"{post.url}/web/crossings/{crossing_id}#referral")
    shot(page, "post-crossing-referred-fr", full_page=True)
    page.goto(f"{post.url}/web/desk")
    row = page.locator(
        "#recent-table tr", has=page.locator(f'a[href="/web/crossings/{crossing_id}"]')
    )
    assert row.locator(".referral-mark").inner_text() == FR("Referred to protection")
    choose_language(page, "ar")
    page.goto(f"{post.url}/web/crossings/{crossing_id}")
    assert page.get_attribute("html", "dir") == "rtl"
    assert page.inner_text("#h-refer") == AR("Refer to the protection officer")
    assert page.inner_text("#referral-exists") != page.inner_text("#h-refer")
    assert page.inner_text("#referral-attached") == AR(ALREADY_REFERRED)
    assert not page.is_visible("#referral-form")
    with post.api("awa") as api:  # a later version of the crossing: still no second one
        corrected = api.post(
            f"/api/crossings/{crossing_id}/corrections",
            json={"reason": "Destination précisée", "destination": "Kayes"},
        )
    assert corrected.status_code == 201, corrected.text
    page.goto(f"{post.url}/web/crossings/{corrected.json()['id']}")
    assert page.is_visible("#referral-attached") and not page.is_visible("#referral-form")
    shot(page, "post-crossing-referred-ar", full_page=True)
    choose_language(page, "fr")
    page.context.close()
    # roles that may not know: the same 403 for this crossing as for one that does not exist
    for username in OUTSIDERS:
        other = open_as(browser, post, username)
        refused_everywhere(other, post, [f"/web/crossings/{crossing_id}"])
        forged = other.request.post(
            f"{post.url}/web/crossings/{crossing_id}/referrals",
            form={"category": "other_vulnerability", "note": "x", "csrf_token": csrf(other)},
            max_redirects=0,
        )
        assert forged.status == 403, username
        other.context.close()


# ---------------------------------------------------------------- correction
def test_a_supervisor_corrects_a_crossing_to_refused_with_a_reason(
    browser: Any, post: Node
) -> None:
    page = open_as(browser, post, "awa")
    crossing_id = register(page)
    page.context.close()
    page = open_as(browser, post, "sidi")
    page.goto(f"{post.url}/web/crossings/{crossing_id}")
    assert page.inner_text("#crossing-decision") == FR("Cleared")
    assert page.inner_text("#crossing-stay") != "—"
    page.select_option("#c-decision", "refused")
    page.fill("#c-remarks", "Document présenté par un tiers")
    page.evaluate("document.getElementById('correction-form').noValidate = true")
    page.click("#correction-submit")  # no reason
    page.wait_for_selector("#correction-error")
    assert page.inner_text("#correction-error") == FR(
        "Give the reason for the correction (3 characters or more)."
    )
    assert page.input_value("#c-decision") == "refused"  # what was typed is kept
    assert page.input_value("#c-remarks") == "Document présenté par un tiers"
    page.fill("#c-reason", "Entrée refusée par le chef de poste")
    page.click("#correction-submit")
    page.wait_for_selector("#flash")
    assert page.inner_text("#flash") == FR("The correction has been saved as a new version.")
    corrected_id = page.url.split("/web/crossings/")[1].split("?")[0]
    assert corrected_id != crossing_id
    assert page.inner_text("#crossing-decision") == FR("Refused")
    assert page.inner_text("#crossing-stay") == "—"  # a refused entry opens no stay
    assert page.locator("#versions tbody tr").count() == 2
    shot(page, "post-crossing-corrected-fr", full_page=True)
    page.goto(f"{post.url}/web/crossings/{crossing_id}")  # the original: read-only now
    assert page.is_visible("#superseded") and not page.is_visible("#correction-form")
    stale = page.request.post(
        f"{post.url}/web/crossings/{crossing_id}/corrections",
        form={"decision": "cleared", "reason": "again", "csrf_token": csrf(page)},
    )
    assert stale.status == 409
    assert FR(
        "This version has already been corrected: open the latest version to correct it."
    ) in (stale.text())
    choose_language(page, "ar")
    page.goto(f"{post.url}/web/crossings/{corrected_id}")
    assert page.inner_text("#crossing-decision") == AR("Refused")
    shot(page, "post-crossing-corrected-ar", full_page=True)
    choose_language(page, "fr")
    page.context.close()
    with post.api("sidi") as api:
        versions = api.get(f"/api/crossings/{corrected_id}/versions").json()
    assert [v["decision"] for v in versions] == ["cleared", "refused"]
    assert versions[1]["correction_reason"] == "Entrée refusée par le chef de poste"
    for username in OUTSIDERS:
        other = open_as(browser, post, username)
        forged = other.request.post(
            f"{post.url}/web/crossings/{corrected_id}/corrections",
            form={"decision": "cleared", "reason": "not mine", "csrf_token": csrf(other)},
            max_redirects=0,
        )
        assert forged.status == 403, username
        other.context.close()


# ---------------------------------------------------------------- a referral's case
def test_the_protection_officer_follows_up_and_closes_a_case(browser: Any, post: Node) -> None:
    with post.api("awa") as api:
        crossing = api.post(
            "/api/crossings",
            json={"direction": "entry", "mrz": "\n".join(td3(unique_number(), surname="BAH"))},
        ).json()
        referral = api.post(
            f"/api/crossings/{crossing['id']}/referrals",
            json={"category": "trafficking_suspected", "note": "Accompagnée d'un adulte inconnu"},
        ).json()
    referral_id = referral["referral_id"]
    page = open_as(browser, post, "fatou")
    assert page.url.endswith("/web/referrals")
    row = page.locator("#referrals tr", has=page.locator(f'a[href="/web/referrals/{referral_id}"]'))
    assert FR("Awaiting follow-up") in row.inner_text() and "Awa (officer)" in row.inner_text()
    page.goto(f"{post.url}/web/referrals/{referral_id}")
    assert page.inner_text("#case-status") == FR("Awaiting follow-up")
    assert "Awa (officer)" in page.inner_text("#reporting-officer")
    page.fill("#fu-note", "Famille contactée à Kayes")
    page.select_option("#fu-status", "closed")
    page.click("#follow-up-submit")  # closing without an outcome
    page.wait_for_selector("#follow-up-error")
    assert page.inner_text("#follow-up-error") == FR("Choose the outcome to close the case.")
    assert page.input_value("#fu-note") == "Famille contactée à Kayes"
    assert page.input_value("#fu-status") == "closed"
    page.select_option("#fu-status", "in_follow_up")
    page.click("#follow-up-submit")
    page.wait_for_selector("#flash")
    assert page.inner_text("#flash") == FR("The follow-up has been added to the case.")
    assert page.inner_text("#case-status") == FR("In follow-up")
    assert page.locator("#follow-ups li").count() == 1
    shot(page, "post-referral-case-fr", full_page=True)
    page.fill("#fu-note", "Remise à sa tante, en présence de l'assistante sociale")
    page.select_option("#fu-status", "closed")
    page.select_option("#fu-outcome", "reunited_with_family")
    page.click("#follow-up-submit")
    page.wait_for_selector("#case-closed")
    assert page.inner_text("#case-status") == FR("Closed")
    assert FR("Reunited with family") in page.inner_text("#case-outcome")
    assert not page.is_visible("#follow-up-form")
    choose_language(page, "ar")
    assert page.inner_text("#case-status") == AR("Closed")
    shot(page, "post-referral-case-ar", full_page=True)
    page.goto(f"{post.url}/web/referrals")
    shot(page, "post-referrals-ar", full_page=True)
    choose_language(page, "fr")
    page.context.close()
    for username in ("awa", "sidi", "moussa", "liaison", "boss"):
        other = open_as(browser, post, username)
        refused_everywhere(other, post, [f"/web/referrals/{referral_id}"])
        forged = other.request.post(
            f"{post.url}/web/referrals/{referral_id}/follow-ups",
            form={"status": "in_follow_up", "note": "x", "csrf_token": csrf(other)},
            max_redirects=0,
        )
        assert forged.status == 403, username
        assert "/web/referrals" not in other.locator("nav.menu").inner_html()
        other.context.close()


# ---------------------------------------------------------------- passwords
def test_own_password_change_ends_the_other_sessions_and_an_admin_reset_forces_a_change(
    browser: Any, post: Node
) -> None:
    username = "kadi" + uuid.uuid4().hex[:4]
    add_accounts(post.env, ((username, "officer"),))
    here = open_as(browser, post, username)
    elsewhere = open_as(browser, post, username)
    here.goto(f"{post.url}/web/account")
    here.fill("#p-current", "not-my-password")
    here.fill("#p-new", "nouveau-mot-de-passe-1")
    here.fill("#p-again", "nouveau-mot-de-passe-1")
    here.click("#password-submit")
    here.wait_for_selector("#password-error")
    assert here.inner_text("#password-error") == FR("The current password is wrong.")
    assert here.input_value("#p-current") == ""  # passwords are never sent back
    here.fill("#p-current", PASSWORD)
    here.fill("#p-new", "nouveau-mot-de-passe-1")
    here.fill("#p-again", "nouveau-mot-de-passe-2")
    here.click("#password-submit")
    here.wait_for_selector("#password-error")
    assert here.inner_text("#password-error") == FR("The two new passwords differ.")
    shot(here, "post-account-password-error-fr", full_page=True)
    here.fill("#p-current", PASSWORD)
    here.fill("#p-new", "nouveau-mot-de-passe-1")
    here.fill("#p-again", "nouveau-mot-de-passe-1")
    here.click("#password-submit")
    here.wait_for_selector("#flash")
    assert here.inner_text("#flash") == FR(
        "Your password has been changed; your other sessions have ended."
    )
    assert here.goto(f"{post.url}/web/desk").status == 200  # type: ignore[union-attr]
    elsewhere.goto(f"{post.url}/web/desk")
    assert "/web/login" in elsewhere.url  # the other session ended
    elsewhere.context.close()
    choose_language(here, "ar")
    here.goto(f"{post.url}/web/account")
    assert here.inner_text("#h-password") == AR("Change my password")
    shot(here, "post-account-ar", full_page=True)
    choose_language(here, "fr")
    here.context.close()

    admin = open_as(browser, post, "boss")
    admin.goto(f"{post.url}/web/admin/officers")
    options = admin.locator("#rs-username option").all_inner_texts()
    assert username in options and "boss" not in options
    admin.select_option("#rs-username", username)
    admin.fill("#rs-password", "court")
    admin.evaluate("document.getElementById('reset-form').noValidate = true")
    admin.click("#reset-submit")
    admin.wait_for_selector("#reset-error")
    assert admin.inner_text("#reset-error") == FR(
        "The temporary password needs at least 10 characters."
    )
    assert admin.input_value("#rs-username") == username
    admin.fill("#rs-password", "temporaire-2026")
    admin.click("#reset-submit")
    admin.wait_for_selector("#flash")
    assert admin.inner_text("#flash") == FR(
        "The password has been reset; the officer must choose a new one at the next login."
    )
    shot(admin, "post-admin-reset-fr", full_page=True)
    choose_language(admin, "ar")
    admin.goto(f"{post.url}/web/admin/officers")
    shot(admin, "post-admin-reset-ar", full_page=True)
    choose_language(admin, "fr")
    admin.context.close()

    forced = open_as(browser, post, username, "temporaire-2026")
    assert forced.url.endswith("/web/account#password")
    assert forced.inner_text("#must-change") == FR(
        "An administrator has reset your password: choose a new one before going on."
    )
    forced.goto(f"{post.url}/web/desk")
    assert forced.url.endswith("/web/account#password")  # nothing else before the change
    forced.fill("#p-current", "temporaire-2026")
    forced.fill("#p-new", "encore-un-autre-3")
    forced.fill("#p-again", "encore-un-autre-3")
    forced.click("#password-submit")
    forced.wait_for_selector("#flash")
    assert not forced.is_visible("#must-change")
    assert forced.goto(f"{post.url}/web/desk").status == 200  # type: ignore[union-attr]
    forced.context.close()

    officer = open_as(browser, post, "awa")
    forged = officer.request.post(
        f"{post.url}/web/admin/officers/password",
        form={"username": username, "password": "volé-par-awa-1", "csrf_token": csrf(officer)},
        max_redirects=0,
    )
    assert forged.status == 403
    officer.context.close()


def test_a_password_set_from_the_cli_must_be_changed_at_the_next_login(
    browser: Any, post: Node
) -> None:
    """`borderpost officer passwd` is an administrator's reset: the officer is sent to the
    password form at the next web login; `--no-force-change` (one's own account) is not."""
    forced_name, own_name = ("cli" + uuid.uuid4().hex[:4] for _ in range(2))
    add_accounts(post.env, ((forced_name, "officer"), (own_name, "officer")))
    env = {**post.env, "BORDERPOST_NEW_PASSWORD": "depuis-la-console-1"}
    forced = json.loads(cli(env, "officer", "passwd", forced_name).stdout)
    assert forced["must_change_password"] is True
    own = json.loads(cli(env, "officer", "passwd", "--no-force-change", own_name).stdout)
    assert own["must_change_password"] is False
    page = open_as(browser, post, forced_name, "depuis-la-console-1")
    assert page.url.endswith("/web/account#password")
    assert page.inner_text("#must-change") == FR(
        "An administrator has reset your password: choose a new one before going on."
    )
    page.goto(f"{post.url}/web/desk")
    assert page.url.endswith("/web/account#password")  # nothing else before the change
    page.context.close()
    page = open_as(browser, post, own_name, "depuis-la-console-1")
    assert "/web/account" not in page.url and not page.is_visible("#must-change")
    assert page.goto(f"{post.url}/web/desk").status == 200  # type: ignore[union-attr]
    page.context.close()


# ---------------------------------------------------------------- on a small screen
@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
def test_each_page_shows_its_action_and_result_without_scrolling(
    browser: Any, post: Node, width: int, height: int
) -> None:
    """At 1366x768 and 1024x768, where each page opens (the desk's link, the menu, the
    forced password change): its form up to the button, then the result of the save."""
    page = open_as(browser, post, "awa", size=(width, height))
    crossing_id = register(page)
    page.click("#saved-banner-refer")
    page.wait_for_load_state("networkidle")
    assert in_view(page, "#referral-form"), "the referral form, up to its button"
    page.select_option("#r-category", "other_vulnerability")
    page.fill("#r-note", "Dit avoir perdu ses papiers en route.")
    page.click("#referral-submit")
    page.wait_for_selector("#flash")
    assert in_view(page, "#flash") and in_view(page, "#referral-exists")
    shot(page, f"post-crossing-referred-{width}x{height}")
    page.context.close()

    page = open_as(browser, post, "sidi", size=(width, height))
    page.goto(f"{post.url}/web/crossings/{crossing_id}#correction")
    shot(page, f"post-crossing-correction-{width}x{height}")
    assert in_view(page, "#correction-form"), "the correction form, up to its button"
    page.fill("#c-destination", "Kayes")
    page.fill("#c-reason", "Destination précisée par le voyageur")
    page.click("#correction-submit")
    page.wait_for_selector("#flash")
    assert in_view(page, "#flash") and in_view(page, "#crossing-decision")
    page.context.close()

    with post.api("awa") as api:
        crossing = api.post(
            "/api/crossings",
            json={"direction": "entry", "mrz": "\n".join(td3(unique_number(), surname="BAH"))},
        ).json()
        referral = api.post(
            f"/api/crossings/{crossing['id']}/referrals",
            json={"category": "trafficking_suspected", "note": "Accompagnée d'un adulte inconnu"},
        ).json()
    page = open_as(browser, post, "fatou", size=(width, height))
    page.click(f'a[href="/web/referrals/{referral["referral_id"]}"]')
    page.wait_for_load_state("networkidle")
    shot(page, f"post-referral-case-{width}x{height}")
    assert in_view(page, "#case-status")
    assert in_view(page, "#follow-up-form"), "the follow-up form, up to its button"
    page.fill("#fu-note", "Entretien fait, hébergement trouvé")
    page.select_option("#fu-status", "in_follow_up")
    page.click("#follow-up-submit")
    page.wait_for_selector("#flash")
    assert in_view(page, "#flash") and in_view(page, "#case-status")
    page.context.close()

    username = "fit" + uuid.uuid4().hex[:4]
    add_accounts(post.env, ((username, "officer"),))
    admin = open_as(browser, post, "boss", size=(width, height))
    admin.goto(f"{post.url}/web/admin/officers#password-reset")
    shot(admin, f"post-admin-reset-form-{width}x{height}")
    assert in_view(admin, "#reset-form"), "the reset form, up to its button"
    admin.select_option("#rs-username", username)
    admin.fill("#rs-password", "temporaire-2026")
    admin.click("#reset-submit")
    admin.wait_for_selector("#flash")
    assert in_view(admin, "#flash")
    shot(admin, f"post-admin-reset-{width}x{height}")
    admin.context.close()

    page = open_as(browser, post, username, "temporaire-2026", size=(width, height))
    assert page.url.endswith("/web/account#password")
    shot(page, f"post-account-forced-{width}x{height}")
    assert in_view(page, "#must-change") or in_view(page, "#h-password")
    assert in_view(page, "#password-form"), "the password form, up to its button"
    page.fill("#p-current", "temporaire-2026")
    page.fill("#p-new", "choisi-par-moi-7")
    page.fill("#p-again", "choisi-par-moi-7")
    page.click("#password-submit")
    page.wait_for_selector("#flash")
    assert in_view(page, "#flash")
    page.click("a.who")  # one's own change, from the name in the header
    page.wait_for_load_state("networkidle")
    shot(page, f"post-account-{width}x{height}")
    assert in_view(page, "#password-form"), "the password form, up to its button"
    page.context.close()
