"""The web pages in a real browser (Playwright, headless Chromium) against real
`borderpost serve` processes: a post on SQLite and, for the HQ dashboard, a national node on
PostgreSQL. Accounts are created with the CLI, as a technician does.

Covered: the keyboard-only desk (MRZ typed as a keyboard-wedge reader would, photo upload,
check, save, receipt whose QR code is decoded and verified, keystrokes counted), a watchlist
hit seen at the desk and adjudicated by a supervisor, Arabic (right to left), role refusals
and CSRF, the HQ charts against a known dataset, and a screenshot of every main page under
tests/artifacts/screenshots/ on every run. Outside CI a missing Chromium skips; under CI it
fails.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.mrz import build_td3
from registry.receipts import load_or_create_node_key, verify_receipt
from registry.web.i18n import gettext_for
from tests.conftest import (
    ROOT,
    create_pg_database,
    drop_pg_database,
    missing,
    pg_reachable,
    pg_url,
)
from tests.servers import ServerProcess, cli, node_env

pytestmark = [pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
PASSWORD = "desk-password-123"
POST = "MR-GOGUI"
NATIONAL = "MR-NATIONAL"
SECRET = "pages-e2e-secret-" + "s" * 32
AGREEMENT = ROOT / "deploy" / "agreements" / "mr-ml-2026.toml"
TYPING_DELAY_MS = 5
POST_ACCOUNTS = (
    ("awa", "officer"),
    ("lina", "officer"),
    ("sidi", "supervisor"),
    ("fatou", "protection"),
    ("moussa", "hq_analyst"),
    ("liaison", "liaison"),
    ("boss", "admin"),
)


def run_async(coroutine: Any) -> Any:
    """Run a coroutine to completion in its own thread (Playwright's sync API keeps an
    event loop running in the test's thread)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


# ---------------------------------------------------------------- browser
@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    if not CHROMIUM.exists():
        missing(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as running:
        yield running


def launch(playwright: Any, *extra_args: str) -> Any:
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, *extra_args]
    )


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    chromium = launch(playwright)
    yield chromium
    chromium.close()


def shot(page: Any, name: str, **options: Any) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), **options)


