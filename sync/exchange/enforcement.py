"""Enforcement of an agreement: which fields of a record may leave for the partner.

``filter_record`` is the ONE function through which a record leaves for the partner: it
keeps only the allowed fields, replaces every pseudonymised field by its blinded element
(``sync.exchange.pseudonyms``: ``H(x)^a`` with this node's own scalar) and every id by its
pseudonymous id under the agreement. Whether the agreement is in force is checked once per
exchange with ``sync.exchange.signing.agreement_status``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from sync.exchange.model import PSEUDONYMISABLE, REVEALS, Agreement, Tier
from sync.exchange.pseudonyms import BlindingKey, element_message, ids_pseudonym

# Fields holding one of our record ids: they leave as pseudonymous ids, never as UUIDs.
ID_FIELDS: Final = frozenset(
    {"id", "traveller_id", "document_id", "supersedes", "crossing_id", "photo_id"}
)


def filter_record(
    agreement: Agreement,
    record_type: str,
    row: Mapping[str, Any],
    *,
    key: BlindingKey,
    document: str | None = None,
    cache: dict[str, str] | None = None,
    tier: Tier = "bulk",
) -> dict[str, Any] | None:
    """What of ``row`` may leave for the partner: THE enforcement point of an agreement.

    Returns None when the record type is not shared (photos and protection referrals also
    need their flag). Otherwise a new dict holding only allowed fields: clear fields present
    in ``row`` are copied unchanged, except ids, which become pseudonymous ids; every
    pseudonymised field is present and holds its blinded element, or None when it has none:
    the clear value never leaves. ``document`` is the crossing's document message
    (``pseudonyms.document_message``), to which traveller values are bound; values needed to
    compute an element (issuing state, names, birth date) are read from ``row`` even when
    they are not themselves shared. ``cache`` (message -> blinded) spares blinding a value
    twice in one batch, and an id's pseudonymous id (keyed by the id's text, which never
    looks like a message: messages start with the pseudonym version). ``tier``
    ``"detail"`` adds the agreement's ``detail_fields`` (in clear): only for a release a
    liaison officer approved on a purposed request (``sync.exchange.hits.release_details``);
    batches are always ``"bulk"``. Does NOT check dates or signatures: call
    ``agreement_status`` before an exchange.
    """
    if not agreement.is_shared(record_type):
        return None
    plan, person = _plan(agreement, record_type, tier)
    ids_key = key.ids_key(agreement.id)
    out: dict[str, Any] = {}
    for name, step in plan:
        if step is _ELEMENT:
            qualified = f"{record_type}.{name}"
            message = element_message(qualified, row, document=document, person=person)
            if message is None:
                out[name] = None
            elif cache is not None and message in cache:
                out[name] = cache[message]
            else:
                out[name] = key.blind_message(message)
                if cache is not None:
                    cache[message] = out[name]
        else:
            try:  # one lookup: most rows hold every field the plan names
                value = row[name]
            except KeyError:
                continue
            if step is not _ID:
                out[name] = value
            elif cache is None:
                out[name] = ids_pseudonym(ids_key, value)
            else:  # an id recurs in a bundle (traveller_id, traveller.id) and across a page
                known = cache.get(value) if isinstance(value, str) else None
                if known is None:
                    known = ids_pseudonym(ids_key, value)
                    if isinstance(value, str) and known is not None:
                        cache[value] = known
                out[name] = known
    return out


# What filter_record does with each field of a record type: computed once per agreement,
# record type and tier (the rules are those of the loop it replaces, field by field).
_ELEMENT, _ID, _CLEAR = "element", "id", "clear"
Plan = tuple[tuple[tuple[str, str], ...], frozenset[str]]
_PLANS: dict[int, tuple[Agreement, dict[tuple[str, Tier], Plan]]] = {}


def _plan(agreement: Agreement, record_type: str, tier: Tier) -> Plan:
    held = _PLANS.get(id(agreement))
    if held is None or held[0] is not agreement:  # an id reused by a new agreement
        if len(_PLANS) > 64:
            _PLANS.clear()
        held = _PLANS[id(agreement)] = (agreement, {})
    plan = held[1].get((record_type, tier))
    if plan is None:
        plan = held[1][(record_type, tier)] = (
            tuple(_steps(agreement, record_type, tier)),
            agreement.person_fields(),
        )
    return plan


def _steps(agreement: Agreement, record_type: str, tier: Tier) -> Iterator[tuple[str, str]]:
    bulk = agreement.record_types[record_type]
    for name in agreement.fields_for(record_type, tier):
        qualified = f"{record_type}.{name}"
        if name not in bulk:  # a detail field, released on approval
            yield name, _ID if name in ID_FIELDS else _CLEAR
        elif qualified in agreement.pseudonymised:
            if qualified in PSEUDONYMISABLE:  # a hand-made agreement's other: never in clear
                yield name, _ELEMENT
        elif REVEALS.get(qualified, frozenset()) & agreement.pseudonymised:
            continue  # load_agreement refuses this; re-checked for hand-made agreements
        else:
            yield name, _ID if name in ID_FIELDS else _CLEAR
