"""The language of the web pages, over HTTP on SQLite and PostgreSQL: Arabic pages are right
to left and the setting is stored on the account (and travels to national); the fr, ar and en
catalogues are complete and compiled.
"""

from __future__ import annotations

from sqlalchemy import func, select

from registry.models import Officer, OutboxEntry
from registry.web.i18n import gettext_for
from tests.support.web_client import Web


async def _officer_outbox(web: Web, username: str) -> tuple[Officer, int]:
    async with web.db.session() as session:
        stored = await session.scalar(select(Officer).where(Officer.username == username))
        assert stored is not None
        count = await session.scalar(
            select(func.count())
            .select_from(OutboxEntry)
            .where(OutboxEntry.record_type == "officer", OutboxEntry.record_id == str(stored.id))
        )
    return stored, int(count or 0)


async def test_arabic_pages_are_right_to_left(web: Web) -> None:
    await web.login("officer")
    _, travelled = await _officer_outbox(web, "officer")
    try:
        response = await web.client.post(
            "/web/language", data={"language": "ar", "csrf_token": web.csrf}
        )
        assert response.status_code == 303
        page = (await web.client.get("/web/desk")).text
        assert '<html lang="ar" dir="rtl">' in page
        assert gettext_for("ar")("Registration desk") in page
        stored, now_travelling = await _officer_outbox(web, "officer")
        assert stored.language == "ar"
        assert now_travelling == travelled + 1  # the account change travels to national
        assert await web.audit_count(action="set_language") == 1
    finally:
        await web.client.post("/web/language", data={"language": "fr", "csrf_token": web.csrf})


# ---------------------------------------------------------------- translations
def test_catalogs_are_complete_and_compiled() -> None:
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    from registry.web.i18n import LOCALES_DIR

    template = read_po((LOCALES_DIR / "messages.pot").open("rb"))
    wanted = {message.id for message in template if message.id}
    for lang in ("fr", "ar", "en"):
        folder = LOCALES_DIR / lang / "LC_MESSAGES"
        source = read_po((folder / "messages.po").open("rb"), locale=lang)
        compiled = read_mo((folder / "messages.mo").open("rb"))
        ids = {message.id for message in source if message.id}
        assert ids == wanted, f"{lang}: run pybabel update (registry/locales/babel.cfg)"
        for message in source:
            if not message.id:
                continue
            if lang != "en":
                assert message.string, f"{lang}: {message.id!r} is not translated"
            assert (compiled.get(message.id).string if compiled.get(message.id) else "") == (
                message.string
            ), f"{lang}: run pybabel compile (registry/locales/babel.cfg)"
