"""The desk in a real browser (Playwright, real server): a typed name that differs from the
MRZ name is shown as a warning, saving is refused until the officer ticks the confirmation
(message in French), then the crossing is saved with the warning stored."""

from __future__ import annotations

from typing import Any

from registry.web.i18n import gettext_for
from tests.support.pages import Node, login, register_at_desk, td3, unique_number, wait_until


def test_desk_asks_to_confirm_a_typed_name_that_differs_from_the_mrz(
    browser: Any, post: Node
) -> None:
    french = gettext_for("fr")
    page = login(browser, post, "awa")
    number = unique_number()
    register_at_desk(page, td3(number))
    assert page.input_value("#f-traveller-surname") == "CISSE"
    assert page.is_hidden("#name-mismatch-field")
    page.fill("#f-traveller-surname", "SMITH")
    page.click("#submit")  # Check & save: runs the checks
    page.wait_for_selector('#submit[data-state="save"]')
    assert page.is_visible("#name-mismatch-field")
    assert french("Typed name differs from the MRZ name") in page.inner_text("#check-summary")

    # a warning leaves no decision preselected: the officer chooses it
    assert not page.is_checked('input[name="decision"][value="cleared"]')
    page.check('input[name="decision"][value="cleared"]')
    page.click("#submit")  # save without the confirmation: refused, nothing saved
    wait_until(page, "!document.getElementById('desk-error').hidden")
    assert page.inner_text("#desk-error") == french(
        "The typed name differs from the name in the MRZ: check the document, then tick the "
        "confirmation to save."
    )
    assert page.evaluate("document.activeElement.id") == "f-name_mismatch_acknowledged"
    assert page.is_hidden("#saved")

    page.check("#f-name_mismatch_acknowledged")
    page.click("#submit")
    page.wait_for_selector("#saved:not([hidden])")
    assert "SMITH" in page.inner_text("#saved-summary")
    assert page.is_hidden("#name-mismatch-field")  # the desk is ready for the next traveller

    with post.api("sidi") as api:
        response = api.get(
            "/api/search/document", params={"issuing_state": "MLI", "number": number}
        )
    assert response.status_code == 200, response.text
    found = response.json()
    assert [c["traveller"]["surname"] for c in found] == ["SMITH"]
    assert "name_mismatch" in [check["code"] for check in found[0]["checks"]]
