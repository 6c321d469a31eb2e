"""Enforcement of an agreement: which fields of a record may leave for the partner.

``filter_record`` is the ONE function through which a record leaves for the partner: it
keeps only the allowed fields and replaces every pseudonymised field by its pseudonym
(``sync.exchange.pseudonyms``). Whether the agreement is in force is checked once per
exchange with ``sync.exchange.signing.agreement_status``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sync.exchange.model import PSEUDONYMISABLE, REVEALS, Agreement
from sync.exchange.pseudonyms import check_key, pseudonym


def _pseudonymise_field(qualified: str, row: Mapping[str, Any], hmac_key: bytes) -> str | None:
    kind = PSEUDONYMISABLE[qualified]
    name = qualified.split(".", 1)[1]
    if kind == "document_number":
        state = row.get("issuing_state")
        return pseudonym(kind, row.get(name), hmac_key=hmac_key, issuing_state=state)
    if kind == "name_key":
        surname, given = row.get("surname"), row.get("given_names")
        if surname is None and given is None:
            return None
        return pseudonym(kind, surname, hmac_key=hmac_key, given_names=given)
    return pseudonym(kind, row.get(name), hmac_key=hmac_key)


def filter_record(
    agreement: Agreement, record_type: str, row: Mapping[str, Any], *, hmac_key: bytes
) -> dict[str, Any] | None:
    """What of ``row`` may leave for the partner: THE enforcement point of an agreement.

    Returns None when the record type is not shared (photos and protection referrals also
    need their flag). Otherwise a new dict holding only allowed fields: clear fields present
    in ``row`` are copied unchanged; every pseudonymised field is present and holds its
    pseudonym, or None when it has none: the clear value never leaves. Values needed to compute a
    pseudonym (issuing state, surname and given names) are read from ``row`` even when they
    are not themselves shared. Does NOT check dates or signatures: call ``agreement_status``
    before an exchange.
    """
    check_key(hmac_key)
    if not agreement.is_shared(record_type):
        return None
    out: dict[str, Any] = {}
    for name in agreement.record_types[record_type]:
        qualified = f"{record_type}.{name}"
        if qualified in agreement.pseudonymised:
            if qualified in PSEUDONYMISABLE:  # else a hand-made agreement: never in clear
                out[name] = _pseudonymise_field(qualified, row, hmac_key)
        elif REVEALS.get(qualified, frozenset()) & agreement.pseudonymised:
            continue  # load_agreement refuses this; re-checked for hand-made agreements
        elif name in row:
            out[name] = row[name]
    return out
