"""Helpers of the browser tests (Playwright, headless Chromium, against real `borderpost serve`
processes): the Chromium to launch and where screenshots go, a running node with its accounts
(``Node``, ``add_accounts``, ``start``), logging in, the MRZ a keyboard-wedge reader types,
waiting without eval (the pages' CSP forbids it), the receipt's QR code, whether an element is
in view, and the known dataset and signed agreement of the national node. The fixtures built
on them (``playwright``, ``browser``, ``post``, ``served_national``) are in
tests/support/browser.py.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.receipts import load_or_create_node_key, verify_receipt
from tests.support.cluster import PASSWORD, mrz
from tests.support.factories import document_number, passport_lines
from tests.support.nodes import ROOT
from tests.support.servers import ServerProcess, add_account, cli, login_token, node_env

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
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


def launch(playwright: Any, *extra_args: str) -> Any:
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, *extra_args]
    )


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
        return login_token(self.url, username, PASSWORD)

    def api(self, username: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(username)}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def add_accounts(env: dict[str, str], accounts: Sequence[tuple[str, ...]]) -> None:
    """Accounts as (username, role) or (username, role, full name), password ``PASSWORD``."""
    for username, role, *full_name in accounts:
        name = full_name[0] if full_name else f"{username.title()} ({role})"
        add_account(env, username, role, password=PASSWORD, full_name=name)


@contextmanager
def served_post(
    folder: Path, accounts: Sequence[tuple[str, ...]], **settings: str
) -> Iterator[Node]:
    """A post on SQLite in ``folder``, migrated, with ``accounts``, served until the block
    ends: no sync, the watchlist reread every half second, and ``settings`` on top."""
    env = node_env(
        folder,
        node_code=POST,
        **{"sync_interval_seconds": "3600", "watchlist_refresh_seconds": "0.5", **settings},
    )
    cli(env, "db", "upgrade")
    add_accounts(env, accounts)
    server = start(env)
    try:
        yield Node(env, server)
    finally:
        server.stop()


def start(env: dict[str, str]) -> ServerProcess:
    server = ServerProcess(env).start()
    page = httpx.get(f"{server.url}/web/login")
    if page.status_code != 200:
        server.stop()
        pytest.fail("the web pages are not served: add web_routes() to registry/app.py")
    return server


# ---------------------------------------------------------------- helpers
def td3(number: str, *, surname: str = "CISSE", given: str = "OUMAR") -> list[str]:
    """The two lines of a valid passport (``mrz`` of tests/support/cluster.py), one per item."""
    return mrz(number, surname=surname, given=given).split("\n")


def expired_td3(number: str) -> list[str]:
    return passport_lines(
        number,
        surname="KEITA",
        given="FANTA",
        date_of_birth=date(1979, 2, 3),
        sex="F",
        expiry=date.today() - timedelta(days=30),
    )


def unique_number() -> str:
    return document_number("B")


def login(
    browser: Any,
    node: Node,
    username: str,
    *,
    password: str = PASSWORD,
    viewport: tuple[int, int] = (1366, 900),
    locale: str = "fr-FR",
) -> Any:
    """A fresh browser context (``viewport`` wide and high, the browser's ``locale``) logged in
    as ``username``; returns its page, whose ``csp_violations`` collects the Content Security
    Policy reports of its console."""
    width, height = viewport
    context = browser.new_context(viewport={"width": width, "height": height}, locale=locale)
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
    page.fill("#password", password)
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


VIEWPORTS = ((1366, 768), (1024, 768))


def in_view(page: Any, selector: str) -> bool:
    """Whether the whole element is inside the viewport (nothing to scroll to read it)."""
    return bool(
        page.evaluate(
            """(selector) => {
                const box = document.querySelector(selector).getBoundingClientRect();
                return box.height > 0 && box.top >= 0 && box.left >= 0 &&
                    box.bottom <= window.innerHeight && box.right <= window.innerWidth;
            }""",
            selector,
        )
    )


def register_at_desk(page: Any, lines: list[str]) -> None:
    type_mrz(page, lines)
    wait_until(page, "document.activeElement && document.activeElement.id === 'submit'")


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
