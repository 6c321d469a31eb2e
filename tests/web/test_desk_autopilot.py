"""The desk cannot be cleared on autopilot (issue 16), in Chromium against a real post:
any warning leaves no decision preselected, so Enter, Enter on an expired passport saves
nothing; the decision step with its warnings and the saved confirmation are in view without
scrolling at 1366x768 and 1024x768; the MRZ box is left-to-right and a TD3 line fits in it
in Arabic too; both MRZ lines pasted on one line are read; a refused photo is reported at the
check; a half-finished registration survives a reload, kept encrypted in the browser."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from registry.web.i18n import gettext_for
from tests.support.pages import (
    PASSWORD,
    VIEWPORTS,
    Node,
    expired_td3,
    in_view,
    login,
    register_at_desk,
    shot,
    td3,
    unique_number,
    wait_until,
)

FRENCH = gettext_for("fr")


def desk(
    browser: Any, node: Node, *, width: int = 1366, height: int = 768, username: str = "awa"
) -> Any:
    """A fresh browser context at this screen size, logged in as an officer, on the desk."""
    page = login(browser, node, username, viewport=(width, height))
    assert page.url.endswith("/web/desk"), page.url
    return page


def crossings_of(node: Node, number: str) -> list[dict[str, Any]]:
    with node.api("awa") as api:
        response = api.get(
            "/api/search/document", params={"issuing_state": "MLI", "number": number}
        )
    assert response.status_code == 200, response.text
    return list(response.json())


def test_enter_enter_on_an_expired_passport_saves_nothing(browser: Any, post: Node) -> None:
    page = desk(browser, post)
    number = unique_number()
    register_at_desk(page, expired_td3(number))  # the reader's Enter: focus on Check & save
    page.keyboard.press("Enter")  # check
    page.wait_for_selector('#submit[data-state="save"]')
    assert FRENCH("Document expired") in page.inner_text("#check-summary")
    assert page.evaluate(
        "[...document.querySelectorAll('input[name=decision]')].every(r => !r.checked)"
    ), "a warning must leave no decision preselected"
    assert page.evaluate("document.activeElement.name") == "decision"
    page.keyboard.press("Enter")  # autopilot: Enter again
    wait_until(page, "!document.getElementById('desk-error').hidden")
    assert page.inner_text("#desk-error") == FRENCH("Choose the decision before saving.")
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert page.is_hidden("#saved")
    assert crossings_of(post, number) == []
    shot(page, "desk-autopilot-refused")
    # the officer chooses, deliberately: then it saves
    page.check('input[name="decision"][value="refused"]')
    page.keyboard.press("Enter")
    page.wait_for_selector("#saved:not([hidden])")
    assert [c["decision"] for c in crossings_of(post, number)] == ["refused"]
    page.context.close()


def test_a_clean_passport_is_preselected_cleared(browser: Any, post: Node) -> None:
    page = desk(browser, post)
    register_at_desk(page, td3(unique_number(), surname="DIARRA", given="SEYDOU"))
    page.keyboard.press("Enter")
    page.wait_for_selector('#submit[data-state="save"]')
    assert page.is_checked('input[name="decision"][value="cleared"]')
    assert page.evaluate("document.activeElement.id") == "submit"
    page.context.close()


@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
def test_decision_and_confirmation_are_in_view_without_scrolling(
    browser: Any, post: Node, width: int, height: int
) -> None:
    page = desk(browser, post, width=width, height=height)
    assert in_view(page, "#mrz")
    register_at_desk(page, expired_td3(unique_number()))
    page.keyboard.press("Enter")
    page.wait_for_selector('#submit[data-state="save"]')
    assert in_view(page, "#decide"), "the check summary, decision and Save must be in view"
    assert in_view(page, "#check-summary") and in_view(page, "#submit")
    shot(page, f"desk-decide-{width}x{height}")
    page.check('input[name="decision"][value="refused"]')
    page.click("#submit")
    page.wait_for_selector("#saved-banner:not([hidden])")
    wait_until(page, "document.activeElement.id === 'mrz'")
    assert in_view(page, "#saved-banner"), "the saved confirmation must be in view"
    assert in_view(page, "#mrz"), "and the MRZ box, ready for the next traveller"
    assert "KEITA FANTA" in page.inner_text("#saved-banner")
    shot(page, f"desk-saved-{width}x{height}")
    page.context.close()


def test_the_mrz_box_is_left_to_right_and_fits_a_td3_line_in_arabic(
    browser: Any, post: Node
) -> None:
    page = desk(browser, post, username="lina")
    page.select_option("#language-select", "ar")
    page.click("#language-submit")
    page.wait_for_load_state("networkidle")
    assert page.get_attribute("html", "dir") == "rtl"
    lines = td3(unique_number())
    page.fill("#mrz", "\n".join(lines))
    direction = page.evaluate("getComputedStyle(document.getElementById('mrz')).direction")
    assert direction == "ltr"
    fits = page.evaluate(
        "(() => { const box = document.getElementById('mrz');"
        " return box.scrollWidth <= box.clientWidth; })()"
    )
    assert fits, "a 44-character TD3 line must fit in the MRZ box without scrolling"
    shot(page, "desk-mrz-arabic")
    page.select_option("#language-select", "fr")  # the language is kept on the account
    page.click("#language-submit")
    page.wait_for_load_state("networkidle")
    page.context.close()


def test_both_mrz_lines_pasted_on_one_line_are_read(browser: Any, post: Node) -> None:
    page = desk(browser, post)
    number = unique_number()
    page.fill("#mrz", "".join(td3(number)))  # 88 characters, no line break
    wait_until(page, "document.activeElement && document.activeElement.id === 'submit'")
    assert page.input_value("#f-document-number") == number
    assert page.input_value("#f-traveller-surname") == "CISSE"
    page.fill("#mrz", "".join(td3(unique_number()))[:80])  # a broken paste: explained
    wait_until(page, "document.querySelector('[data-check-for=mrz] .bad') !== null")
    page.context.close()


def test_a_refused_photo_is_reported_at_the_check(browser: Any, post: Node, tmp_path: Path) -> None:
    from PIL import Image

    blank = tmp_path / "wall.jpg"
    Image.new("RGB", (640, 480), (128, 128, 128)).save(blank, "JPEG")
    page = desk(browser, post)
    register_at_desk(page, td3(unique_number(), surname="SOW", given="AMADOU"))
    page.set_input_files("#photo-file", str(blank))
    page.wait_for_selector("#photo-quality .refused", timeout=60_000)
    page.click("#submit")  # check
    page.wait_for_selector('#submit[data-state="save"]')
    summary = page.inner_text("#check-summary")
    assert FRENCH("Photo refused: retake it, or give the reason for accepting it") in summary
    assert not page.is_checked('input[name="decision"][value="cleared"]')
    page.context.close()


def test_a_half_finished_registration_survives_a_reload_encrypted(browser: Any, post: Node) -> None:
    page = desk(browser, post)
    number = unique_number()
    register_at_desk(page, td3(number, surname="OULD SIDI", given="MOHAMED"))
    page.fill("#f-remarks", "voyage en famille")
    page.wait_for_timeout(600)  # the draft is kept 300 ms after the last change
    stored = page.evaluate("window.localStorage.getItem('borderpost.desk.draft')")
    assert stored, "the draft must be kept"
    for clear in (number, "OULD", "SIDI", "famille"):
        assert clear not in stored, "the draft must never be stored in clear"
    page.reload()
    page.wait_for_load_state("networkidle")
    wait_until(page, "document.getElementById('f-document-number').value !== ''")
    assert page.input_value("#f-document-number") == number
    assert page.input_value("#f-remarks") == "voyage en famille"
    assert page.is_visible("#draft-note")
    page.click("#new-traveller")  # dropped on New traveller
    assert page.evaluate("window.localStorage.getItem('borderpost.desk.draft')") is None
    page.context.close()


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_days_are_typed_and_shown_day_first_in_an_en_us_browser(
    browser: Any, post: Node, lang: str
) -> None:
    """The desk's days are text in the page's format (dd/mm/yyyy), never the browser's date
    field (mm/dd/yyyy in en-US); the server reads what it shows and names a mistyped day in
    the officer's language, keeping what was typed."""
    gettext = gettext_for(lang)
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-US")
    page = context.new_page()
    page.goto(f"{post.url}/web/login")
    page.fill("#username", "awa")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_load_state("networkidle")
    page.select_option("#language-select", lang)
    page.click("#language-submit")
    page.wait_for_load_state("networkidle")
    page.goto(f"{post.url}/web/desk")
    try:
        for field in ("#f-document-expiry_date", "#f-traveller-date_of_birth"):
            assert page.get_attribute(field, "type") in (None, "text")
            assert page.get_attribute(field, "placeholder") == gettext("dd/mm/yyyy")
        number = unique_number()
        register_at_desk(page, td3(number, surname="DIALLO", given="KADIATOU"))
        assert page.input_value("#f-traveller-date_of_birth") == "01/06/1982"  # 1 June
        expiry = date.today() + timedelta(days=700)
        assert page.input_value("#f-document-expiry_date") == expiry.strftime("%d/%m/%Y")
        page.fill("#f-traveller-date_of_birth", "31/13/1982")
        page.click("#submit")  # check
        page.wait_for_selector("#desk-error:not([hidden])")
        expected = gettext("%(field)s: write the day as %(format)s.") % {
            "field": gettext("Date of birth"),
            "format": gettext("dd/mm/yyyy"),
        }
        assert page.inner_text("#desk-error") == expected
        slot = '[data-check-for="traveller.date_of_birth"]'
        assert page.inner_text(slot) == expected  # the MRZ's "check digit OK" is gone
        assert page.get_attribute("#f-traveller-date_of_birth", "aria-invalid") == "true"
        assert page.input_value("#f-traveller-date_of_birth") == "31/13/1982"  # kept
        shot(page, f"desk-day-refused-{lang}")
        page.fill("#f-traveller-date_of_birth", "02/06/1982")  # corrected by hand, 2 June
        page.click("#submit")
        page.wait_for_selector('#submit[data-state="save"]')
        if not page.is_checked('input[name="decision"][value="cleared"]'):
            page.check('input[name="decision"][value="cleared"]')
        page.click("#submit")
        page.wait_for_selector("#saved-banner:not([hidden])")
        (found,) = crossings_of(post, number)
        assert found["traveller"]["date_of_birth"] == "1982-06-02"
    finally:
        page.select_option("#language-select", "fr")
        page.click("#language-submit")
        page.wait_for_load_state("networkidle")
        context.close()
