"""Every word a person sees is in their language (issue 16): Chromium renders every page of
every role, the desk's check of a damaged and expired passport, and the errors (403, 404,
413, 422, validation errors of query strings and forms) in French, Arabic and English, and
the test fails on any visible text that is neither a message of that language's catalogue
(``registry/locales/<lang>/LC_MESSAGES/messages.po``; English: its source strings) nor data
(names, numbers, codes, dates, the node's code). The receipt slip is left out: it is the
traveller's, printed in French, English and Arabic at once.

How: the visible text nodes of the page (and the placeholders of its fields) are collected
in the browser; from each, the data this test created is cut out, then the catalogue's
messages (placeholders such as ``%(days)s`` match anything), then numbers, dates and codes;
whatever still holds a word is reported with its page.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

from registry.web.i18n import LOCALES_DIR
from tests.support import pages
from tests.support.pages import Node, expired_td3, served_post, shot, td3, wait_until

pytestmark = [pytest.mark.browser]

LANGUAGES = ("fr", "ar", "en")
ACCOUNTS = (
    ("awa", "officer", "Awa Diallo"),
    ("sidi", "supervisor", "Sidi Kane"),
    ("fatou", "protection", "Fatou Sow"),
    ("moussa", "hq_analyst", "Moussa Ba"),
    ("liaison", "liaison", "Lalla Mint Ahmed"),
    ("boss", "admin", "Bakary Camara"),
)
LISTED_NUMBER = "L" + uuid.uuid4().hex[:7].upper()
# What the pages show as data, not as words of a language.
DATA = [
    *(full for _u, _r, full in ACCOUNTS),
    *(username for username, _r, _f in ACCOUNTS),
    "Borderpost",
    "Africa/Nouakchott",
    "Français",
    "العربية",
    "English",
    "CISSE OUMAR",
    "KEITA FANTA",
    "TRAORE ISSA",
    "reported stolen by the issuing state",
    "interpol",
    "CSV",
    "80 mm",
    "A4",
]
VISIBLE_TEXT = """() => {
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const element = node.parentElement;
    const text = node.textContent.replace(/\\s+/g, " ").trim();
    if (!text || !element || ["SCRIPT", "STYLE", "NOSCRIPT"].includes(element.tagName)) continue;
    if (element.closest("[hidden], template, [translate=no]")) continue;
    const style = window.getComputedStyle(element);
    if (style.display === "none" || style.visibility === "hidden") continue;
    if (!element.getClientRects().length) continue;
    texts.push(text);
  }
  document.querySelectorAll("input[placeholder], textarea[placeholder]").forEach((field) => {
    if (field.getClientRects().length) texts.push(field.placeholder.trim());
  });
  return texts;
}"""
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]")
DATA_PATTERNS = [
    re.compile(r"\b\d{4}-\d{2}-\d{2}(T[\d:.+-]+)?\b"),  # ISO days and times
    re.compile(r"\b[0-9a-f]{8}(-[0-9a-f]{4}){0,4}(-[0-9a-f]{1,12})?\b"),  # ids
    re.compile(r"\b[A-Z]{2}-[A-Z0-9-]{2,}\b"),  # node codes (MR-GOGUI)
    re.compile(r"\b[A-Z]{1,2}[0-9A-Z]{6,9}\b"),  # document numbers
    re.compile(r"\b[A-Z]{3}\b"),  # ICAO country codes
    re.compile(r"[\d.,:/%+\-]+"),  # numbers, times, days
]
WORD = re.compile(r"[^\W\d_]{2,}")


@cache
def catalogue(lang: str) -> re.Pattern[str]:
    """One pattern matching any message of the language's catalogue, longest first."""
    with open(LOCALES_DIR / lang / "LC_MESSAGES" / "messages.po", "rb") as file:
        messages = read_po(file)
    texts: set[str] = set()
    for message in messages:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        chosen = [s for s in strings if s] if lang != "en" else [*ids, *[s for s in strings if s]]
        texts.update(" ".join(text.split()) for text in chosen)
    alternatives = []
    for text in sorted(texts, key=len, reverse=True):
        parts = [re.escape(part) for part in PLACEHOLDER.split(text)]
        if len(parts) > 1 and not parts[-1]:  # a value that ends the message runs to its end
            parts[-2:] = [parts[-2] + ".+"]
        alternatives.append(".+?".join(parts))
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