# ---------------------------------------------------------------- servers
@dataclass
class Node:
    """A running `borderpost serve` with its accounts."""

    env: dict[str, str]
    server: ServerProcess

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def data_dir(self) -> Path:
        return Path(self.env["BORDERPOST_DATA_DIR"])

    def token(self, username: str) -> str:
        response = httpx.post(
            f"{self.url}/api/auth/login", json={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def api(self, username: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(username)}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def add_accounts(env: dict[str, str], accounts: tuple[tuple[str, str], ...]) -> None:
    for username, role in accounts:
        cli(
            {**env, "BORDERPOST_NEW_PASSWORD": PASSWORD},
            "officer",
            "add",
            "--username",
            username,
            "--full-name",
            f"{username.title()} ({role})",
            "--role",
            role,
        )


def start(env: dict[str, str]) -> ServerProcess:
    server = ServerProcess(env).start()
    page = httpx.get(f"{server.url}/web/login")
    if page.status_code != 200:
        server.stop()
        pytest.fail("the web pages are not served: add web_routes() to registry/app.py")
    return server


@pytest.fixture(scope="module")
def post(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    env = node_env(
        tmp_path_factory.mktemp("post"),
        node_code=POST,
        sync_interval_seconds="3600",
        watchlist_refresh_seconds="0.5",
    )
    cli(env, "db", "upgrade")
    add_accounts(env, POST_ACCOUNTS)
    server = start(env)
    try:
        yield Node(env, server)
    finally:
        server.stop()


# ---------------------------------------------------------------- helpers
def td3(number: str, *, surname: str = "CISSE", given: str = "OUMAR") -> list[str]:
    return list(
        build_td3(
            document_code="P",
            issuing_state="MLI",
            surname=surname,
            given_names=given,
            document_number=number,
            nationality="MLI",
            date_of_birth=date(1982, 6, 1),
            sex="M",
            expiry_date=date.today() + timedelta(days=700),
            optional_data="",
        )
    )


def unique_number() -> str:
    return "B" + uuid.uuid4().hex[:7].upper()


def login(browser: Any, node: Node, username: str) -> Any:
    """A fresh browser context logged in as ``username``; returns its page."""
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="fr-FR")
    page = context.new_page()
    page.csp_violations = []  # type: ignore[attr-defined]
    page.on(
        "console",
        lambda message: (
            page.csp_violations.append(message.text)  # type: ignore[attr-defined]
            if "Content Security Policy" in message.text
            else None
        ),
    )
    page.goto(f"{node.url}/web/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_load_state("networkidle")
    assert "/web/login" not in page.url, f"login of {username} failed"
    return page


def type_mrz(page: Any, lines: list[str]) -> None:
    """What a keyboard-wedge reader does: every line typed fast, each followed by Enter."""
    assert page.evaluate("document.activeElement.id") == "mrz"
    page.keyboard.type("\n".join(lines) + "\n", delay=TYPING_DELAY_MS)


def count_keystrokes(page: Any) -> None:
    page.evaluate(
        "window.__keys = 0;"
        "document.addEventListener('keydown', () => { window.__keys += 1; }, true);"
    )


def decode_qr(png: bytes) -> str:
    import zxingcpp
    from PIL import Image

    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert found, "no QR code found in the receipt screenshot"
    return str(found[0].text)


def receipt_claims(node: Node, payload: str) -> Any:
    key = load_or_create_node_key(node.data_dir / "keys" / "node_ed25519.pem")
    return verify_receipt(payload, {POST: key.public_key()})


def wait_until(page: Any, expression: str, timeout_ms: int = 30_000) -> None:
    """Poll a JavaScript expression from the test side (Playwright's wait_for_function
    evaluates strings with eval, which the pages' CSP rightly forbids)."""
    for _ in range(timeout_ms // 50):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"still false after {timeout_ms} ms: {expression}")


def register_at_desk(page: Any, lines: list[str]) -> None:
    type_mrz(page, lines)
    wait_until(page, "document.activeElement && document.activeElement.id === 'submit'")


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


def test_watchlist_import_shows_progress_and_report(
    browser: Any, national: Node, tmp_path: Path
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
    page = login(browser, national, "chief")  # imports belong at national
    page.goto(f"{national.url}/web/admin/watchlist")
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


# ---------------------------------------------------------------- HQ on national
DAY = date(2026, 10, 5)
# (post, direction, decision, day offset, hour, nationality, sex, birth year)
DATASET = [
    (POST, "entry", "cleared", 0, 8, "MLI", "M", 1980),
    (POST, "entry", "cleared", 0, 9, "MLI", "F", 2010),
    (POST, "exit", "cleared", 0, 10, "SEN", "F", 1950),
    (POST, "entry", "refused", 1, 11, "GIN", "M", 1990),
    (POST, "exit", "cleared", 1, 12, "MLI", "M", 1985),
    ("MR-KOBENI", "entry", "cleared", 0, 7, "MLI", "M", 1999),
    ("MR-KOBENI", "entry", "cleared", 2, 7, "SEN", "F", 1970),
]


async def insert_dataset(url: str) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from registry.models import Crossing, Officer, TravelDocument, Traveller
    from registry.names import name_key
    from registry.outbox import insert_rows

    engine = create_async_engine(url)
    try:
        async with AsyncSession(engine) as session, session.begin():
            desk = Officer(
                username="desk.dataset",
                full_name="Dataset",
                role="officer",
                home_post=POST,
                password_hash="x",
            )
            await insert_rows(session, desk)
            for n, (post_code, direction, decision, offset, hour, nat, sex, year) in enumerate(
                DATASET
            ):
                person = Traveller(
                    origin=post_code,
                    surname=f"PERSON{n}",
                    given_names="TEST",
                    name_key=name_key(f"PERSON{n}", "TEST"),
                    date_of_birth=date(year, 1, 1),
                    sex=sex,
                    nationality=nat,
                )
                document = TravelDocument(
                    origin=post_code,
                    traveller_id=person.id,
                    issuing_state=nat,
                    document_type="P",
                    number=f"D{n:07d}",
                    number_norm=f"D{n:07d}",
                )
                when = datetime.combine(DAY + timedelta(days=offset), datetime.min.time())
                crossing = Crossing(
                    origin=post_code,
                    post=post_code,
                    direction=direction,
                    occurred_at=when.replace(hour=hour, tzinfo=UTC),
                    officer_id=desk.id,
                    traveller_id=person.id,
                    document_id=document.id,
                    mode="foot",
                    decision=decision,
                )
                await insert_rows(session, person, document, crossing)
    finally:
        await engine.dispose()


def write_agreement(root: Path, national_key: Any) -> tuple[Path, Path]:
    """The sample agreement, re-keyed for this national node and a made-up partner (whose
    node is never reached), signed by both parties; plus this node's own blinding key."""
    import tomllib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from registry.receipts import public_key_to_text
    from sync.exchange.pseudonyms import write_blinding_key
    from sync.exchange.signing import sign_agreement

    key_file = root / "agreement.key"  # this node's own blinding key (never shared)
    write_blinding_key(key_file)
    partner_key = Ed25519PrivateKey.generate()
    keys = {NATIONAL: national_key, "ML-NATIONAL": partner_key}
    text = AGREEMENT.read_text(encoding="utf-8")
    for party in tomllib.loads(text)["parties"]:
        key = keys[party["node"]]
        text = text.replace(party["public_key"], public_key_to_text(key.public_key()))
        text = text.replace(party["url"], "http://127.0.0.1:9")
    for node, key in keys.items():
        text = sign_agreement(text, node, key)
    agreement = root / "agreement.toml"
    agreement.write_text(text, encoding="utf-8")
    return agreement, key_file


@pytest.fixture(scope="module")
def national(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    if not pg_reachable():
        missing("PostgreSQL is not reachable at 127.0.0.1:5432")
    database = f"bp_pages_{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("national")
    run_async(create_pg_database(database))
    national_key = load_or_create_node_key(root / "data" / "keys" / "node_ed25519.pem")
    agreement, key_file = write_agreement(root, national_key)
    env = node_env(
        root / "data",
        role="national",
        node_code=NATIONAL,
        database_url=pg_url(database),
        secret_key=SECRET,
        timezone="Africa/Nouakchott",
        agreement_file=str(agreement),
        agreement_key_file=str(key_file),
        sync_interval_seconds="3600",
        agreement_development_urls="true",  # its made-up partner is http://127.0.0.1:9
    )
    server = None
    try:
        cli(env, "db", "upgrade")
        add_accounts(env, (("analyst", "hq_analyst"), ("chief", "admin"), ("link", "liaison")))
        run_async(insert_dataset(pg_url(database)))
        server = start(env)
        yield Node(env, server)
    finally:
        if server is not None:
            server.stop()
        run_async(drop_pg_database(database))


def bar(page: Any, chart: str, label: str, series: str) -> int:
    selector = f'svg#{chart} g.bar[data-label="{label}"][data-series="{series}"]'
    locator = page.locator(selector)
    value = int(locator.get_attribute("data-value"))
    assert locator.locator("text.bar-value").text_content() == str(value)
    return value


def test_hq_dashboard_charts_show_the_dataset(browser: Any, national: Node) -> None:
    page = login(browser, national, "analyst")
    response = page.goto(f"{national.url}/web/hq/dashboard?date_from=2026-10-05&date_to=2026-10-07")
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
    page.goto(f"{national.url}/web/hq/stays?kind=open&as_of=2026-10-31")
    open_stays = int(page.inner_text("#stays-count"))
    assert open_stays == 4  # entries with no later movement on their document, refused aside
    assert page.locator("#stays tbody tr").count() == open_stays
    shot(page, "hq-stays-national", full_page=True)
    assert page.csp_violations == []  # type: ignore[attr-defined]
    page.context.close()


def test_liaison_reconciles_and_resolves_a_discrepancy(browser: Any, national: Node) -> None:
    page = login(browser, national, "link")
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
    admin = login(browser, national, "chief")
    admin.goto(f"{national.url}/web/admin/agreements")
    assert gettext_for("fr")("In force") in admin.inner_text("main")
    shot(admin, "admin-agreements-national", full_page=True)
    admin.context.close()
    assert page.csp_violations == []  # type: ignore[attr-defined]
    page.context.close()


def test_liaison_days_are_typed_and_shown_day_first_in_an_en_us_browser(
    browser: Any, national: Node
) -> None:
    """The liaison page's days are text in the page's format (dd/mm/yyyy), not the
    browser's date field (mm/dd/yyyy in en-US); the server reads them, and a day that is
    not one is refused naming the field in the reader's language."""
    english = gettext_for("en")
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-US")
    page = context.new_page()
    page.goto(f"{national.url}/web/login")
    page.fill("#username", "link")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_load_state("networkidle")
    page.select_option("#language-select", "en")
    page.click("#language-submit")
    page.wait_for_load_state("networkidle")
    page.goto(f"{national.url}/web/liaison")
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
