"""Bounded parameters shared by the HTTP routes (API, sync and web pages).

Every integer a client may put in a query string or a path has an upper bound, so it always
fits the databases' 64-bit integers: ``?offset=9223372036854775808`` is a 400 naming
``offset``, not an ``OverflowError`` in the driver (500). A country code (a document's
issuing state) is three letters, or fewer padded with ``<`` as in an MRZ.
"""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter

MAX_OFFSET = 10_000_000  # rows skipped by a paged listing
MAX_BIGINT = 2**63 - 1  # a sequence number or a row id (BIGINT)

Offset = Annotated[int, Parameter(ge=0, le=MAX_OFFSET, description="rows to skip")]
SequenceNumber = Annotated[int, Parameter(ge=0, le=MAX_BIGINT)]
RowId = Annotated[int, Parameter(ge=1, le=MAX_BIGINT)]
CountryParam = Annotated[
    str, Parameter(pattern=r"^[A-Za-z]{1,3}<{0,2}$", min_length=3, max_length=3)
]
