"""RFC 9457 problem+json errors: every 4xx names the offending field."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from registry.text import TextRefused, parse_refusal

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("borderpost.api")


class Problem(Exception):
    """A client error with a status, a title and the fields at fault."""

    def __init__(
        self,
        status: int,
        title: str,
        *,
        field: str | None = None,
        detail: str | None = None,
        invalid_params: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.headers = dict(headers or {})  # e.g. Retry-After on a 429
        self.status = status
        self.title = title
        self.detail = detail or title
        params = list(invalid_params or [])
        if field is not None:
            params.insert(0, {"name": field, "reason": self.detail})
        self.invalid_params = params


def problem_response(
    status: int,
    title: str,
    detail: str,
    invalid_params: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = detail
    if invalid_params:
        body["invalid_params"] = invalid_params
    return Response(
        content=body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def field_from_message(message: str) -> str:
    """Pull the JSON path out of a msgspec validation message."""
    path = ""
    if " - at `$" in message:
        path = message.rsplit(" - at `$", 1)[-1].rstrip("`").lstrip(".")
    if "missing required field" in message:
        missing = message.split("`")[1]
        path = f"{path}.{missing}" if path else missing
    if "unknown field" in message.lower():
        unknown = message.split("`")[1]
        path = f"{path}.{unknown}" if path else unknown
    if (refused := parse_refusal(message)) is not None:  # clean-text refusal (registry.text)
        path = f"{path}.{refused[0]}" if path else refused[0]
    return path


TEXT_REFUSED_TITLE = "Invalid text"


def text_refused_problem(refused: TextRefused, name: str | None = None) -> Problem:
    """422 naming the field (``name``: its full path) with the clean-text reason and code,
    which the pages translate (``registry.web.errors``)."""
    field = name or refused.field
    param = {"name": field, "reason": refused.reason, "code": refused.code, **refused.params()}
    return Problem(
        422, TEXT_REFUSED_TITLE, detail=f"{field}: {refused.reason}", invalid_params=[param]
    )


def _field_from_key(key: str | None) -> str:
    if not key:
        return "body"
    return key.removeprefix("$.").removeprefix("$")


def handle_problem(_: Request[Any, Any, Any], exc: Problem) -> Response[dict[str, Any]]:
    return problem_response(exc.status, exc.title, exc.detail, exc.invalid_params, exc.headers)


def handle_validation(
    _: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    params = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            key = item.get("key")
            message = str(item.get("message", ""))
            if key in (None, "", "data"):
                name = field_from_message(message) or "body"
            else:
                name = _field_from_key(key)
            param = {"name": name, "reason": str(item.get("message", "invalid"))}
            if (refused := parse_refusal(message)) is not None:
                param["code"] = refused[1]
            params.append(param)
    detail = exc.detail or "the request is invalid"
    return problem_response(exc.status_code, "Invalid request", detail, params)


def handle_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    title = {401: "Not authenticated", 403: "Forbidden", 404: "Not found"}.get(
        exc.status_code, "Request refused"
    )
    detail = exc.detail or title
    # a body Litestar could not parse (malformed JSON or multipart): name the body
    params = [{"name": "body", "reason": detail}] if exc.status_code == 400 else None
    return problem_response(exc.status_code, title, detail, params)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Log the traceback (never to the client) and answer a plain 500 problem."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(HTTP_500_INTERNAL_SERVER_ERROR, "Internal error", "internal error")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    Problem: handle_problem,
    ValidationException: handle_validation,
    HTTPException: handle_http,
    Exception: handle_unexpected,
}
