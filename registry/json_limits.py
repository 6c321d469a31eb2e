"""One nesting limit for every JSON request body, checked before it is decoded.

msgspec decodes recursively: a body of a thousand nested ``{"a":`` (a few kilobytes) raised
``RecursionError`` deep inside the decoder, answered 500 with a traceback logged per request.
No Borderpost request nests deeper than a handful of levels, so a body nested deeper than
:data:`MAX_JSON_DEPTH` is refused with 400 (problem+json naming ``body``) before decoding.

Two entry points cover every JSON body: :class:`BorderpostRequest` (the app's request class:
every handler's ``data`` argument goes through ``Request.json``) and ``registry.schemas
.decode_as`` (bodies and multipart parts a handler decodes itself) via :func:`check_json_depth`.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from litestar import Request

from registry.problems import Problem

MAX_JSON_DEPTH = 32
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"{}[]")
_OPENING = np.frombuffer(b"{[", dtype=np.uint8)


def json_depth(raw: bytes, *, at_most: int = MAX_JSON_DEPTH) -> int:
    """The nesting depth of a JSON text (exact once over ``at_most``; cheap below it).

    Brackets inside strings do not count. The text need not be valid JSON.
    """
    opening = raw.count(b"{") + raw.count(b"[")
    if opening <= at_most:
        return opening  # an upper bound, enough to know the limit holds
    brackets = np.frombuffer(_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS), np.uint8)
    if brackets.size == 0:
        return 0
    steps = np.where(np.isin(brackets, _OPENING), 1, -1).astype(np.int64)
    return int(np.cumsum(steps).max(initial=0))


def check_json_depth(raw: bytes | str, *, field: str = "body") -> None:
    """Raise a 400 Problem naming ``field`` when ``raw`` nests deeper than the limit."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if json_depth(data) > MAX_JSON_DEPTH:
        raise too_deep(field)


def too_deep(field: str = "body") -> Problem:
    return Problem(
        400,
        "JSON nested too deeply",
        field=field,
        detail=f"the JSON nests more than {MAX_JSON_DEPTH} levels of objects or arrays",
    )


class BorderpostRequest(Request[Any, Any, Any]):
    """The app's request class: JSON bodies are checked for nesting before decoding."""

    async def json(self) -> Any:
        check_json_depth(await self.body())
        try:
            return await super().json()
        except RecursionError:  # the stack was already deep: still the client's body
            raise too_deep() from None
