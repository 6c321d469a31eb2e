"""Errors on /web: a page for people, problem+json for the pages' own scripts.

A request from a page script says ``Accept: application/json``; it gets the API's RFC 9457
problem. A browser navigation gets a login redirect (401) or an error page (403, 404, 4xx).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.types import ExceptionHandlersMap

from registry.api.auth import PasswordChangeRequired
from registry.problems import (
    Problem,
    handle_http,
    handle_problem,
    handle_unexpected,
    handle_validation,
)
from registry.web.i18n import N_, environment
from registry.web.messages import TEXT_REFUSALS, text_refusal_text, text_refused_text
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


def wants_json(request: Request[Any, Any, Any]) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_page(request: Request[Any, Any, Any], status: int, detail: str) -> Response[str]:
    """A plain page naming the error, in the reader's language, with a way back."""
    lang = language_of(request)
    env = environment(lang)
    html = env.get_template("web/error.html").render(
        status=status,
        title=TITLES.get(status, DEFAULT_TITLE),
        detail=detail,
        static=static_url,
        officer=getattr(request.state, "officer", None),
    )
    return Response(html, status_code=status, media_type=HTML)


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
    exc = translated(request, exc)
    if wants_json(request):
        return handle_problem(request, exc)
    return error_page(request, exc.status, exc.detail)


def on_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    if wants_json(request):
        return handle_validation(request, exc)
    return error_page(request, exc.status_code, exc.detail or "")


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
