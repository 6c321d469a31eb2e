"""The national node's pages in a real browser (Playwright, headless Chromium) against a real
`borderpost serve` on PostgreSQL with an agreement in force and a known dataset: the
watchlist import with its progress and report, the HQ charts against the dataset (and its
CSV export and open stays), the liaison's reconciliation and a discrepancy resolved, and the
liaison's days in an en-US browser. Outside CI a missing Chromium skips; under CI it fails.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from registry.web.i18n import gettext_for
from tests.support.pages import PASSWORD, Node, login, shot

pytestmark = [pytest.mark.browser]


def test_watchlist_import_shows_progress_and_report(
    browser: Any, served_national: Node, tmp_path: Path
) -> None:
    csv_file = tmp_path / "list.csv"
    header = (
        "external_id,kind,surname,given_names,date_of_birth,nationality,issuing_state,"
        "document_number,reason,action,source,valid_from,valid_to,photo"
    )
    rows = [
        f"W{n},document,,,,,MLI,X{n:06d},lost document,refer_secondary,interpol,,,"
        for n in range(40)
    ]
    rows.append("BAD,person,,,,,,,no name,refer_secondary,interpol,,,")
    csv_file.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    page = login(browser, served_national, "chief")  # imports belong at national
    page.goto(f"{served_national.url}/web/admin/watchlist")
    nav = page.locator("nav.menu a").evaluate_all("links => links.map(a => a.pathname)")
    assert "/web/admin/watchlist" in nav
    assert page.locator('#csv-format tr[data-column="action"] code').all_inner_texts() == [
        "action",
        "refer_secondary",
        "notify",
        "protect",
    ]
    page.set_input_files("#w-file", str(csv_file))
    page.click("#import-form button[type=submit]")
    page.wait_for_selector('#import-job[data-state="done"]', timeout=30_000)
    assert page.inner_text('#import-report dd[data-key="imported"]') == "40"
    assert page.inner_text('#import-report dd[data-key="rejected_count"]') == "1"
    # the rejection in the reader's language, not the service's English
    assert page.inner_text("#import-rejected li") == "42: " + gettext_for("fr")(
        "surname: a person entry needs a surname"
    )
    assert page.get_attribute("#import-progress", "value") == "41"
    shot(page, "admin-watchlist-import", full_page=True)
    page.context.close()


def bar(page: Any, chart: str, label: str, series: str) -> int:
    selector = f'svg#{chart} g.bar[data-label="{label}"][data-series="{series}"]'
    locator = page.locator(selector)
    value = int(locator.get_attribute("data-value"))
    assert locator.locator("text.bar-value").text_content() == str(value)
    return value


def test_hq_dashboard_charts_show_the_dataset(browser: Any, served_national: Node) -> None:
    page = login(browser, served_national, "analyst")
    response = page.goto(
        f"{served_national.url}/web/hq/dashboard?date_from=2026-10-05&date_to=2026-10-07"
    )
    assert response is not None and response.status == 200
    assert page.locator("#sync-banner").count() == 0  # national shows no post banner
    # days in the reader's format (French), never the browser's (en-US) mm/dd/yyyy
    assert page.input_value("#date_from") == "05/10/2026"
    assert page.input_value("#date_to") == "07/10/2026"
    gogui, kobeni = "chart-flows-MR-GOGUI", "chart-flows-MR-KOBENI"
    assert bar(page, gogui, "2026-10-05", "entries") == 2
    assert bar(page, gogui, "2026-10-05", "exits") == 1
    assert bar(page, gogui, "2026-10-06", "refused") == 1
    assert bar(page, gogui, "2026-10-06", "entries") == 0
    assert bar(page, gogui, "2026-10-06", "exits") == 1
    assert bar(page, kobeni, "2026-10-05", "entries") == 1
    assert bar(page, kobeni, "2026-10-07", "entries") == 1
    assert page.locator(f"svg#{gogui} g.bar").count() == 3 * 3  # 3 days x 3 series
    assert bar(page, "chart-nationality", "MLI", "entries") == 3
    assert bar(page, "chart-nationality", "MLI", "exits") == 1
    assert bar(page, "chart-nationality", "SEN", "exits") == 1
    assert bar(page, "chart-nationality", "GIN", "refused") == 1
    fr = gettext_for("fr")
    assert bar(page, "chart-sex", fr("Female"), "entries") == 2
    assert bar(page, "chart-sex", fr("Male"), "entries") == 2
    assert bar(page, "chart-age", "0-17", "entries") == 1  # born 2010
    assert bar(page, "chart-age", "60+", "exits") == 1  # born 1950
    shot(page, "hq-dashboard", full_page=True)
    with page.expect_download() as download:
        page.click('a[href^="/web/hq/export/flows.csv"]')
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.splitlines()[0] == "post,period_start,entries,exits,refused,net"
    assert "MR-GOGUI,2026-10-05,2,1,0,1" in text
    assert page.get_attribute("#open-stays", "href") == "/web/hq/stays?kind=open"
    page.goto(f"{served_national.url}/web/hq/stays?kind=open&as_of=2026-10-31")
    open_stays = int(page.inner_text("#stays-count"))
    assert open_stays == 4  # entries with no later movement on their document, refused aside
    assert page.locator("#stays tbody tr").count() == open_stays
    shot(page, "hq-stays-national", full_page=True)
    assert page.csp_violations == []  # type: ignore[attr-defined]
    page.context.close()


def test_liaison_reconciles_and_resolves_a_discrepancy(browser: Any, served_national: Node) -> None:
    page = login(browser, served_national, "link")
    assert page.url.endswith("/web/liaison")
    assert page.locator("#not-available").count() == 0
    page.fill("#l-since", "2026-10-05")
    page.fill("#l-until", "2026-10-08")
    page.click("#l-pair + button, form.filters button")
    page.wait_for_selector("#reconciliation")
    gogui = page.locator("#reconciliation tbody tr", has_text="MR-GOGUI")
    assert gogui.locator('td[data-outcome="exit_without_entry"]').inner_text() == "2"
    shot(page, "liaison-report", full_page=True)
    page.select_option("#c-status", "open")
    page.click("#case-filters button[type=submit]")
    before = page.locator("#cases tbody tr").count()
    assert before >= 2
    page.locator("#cases tbody tr a").first.click()
    detail = page.locator("#case-detail")
    detail.locator("textarea").fill("the partner post was closed that week")
    detail.locator("input[name=reasons][value=crossed_elsewhere]").check()
    detail.locator("#note-resolution").select_option("explained")
    detail.locator('form[method="post"] button[type="submit"]').click()
    page.wait_for_selector("#flash")
    assert page.locator("#case-detail [data-status=resolved]").count() == 1
    page.select_option("#c-status", "open")
    page.click("#case-filters button[type=submit]")
    assert page.locator("#cases tbody tr").count() == before - 1
    admin = login(browser, served_national, "chief")
    admin.goto(f"{served_national.url}/web/admin/agreements")
    assert gettext_for("fr")("In force") in admin.inner_text("main")
    shot(admin, "admin-agreements-national", full_page=True)
    admin.context.close()
    assert page.csp_violations == []  # type: ignore[attr-defined]
    page.context.close()


def test_liaison_days_are_typed_and_shown_day_first_in_an_en_us_browser(
    browser: Any, served_national: Node
) -> None:
    """The liaison page's days are text in the page's format (dd/mm/yyyy), not the
    browser's date field (mm/dd/yyyy in en-US); the server reads them, and a day that is
    not one is refused naming the field in the reader's language."""
    english = gettext_for("en")
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-US")
    page = context.new_page()
    page.goto(f"{served_national.url}/web/login")
    page.fill("#username", "link")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_load_state("networkidle")
    page.select_option("#language-select", "en")
    page.click("#language-submit")
    page.wait_for_load_state("networkidle")
    page.goto(f"{served_national.url}/web/liaison")
    try:
        week_ago = date.today() - timedelta(days=7)
        assert page.input_value("#l-since") == week_ago.strftime("%d/%m/%Y")
        for field in ("#l-since", "#l-until", "#c-from", "#c-to", "#h-dob"):
            assert page.get_attribute(field, "type") in (None, "text"), field
            assert page.get_attribute(field, "placeholder") == english("dd/mm/yyyy")
        page.fill("#l-since", "05/10/2026")
        page.fill("#l-until", "08/10/2026")
        page.click("#l-pair + button, form.filters button")
        page.wait_for_selector("#reconciliation")
        assert page.input_value("#l-since") == "05/10/2026"  # 5 October, as typed
        gogui = page.locator("#reconciliation tbody tr", has_text="MR-GOGUI")
        assert gogui.locator('td[data-outcome="exit_without_entry"]').inner_text() == "2"
        page.fill("#c-from", "01/10/2026")
        page.click("#case-filters button[type=submit]")
        page.wait_for_load_state("networkidle")
        assert page.input_value("#c-from") == "01/10/2026"
        shot(page, "liaison-days-en-US", full_page=True)
        page.fill("#c-to", "10/31/2026")  # the browser's habit: refused, the field named
        with page.expect_navigation() as navigation:
            page.click("#case-filters button[type=submit]")
        assert navigation.value.status == 422
        assert english("Field at fault: %(field)s") % {"field": english("To")} in page.inner_text(
            "main"
        )
        page.go_back()
        page.wait_for_load_state("networkidle")
        page.fill("#h-surname", "CISSE")
        page.select_option("#h-kind", "name_dob")
        page.fill("#h-dob", "31/13/1982")
        page.click("#hit-form button[type=submit]")
        assert page.inner_text("#hit-answer") == english(
            "%(field)s: write the day as %(format)s."
        ) % {"field": english("Date of birth"), "format": english("dd/mm/yyyy")}
        assert page.get_attribute("#h-dob", "aria-invalid") == "true"
    finally:
        page.select_option("#language-select", "fr")
        page.click("#language-submit")
        context.close()
