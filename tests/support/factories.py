"""Test travellers' documents, shared by every test folder and the benchmarks' fixtures: the
machine-readable zone of a valid passport (TD3) for a given person, and unique document
numbers; a wedge-scanned passport and a registration over HTTP. Each test keeps its own
person (a minor, a listed name, a citizen...) by the arguments it passes; only the way a
passport is built lives here."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from registry.mrz import build_td3

if TYPE_CHECKING:  # nodes.py builds its document numbers here
    from tests.support.nodes import NodeUnderTest


def passport_lines(
    number: str,
    *,
    surname: str = "CISSE",
    given: str = "OUMAR",
    nationality: str = "MLI",
    issuing_state: str | None = None,
    date_of_birth: date = date(1982, 6, 1),
    sex: str = "M",
    expiry: date | None = None,
) -> list[str]:
    """The two 44-character lines of a passport's MRZ, check digits computed. ``expiry``
    defaults to 900 days from today (a valid document); ``issuing_state`` to the
    nationality."""
    return list(
        build_td3(
            document_code="P",
            issuing_state=issuing_state or nationality,
            surname=surname,
            given_names=given,
            document_number=number,
            nationality=nationality,
            date_of_birth=date_of_birth,
            sex=sex,
            expiry_date=expiry or date.today() + timedelta(days=900),
            optional_data="",
        )
    )


def passport_mrz(number: str, *, line_end: str = "\n", **person: Any) -> str:
    """``passport_lines`` as the text a scanner sends: the lines joined by ``line_end``
    (``"\\r\\n"`` adds a trailing one too, as a keyboard-wedge reader types it)."""
    lines = passport_lines(number, **person)
    text = line_end.join(lines)
    return text + line_end if line_end == "\r\n" else text


def document_number(prefix: str = "B") -> str:
    """A passport number no other test uses: ``prefix`` and seven random characters."""
    return prefix + uuid.uuid4().hex[:7].upper()


def td3(
    number: str,
    *,
    surname: str = "OULD AHMED",
    given: str = "MOHAMED",
    nationality: str = "MLI",
    dob: date = date(1985, 3, 14),
    expiry: date | None = None,
    sex: str = "M",
) -> str:
    """A passport as a keyboard-wedge scanner types it (CR LF after each line)."""
    return passport_mrz(
        number,
        line_end="\r\n",
        surname=surname,
        given=given,
        nationality=nationality,
        date_of_birth=dob,
        expiry=expiry,
        sex=sex,
    )


async def register(node: NodeUnderTest, body: dict, role: str = "officer") -> dict:
    response = await node.client.post("/api/crossings", json=body, headers=node.auth(role))
    assert response.status_code == 201, response.text
    return response.json()
