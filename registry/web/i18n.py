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
from functools import lru_cache
from pathlib import Path

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


def N_(message: str) -> str:  # noqa: N802 - the conventional gettext marker name
    """Mark a string for extraction; it is translated later, at render time."""
    return message


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
