"""Languages of the web pages: French (default), Arabic (right to left) and English.

Catalogs are babel ``.po`` files compiled to ``.mo`` under ``registry/locales`` (both are
committed, so a clean clone needs no build step). Each language gets its own Jinja
environment with the ``jinja2.ext.i18n`` extension and that language's translations
installed, built once and cached. Python code marks strings with ``N_`` (no-op, for
extraction) and translates them at render time with ``gettext_for(lang)``.

Extraction, update and compilation: see ``registry/locales/babel.cfg``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

LANGUAGES: tuple[str, ...] = ("fr", "ar", "en")
DEFAULT_LANGUAGE = "fr"
RIGHT_TO_LEFT = frozenset({"ar"})
LANGUAGE_NAMES = {"fr": "Français", "ar": "العربية", "en": "English"}
PACKAGE = Path(__file__).resolve().parent.parent
LOCALES_DIR = PACKAGE / "locales"
TEMPLATES_DIR = PACKAGE / "templates"
DOMAIN = "messages"
# How a day is written for each language, never the browser's mm/dd/yyyy: day/month/year
# with Western digits (as written in Mauritania and Mali; English as in en-GB).
DAY_FORMATS = {"fr": "%d/%m/%Y", "ar": "%d/%m/%Y", "en": "%d/%m/%Y"}


def N_(message: str) -> str:  # noqa: N802 - the conventional gettext marker name
    """Mark a string for extraction; it is translated later, at render time."""
    return message


def format_day(lang: str, value: date | datetime | str | None) -> str:
    """A day in the reader's format; ``value`` is a date, or ISO text (a local time keeps
    its hour and minute). Anything else is shown as it came."""
    if value is None or value == "":
        return ""
    moment: date | datetime
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        except ValueError:
            return value
    else:
        moment = value
    text = moment.strftime(DAY_FORMATS.get(lang, DAY_FORMATS[DEFAULT_LANGUAGE]))
    if isinstance(moment, datetime):
        text += moment.strftime(" %H:%M")
    return text


def local_minute(value: str | None, zone: Any) -> str:
    """A stored UTC time (ISO text) as the post's local time to the minute, ISO
    (``2026-12-05T10:30``), for the ``day`` filter to show in the reader's format."""
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def parse_day(text: str | None) -> date | None:
    """A day typed in a page's form: day/month/year as the pages write it (``05/12/2026``,
    also with ``-`` or ``.``), or ISO ``2026-12-05`` as a browser's date field sends it;
    empty is None. Raises ValueError for anything else."""
    value = (text or "").strip()
    if not value:
        return None
    if len(value) == 10 and value[4] == "-" and value[7] == "-":
        return date.fromisoformat(value)
    parts = value.replace("-", "/").replace(".", "/").split("/")
    if len(parts) != 3 or not all(part.isdigit() for part in parts) or len(parts[2]) != 4:
        raise ValueError(f"not a day: {value!r}")
    return date(int(parts[2]), int(parts[1]), int(parts[0]))


def form_day(value: str | None, field: str) -> date | None:
    """A day from a page's form or query string (``parse_day``); 422 naming the field."""
    from registry.problems import Problem  # the pages' error type; i18n stays importable alone

    try:
        return parse_day(value)
    except ValueError as refused:
        raise Problem(422, "Invalid date", field=field, detail="not a date") from refused


def text_direction(lang: str) -> str:
    return "rtl" if lang in RIGHT_TO_LEFT else "ltr"


def supported(lang: str | None) -> str | None:
    """The language code if the pages speak it, else None."""
    if lang is None:
        return None
    code = lang.strip().lower()[:2]
    return code if code in LANGUAGES else None


@lru_cache(maxsize=len(LANGUAGES))
def translations(lang: str) -> NullTranslations:
    """The compiled catalog of ``lang`` (English source strings when it is missing)."""
    if lang not in LANGUAGES:
        lang = DEFAULT_LANGUAGE
    return Translations.load(str(LOCALES_DIR), [lang], domain=DOMAIN)


def gettext_for(lang: str) -> Callable[[str], str]:
    return translations(lang).gettext


@lru_cache(maxsize=len(LANGUAGES))
def environment(lang: str) -> Environment:
    """A Jinja environment that renders the web templates in ``lang``."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(("html", "svg", "xml")),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.install_gettext_translations(translations(lang), newstyle=False)  # type: ignore[attr-defined]
    env.globals.update(lang=lang, dir=text_direction(lang), language_names=LANGUAGE_NAMES)
    env.filters["day"] = partial(format_day, lang)
    return env


def from_accept_language(header: str | None) -> str | None:
    """The first supported language of an Accept-Language header, by quality."""
    if not header:
        return None
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        code, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if (lang := supported(code)) is not None and quality > 0:
            choices.append((-quality, index, lang))
    return min(choices)[2] if choices else None


def choose_language(candidates: Iterable[str | None]) -> str:
    """The first supported candidate (officer setting, cookie, browser), else French."""
    for candidate in candidates:
        if (lang := supported(candidate)) is not None:
            return lang
    return DEFAULT_LANGUAGE
