"""Errors on /web: a page for people, problem+json for the pages' own scripts.

A request from a page script says ``Accept: application/json``; it gets the API's RFC 9457
problem. A browser navigation gets a login redirect (401) or an error page (403, 404, 4xx).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    ValidationException,
)
from litestar.types import ExceptionHandlersMap

from registry.api.auth import PasswordChangeRequired
from registry.problems import (
    EXCEPTION_HANDLERS,
    Problem,
    handle_http,
    handle_problem,
    handle_unexpected,
    handle_validation,
)
from registry.web.i18n import DEFAULT_LANGUAGE, N_, environment, translations
from registry.web.messages import (
    FIELD_NAMES,
    TEXT_REFUSALS,
    label,
    text_refusal_text,
    text_refused_text,
)
from registry.web.render import HTML, language_of, static_url, translator

log = logging.getLogger("borderpost.web")
TITLES = {
    401: N_("Please log in"),
    403: N_("Access refused"),
    404: N_("Not found"),
    409: N_("Conflict"),
    413: N_("Too large"),
    422: N_("Invalid input"),
}
DEFAULT_TITLE = N_("Request refused")
# What each error means to the reader: the service's own detail is English (or a developer's
# word), so a page shows it only when the catalogues translate it.
EXPLANATIONS = {
    400: N_("A value you gave is not valid."),
    403: N_("Your role may not open this page."),
    404: N_("This page or record does not exist."),
    405: N_("This page cannot be used this way."),
    409: N_("This conflicts with what is already recorded."),
    413: N_("What you sent is too large."),
    422: N_("A value you gave is not valid."),
    429: N_("Too many attempts: wait a moment and try again."),
    500: N_("Something went wrong on this node. Tell the administrator."),
}
DEFAULT_EXPLANATION = N_("This request cannot be served.")
FIELD_AT_FAULT = N_("Field at fault: %(field)s")


def wants_json(request: Request[Any, Any, Any]) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def in_catalogue(lang: str, message: str) -> bool:
    """Whether the catalogue of ``lang`` holds ``message``. English is the source language
    (its compiled catalogue is empty): a message exists when the default one translates it."""
    source = DEFAULT_LANGUAGE if lang == "en" else lang
    catalogue = getattr(translations(source), "_catalog", {})
    return bool(message) and message in catalogue


def error_page(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    field: str | None = None,
    *,
    translated_detail: bool = False,
) -> Response[str]:
    """A plain page naming the error in the reader's language, with a way back: the title,
    what the status means, and the service's detail only when the catalogue translates it
    (else the field at fault, by its translated name)."""
    lang = language_of(request)
    env = environment(lang)
    _ = translator(request)
    shown = ""
    if translated_detail:
        shown = detail
    elif in_catalogue(lang, detail):
        shown = _(detail)
    elif field and field in FIELD_NAMES:
        shown = _(FIELD_AT_FAULT) % {"field": label(FIELD_NAMES, field, _)}
    html = env.get_template("web/error.html").render(
        status=status,
        title=TITLES.get(status, DEFAULT_TITLE),
        explanation=EXPLANATIONS.get(status, DEFAULT_EXPLANATION),
        detail=shown,
        static=static_url,
        officer=getattr(request.state, "officer", None),
    )
    return Response(html, status_code=status, media_type=HTML)


def problem_sentence(problem: Problem, _: Any, hints: dict[str, str] | None = None) -> str:
    """What a refused form says above its fields, in the reader's language: the clean-text
    reason, or what the status means, the field at fault by its name and the field's hint."""
    refused = problem.invalid_params[0] if problem.invalid_params else {}
    if refused.get("code") in TEXT_REFUSALS:
        return text_refused_text(refused, _)
    parts = [_(EXPLANATIONS.get(problem.status, DEFAULT_EXPLANATION))]
    field = refused.get("name")
    if field in FIELD_NAMES:
        parts.append(_(FIELD_AT_FAULT) % {"field": label(FIELD_NAMES, field, _)})
    if hints and field in hints:
        parts.append(_(hints[field]))
    return " ".join(parts)


def _field_of(params: list[dict[str, str]]) -> str | None:
    return params[0].get("name") if params else None


def on_not_authorized(
    request: Request[Any, Any, Any], exc: NotAuthorizedException
) -> Response[Any]:
    if wants_json(request) or request.method != "GET":
        return handle_http(request, exc)
    target = quote(request.url.path, safe="/")
    return Response(
        "",
        status_code=303,
        headers={"Location": f"/web/login?next={target}"},
        media_type=HTML,
    )


def on_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if wants_json(request):
        return handle_http(request, exc)
    return error_page(request, exc.status_code, exc.detail or "")


def translated(request: Request[Any, Any, Any], exc: Problem) -> Problem:
    """A clean-text refusal (``registry.text``) in the reader's language: the reasons of the
    fields the desk marks, and the sentence the page shows. Other problems are unchanged."""
    if not any(param.get("code") in TEXT_REFUSALS for param in exc.invalid_params):
        return exc
    _ = translator(request)
    params = [
        {**param, "reason": text_refusal_text(param, _)}
        if param.get("code") in TEXT_REFUSALS
        else param
        for param in exc.invalid_params
    ]
    coded = next(param for param in exc.invalid_params if param.get("code") in TEXT_REFUSALS)
    title = _(TITLES.get(exc.status, DEFAULT_TITLE))
    return Problem(exc.status, title, detail=text_refused_text(coded, _), invalid_params=params)


def on_problem(request: Request[Any, Any, Any], exc: Problem) -> Response[Any]:
    if isinstance(exc, PasswordChangeRequired) and not wants_json(request):
        return Response(  # after an administrator's reset: the password form first
            "", status_code=303, headers={"Location": "/web/account#password"}, media_type=HTML
        )
    coded = any(param.get("code") in TEXT_REFUSALS for param in exc.invalid_params)
    exc = translated(request, exc)
    if wants_json(request):
        return handle_problem(request, exc)
    field = _field_of(exc.invalid_params)
    return error_page(request, exc.status, exc.detail, field, translated_detail=coded)


def on_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    if wants_json(request):
        return handle_validation(request, exc)
    items = exc.extra if isinstance(exc.extra, list) else []
    keys = [str(item.get("key")) for item in items if isinstance(item, dict) and item.get("key")]
    return error_page(request, exc.status_code, "", keys[0] if keys else None)


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if wants_json(request):
        return handle_unexpected(request, exc)
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_page(request, 500, "internal error")


WEB_EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    NotAuthorizedException: on_not_authorized,
    Problem: on_problem,
    ValidationException: on_validation,
    HTTPException: on_http,
    Exception: on_unexpected,
}


def on_unknown_address(request: Request[Any, Any, Any], exc: NotFoundException) -> Response[Any]:
    """An address no route matches (``/web/travellers/not-an-id``, ``/nothing``): a browser
    gets the 404 page in its language; the API and scripts keep their problem+json."""
    path = request.url.path
    api = path.startswith(("/api/", "/schema")) or path == "/api"
    if api or wants_json(request) or "text/html" not in request.headers.get("accept", ""):
        return handle_http(request, exc)
    return error_page(request, exc.status_code, "")


APP_EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    **EXCEPTION_HANDLERS,
    NotFoundException: on_unknown_address,
}