def _left_over(text: str, pattern: re.Pattern[str], data: list[str], data_first: bool) -> str:
    rest = text
    if not data_first:
        rest = pattern.sub(" ", rest)
    for value in sorted(data, key=len, reverse=True):
        # Whole values only: "A4" (a paper size) must not eat the end of a number like L140CEA4.
        rest = re.sub(r"(?<!\w)" + re.escape(value) + r"(?!\w)", "·", rest)
    if data_first:
        rest = pattern.sub(" ", rest)
    for data_pattern in DATA_PATTERNS:
        rest = data_pattern.sub(" ", rest)
    return rest


def strange_words(lang: str, texts: list[str], data: list[str]) -> list[str]:
    """The texts that still hold a word once the catalogue's messages and the data are out
    (data inside a message, such as a name in "Actions of %(name)s", is cut out first; a
    message holding a data word, such as "CSV file", is matched first: either order will do)."""
    pattern = catalogue(lang)
    found = []
    for text in texts:
        rests = [_left_over(text, pattern, data, first) for first in (True, False)]
        if all(WORD.search(rest) for rest in rests):
            found.append(f"{text!r} (left: {min(rests, key=len).strip()!r})")
    return found


# ---------------------------------------------------------------- a post with everything
@pytest.fixture(scope="module")
def post(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with served_post(tmp_path_factory.mktemp("languages"), ACCOUNTS) as node:
        yield node


@pytest.fixture(scope="module")
def records(post: Node) -> dict[str, str]:
    """A crossing, a watchlist hit waiting for adjudication, and a referral."""
    with post.api("sidi") as api:
        listed = api.post(
            "/api/watchlist/entries",
            json={
                "kind": "document",
                "reason": "reported stolen by the issuing state",
                "action": "refer_secondary",
                "issuing_state": "MLI",
                "document_number": LISTED_NUMBER,
                "source": "interpol",
            },
        )
        assert listed.status_code == 201, listed.text
    with post.api("awa") as api:
        first = api.post(
            "/api/crossings",
            json={"direction": "entry", "mrz": "\n".join(td3("C" + uuid.uuid4().hex[:7].upper()))},
        )
        assert first.status_code == 201, first.text
        hit = api.post(
            "/api/crossings",
            json={
                "direction": "entry",
                "decision": "referred",
                "mrz": "\n".join(td3(LISTED_NUMBER, surname="TRAORE", given="ISSA")),
            },
        )
        assert hit.status_code == 201, hit.text
        referral = api.post(
            f"/api/crossings/{first.json()['id']}/referrals",
            json={"category": "unaccompanied_minor", "note": "alone at the post"},
        )
    return {
        "crossing": first.json()["id"],
        "traveller": first.json()["traveller_id"],
        "referral": referral.json().get("id", "") if referral.status_code == 201 else "",
    }


def login(browser: Any, node: Node, username: str, lang: str) -> Any:
    page = pages.login(browser, node, username, viewport=(1366, 768), locale="en-US")
    token = page.get_attribute('meta[name="csrf-token"]', "content")
    answer = page.request.post(
        f"{node.url}/web/language", form={"language": lang, "csrf_token": token}
    )
    assert answer.ok, answer.status
    page.goto(f"{node.url}/web/account")
    assert page.get_attribute("html", "lang") == lang, (username, answer.url, answer.status)
    return page


def pages_of(records: dict[str, str]) -> dict[str, list[str]]:
    return {
        "awa": [
            "/web/desk",
            "/web/search",
            "/web/search?name=cisse",
            f"/web/travellers/{records['traveller']}",
            "/web/stays",
            "/web/stays?kind=open",
            "/web/account",
        ],
        "sidi": ["/web/alerts", "/web/officers/activity", "/web/officers/activity?username=awa"],
        "fatou": [
            "/web/referrals",
            "/web/alerts",
            *([f"/web/referrals/{records['referral']}"] if records["referral"] else []),
        ],
        "moussa": [
            "/web/hq/dashboard",
            "/web/hq/search?name=cisse",
            "/web/hq/stays",
            f"/web/hq/travellers/{records['traveller']}",
        ],
        "liaison": ["/web/liaison"],
        "boss": [
            "/web/admin/officers",
            "/web/admin/posts",
            "/web/admin/agreements",
            "/web/admin/sync",
        ],
    }


# (account, path, status) of the errors a person can meet on a page
ERRORS = (
    ("awa", "/web/hq/dashboard", 403),
    ("awa", "/web/admin/officers", 403),
    ("boss", "/web/admin/watchlist", 403),  # imports belong at national
    ("moussa", "/web/search", 403),
    ("awa", "/web/no-such-page", 404),
    ("awa", f"/web/travellers/{uuid.uuid4()}", 404),
    ("awa", "/web/travellers/not-an-id", 404),
    ("awa", "/web/search?date_of_birth=31/02/1990&name=cisse", 422),
    ("awa", "/web/stays?offset=-1", 400),
    ("awa", "/web/stays?kind=nonsense", 400),
    ("moussa", "/web/hq/search?date_of_birth=yesterday&name=cisse", 422),
    ("moussa", "/web/hq/stays?offset=99999999999", 400),
    ("moussa", "/web/hq/dashboard?date_from=2026-10-10&date_to=2026-10-01", 422),
    ("moussa", "/web/hq/export/nothing.csv", 404),
)


def check_page(page: Any, lang: str, where: str, data: list[str], problems: list[str]) -> None:
    texts = page.evaluate(VISIBLE_TEXT)
    assert texts, where
    problems.extend(f"{lang} {where}: {text}" for text in strange_words(lang, texts, data))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_page_speaks_the_reader_language(
    browser: Any, post: Node, records: dict[str, str], lang: str
) -> None:
    problems: list[str] = []
    anonymous = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-US")
    login_page = anonymous.new_page()
    login_page.goto(f"{post.url}/web/login")
    login_page.select_option("#language-select", lang) if login_page.locator(
        "#language-select"
    ).count() else None
    anonymous.close()
    for username, paths in pages_of(records).items():
        page = login(browser, post, username, lang)
        for path in paths:
            response = page.goto(f"{post.url}{path}")
            assert response is not None and response.status == 200, (lang, path)
            assert page.get_attribute("html", "lang") == lang
            check_page(page, lang, path, DATA, problems)
            name = path.strip("/").split("?")[0].replace("web/", "").replace("/", "-")[:40]
            shot(page, f"lang-{lang}-{username}-{name}")
        page.context.close()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_error_speaks_the_reader_language(
    browser: Any, post: Node, records: dict[str, str], lang: str
) -> None:
    problems: list[str] = []
    sessions: dict[str, Any] = {}
    for username, path, status in ERRORS:
        if username not in sessions:
            sessions[username] = login(browser, post, username, lang)
        page = sessions[username]
        response = page.goto(f"{post.url}{path}")
        assert response is not None and response.status == status, (lang, path, response.status)
        assert page.get_attribute("html", "lang") == lang, path
        check_page(page, lang, f"{status} {path}", DATA, problems)
    page = sessions["awa"]
    shot(page, f"lang-{lang}-error-404")
    # 413: a portrait larger than the node accepts, posted by the desk's form
    page.goto(f"{post.url}/web/desk")
    token = page.get_attribute('meta[name="csrf-token"]', "content")
    too_large = page.request.post(
        f"{post.url}/web/desk/photo",
        multipart={
            "photo": {"name": "big.jpg", "mimeType": "image/jpeg", "buffer": b"\xff" * (11 * 2**20)}
        },
        headers={"X-CSRF-Token": token or "", "Accept": "text/html", "Origin": post.url},
    )
    assert too_large.status == 413
    page.set_content(too_large.text())
    check_page(page, lang, "413 /web/desk/photo", DATA, problems)
    shot(page, f"lang-{lang}-error-413")
    # a form refused with a validation error keeps the form and says why, in the language
    admin = login(browser, post, "boss", lang)
    admin.goto(f"{post.url}/web/admin/officers")
    refused = admin.request.post(  # the browser's own pattern check bypassed, as a script can
        f"{post.url}/web/admin/officers",
        form={
            "csrf_token": admin.get_attribute('meta[name="csrf-token"]', "content") or "",
            "username": "Bad Name!",
            "full_name": "Someone",
            "role": "officer",
            "language": "fr",
            "password": "a-long-enough-password",
        },
        headers={"Origin": post.url},
    )
    assert refused.status == 422, refused.status
    admin.set_content(refused.text())
    assert admin.input_value("#n-full_name") == "Someone"  # the form keeps its data
    check_page(admin, lang, "admin officers form error", [*DATA, "Bad Name!", "Someone"], problems)
    shot(admin, f"lang-{lang}-form-error")
    for session in [*sessions.values(), admin]:
        session.context.close()
    assert not problems, "\n".join(problems)


def damaged_td3(number: str) -> list[str]:
    """An expired passport whose composite check digit is wrong."""
    lines = expired_td3(number)
    last = lines[1][-1]
    lines[1] = lines[1][:-1] + ("0" if last != "0" else "1")
    return lines


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_desk_check_speaks_the_reader_language(
    browser: Any, post: Node, records: dict[str, str], lang: str
) -> None:
    page = login(browser, post, "awa", lang)
    page.goto(f"{post.url}/web/desk")
    page.focus("#mrz")
    page.keyboard.type("\n".join(damaged_td3("K" + uuid.uuid4().hex[:7].upper())) + "\n")
    wait_until(page, "document.activeElement && document.activeElement.id === 'submit'")
    page.keyboard.press("Enter")
    page.wait_for_selector('#submit[data-state="save"]')
    problems: list[str] = []
    check_page(page, lang, "desk check", DATA, problems)
    shot(page, f"lang-{lang}-desk-check")
    page.context.close()
    assert not problems, "\n".join(problems)


def test_the_catalogue_check_finds_english_on_a_french_page() -> None:
    """The check itself: an English sentence on a French page is found, a French one is not."""
    assert strange_words("fr", ["Request Entity Too Large"], [])
    assert strange_words("fr", ["The composite check digit is '2' but the data gives 9."], [])
    assert not strange_words("fr", ["Document expiré"], [])
    assert strange_words("ar", ["HIGH"], [])
    assert not strange_words("en", ["Document expired"], [])
    assert not strange_words("fr", ["MR-GOGUI · MRT · 12/10/2026 14:05"], [])
    assert Path(LOCALES_DIR / "ar" / "LC_MESSAGES" / "messages.po").exists()


def refused_photo_files(root: Path) -> tuple[Path, Path]:
    """A file that is not a photo, and a photo of a grey wall (no face: the gate refuses)."""
    from PIL import Image

    not_a_photo = root / "notes.jpg"
    not_a_photo.write_bytes(b"these are notes, not a picture\n" * 20)
    wall = root / "wall.jpg"
    Image.new("RGB", (640, 480), (128, 128, 128)).save(wall, "JPEG")
    return not_a_photo, wall


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_desk_photo_refusals_speak_the_reader_language(
    browser: Any, post: Node, records: dict[str, str], lang: str, tmp_path: Path
) -> None:
    """A file that is no photo, a photo the gate refuses, the save refused for it, then the
    save with the officer's reason: every message in the reader's language."""
    from registry.web.i18n import gettext_for

    gettext = gettext_for(lang)
    not_a_photo, wall = refused_photo_files(tmp_path)
    reason = "masque médical"
    data = [*DATA, reason]
    problems: list[str] = []
    page = login(browser, post, "awa", lang)
    page.goto(f"{post.url}/web/desk")
    page.focus("#mrz")
    page.keyboard.type("\n".join(td3("P" + uuid.uuid4().hex[:7].upper())) + "\n")
    wait_until(page, "document.activeElement && document.activeElement.id === 'submit'")
    page.set_input_files("#photo-file", str(not_a_photo))
    page.wait_for_selector("#photo-quality .refused", timeout=60_000)
    assert gettext("This file is not a photo.") in page.inner_text("#photo-quality")
    check_page(page, lang, "desk photo not a photo", data, problems)
    page.set_input_files("#photo-file", str(wall))
    wait_until(
        page,
        "!!document.querySelector('#photo-quality .refused') && "
        "document.querySelectorAll('#photo-quality li').length > 0",
        60_000,
    )
    check_page(page, lang, "desk photo refused", data, problems)
    page.click("#submit")  # the check
    page.wait_for_selector('#submit[data-state="save"]')
    page.check('input[name="decision"][value="cleared"]')
    page.click("#submit")  # the save, refused for the photo
    page.wait_for_selector("#desk-error:not([hidden])")
    wait_until(
        page, "document.getElementById('desk-error').textContent !== '" + gettext("Saving…") + "'"
    )
    assert page.inner_text("#desk-error") == gettext(
        "Photo refused: retake it, or give the reason for accepting it"
    )
    assert page.locator('[data-check-for="photo"] span').count() == 1  # said once
    check_page(page, lang, "desk save refused for the photo", data, problems)
    shot(page, f"lang-{lang}-desk-photo-refused-at-save", full_page=True)
    page.fill("#f-photo_quality_override", reason)
    page.click("#submit")  # the reason changes nothing to check: the save goes through
    page.wait_for_selector("#saved:not([hidden])")
    check_page(page, lang, "desk saved with the officer's reason", data, problems)
    shot(page, f"lang-{lang}-desk-photo-override-saved")
    page.context.close()
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- national-only pages
NATIONAL_ACCOUNTS = (("analyst", "hq_analyst"), ("chief", "admin"), ("link", "liaison"))
IMPORT_HEADER = (
    "external_id,kind,surname,given_names,date_of_birth,nationality,issuing_state,"
    "document_number,reason,action,source,valid_from,valid_to,photo"
)
NATIONAL_DATA = [
    *DATA,
    *(f"{username.title()} ({role})" for username, role in NATIONAL_ACCOUNTS),
    *(username for username, _role in NATIONAL_ACCOUNTS),
    "http://127.0.0.1:9",
    "list.csv",
]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_national_pages_speak_the_reader_language(
    browser: Any, served_national: Node, lang: str, tmp_path: Path
) -> None:
    """The pages only national has: the data-sharing agreement and its terms (admin and
    liaison), the watchlist import with its CSV format, and an import's error report."""
    problems: list[str] = []
    admin = login(browser, served_national, "chief", lang)
    for path in ("/web/admin/agreements", "/web/admin/watchlist"):
        response = admin.goto(f"{served_national.url}{path}")
        assert response is not None and response.status == 200, (lang, path)
        check_page(admin, lang, path, NATIONAL_DATA, problems)
        shot(admin, f"lang-{lang}-national-{path.rsplit('/', 1)[1]}", full_page=True)
    # an import's report with its rejected rows, one per kind of mistake
    mark = uuid.uuid4().hex[:6].upper()
    rows = [
        f"{mark}1,document,,,,,MLI,X{mark}1,lost document,refer_secondary,interpol,,,",
        f"{mark}2,person,,,,,,,no name,refer_secondary,interpol,,,",
        f"{mark}3,document,,,,,MLI,X{mark}3,lost document,arrest,interpol,,,",
        f"{mark}4,person,TOURE,ALI,1990-13-45,MLI,,,wanted,notify,interpol,,,",
        f"{mark}5,vehicle,,,,,,,a lorry,notify,interpol,,,",
    ]
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("\n".join([IMPORT_HEADER, *rows]) + "\n", encoding="utf-8")
    admin.set_input_files("#w-file", str(csv_file))
    admin.click("#import-form button[type=submit]")
    admin.wait_for_selector('#import-job[data-state="done"]', timeout=30_000)
    assert admin.inner_text('#import-report dd[data-key="rejected_count"]') == "4"
    data = [*NATIONAL_DATA, "TOURE", "ALI", "arrest", "vehicle"]
    check_page(admin, lang, "watchlist import report", data, problems)
    shot(admin, f"lang-{lang}-national-import-report", full_page=True)
    admin.context.close()
    link = login(browser, served_national, "link", lang)
    link.goto(f"{served_national.url}/web/liaison")
    check_page(link, lang, "/web/liaison (agreement in force)", NATIONAL_DATA, problems)
    shot(link, f"lang-{lang}-national-liaison", full_page=True)
    link.context.close()
    assert not problems, "\n".join(problems)


def test_every_shareable_field_has_its_name_on_the_agreement_page() -> None:
    """The agreement page names each record type and field in words, for every field an
    agreement may share (a new column needs its name before it can show)."""
    from registry.web.messages import AGREEMENT_FIELDS, AGREEMENT_RECORDS
    from sync.exchange.model import RECORD_TYPES

    assert set(RECORD_TYPES) <= set(AGREEMENT_RECORDS)
    unnamed = {f"{kind}.{name}" for kind, names in RECORD_TYPES.items() for name in names}
    assert not {n for n in unnamed if n.split(".", 1)[1] not in AGREEMENT_FIELDS}
