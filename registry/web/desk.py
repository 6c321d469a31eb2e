"""The registration desk (officers and supervisors): one screen from MRZ to printed receipt.

The page's script calls the JSON endpoints below as the officer works: the MRZ is parsed on
arrival, the photo is analysed as soon as it is taken, the check step runs the watchlist
and the integrity checks, and the save goes through the same service path as the API
(``prepare_registration`` then ``node.registrations.submit``). The receipt slip opens in the
page, ready to print on an 80 mm receipt printer or on A4.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import Parameter
from msgspec import Meta
from sqlalchemy.ext.asyncio import AsyncSession

from registry.api.auth import FRONT_DESK
from registry.audit import audited_read
from registry.crossings.idempotent import register_once
from registry.crossings.records import audited_crossing_rows
from registry.crossings.registration import Check, Registration, prepare_registration
from registry.crossings.schemas import RegistrationRequest
from registry.crossings.search import search_crossings
from registry.idempotency import IDEMPOTENCY_HEADER, idempotency_key
from registry.json_limits import check_json_depth
from registry.models import Officer, utcnow
from registry.node import Node
from registry.photos import AnalysedPhoto, PhotoRefused, analyse_upload
from registry.problems import Problem
from registry.receipts import qr_svg
from registry.referrals.service import referred_crossings
from registry.schemas import decode_as
from registry.watchlists.alerts import desk_alert_view
from registry.web.desk_service import check_view, desk_check, mrz_view
from registry.web.i18n import N_, environment, format_day, parse_day
from registry.web.messages import (
    DECISIONS,
    DIRECTIONS,
    MODES,
    PHOTO_REFUSED,
    PURPOSES,
    QUALITY_TEXT,
    SEXES,
    check_text,
    instruction_text,
    label,
    photo_refusal_text,
)
from registry.web.photo_cache import PhotoCache
from registry.web.render import HTML, language_of, render, static_url, translator
from registry.web.security import desk_draft_key

RECENT_HOURS = 3
RECENT_LIMIT = 30
PAPERS = ("80mm", "a4")
# The desk's days, typed and shown as the pages write them (``i18n.format_day``), never the
# browser's own date field (mm/dd/yyyy in an en-US browser): (section, field, label).
DAY_FIELDS = (
    ("document", "expiry_date", N_("Expiry date")),
    ("traveller", "date_of_birth", N_("Date of birth")),
)
DAY_EXPECTED = N_("%(field)s: write the day as %(format)s.")
INVALID_INPUT = N_("Invalid input")


class MrzRequest(msgspec.Struct, forbid_unknown_fields=True):
    mrz: Annotated[str, Meta(max_length=400)]


class CheckRequest(msgspec.Struct, forbid_unknown_fields=True):
    crossing: RegistrationRequest
    photo_ticket: Annotated[str, Meta(max_length=64)] | None = None


def photo_cache(request: Request[Any, Any, Any]) -> PhotoCache:
    state = request.app.state
    cache = getattr(state, "web_photo_cache", None)
    if cache is None:
        cache = PhotoCache()
        state.web_photo_cache = cache
    return cache


async def _analyse(node: Node, data: bytes, _: Any) -> AnalysedPhoto:
    """Analyse an uploaded portrait; a refusal is said in the officer's language."""
    try:
        return await analyse_upload(data, node.settings, field="photo")
    except PhotoRefused as refused:
        raise Problem(
            refused.status,
            _(PHOTO_REFUSED),
            field="photo",
            detail=photo_refusal_text(refused.reason, node.settings, _),
            headers=refused.headers,
        ) from refused


def quality_view(photo: AnalysedPhoto, ticket: str, _: Any) -> dict[str, Any]:
    reasons = [
        {
            "code": reason["code"],
            "message": _(QUALITY_TEXT[reason["code"]])
            if reason["code"] in QUALITY_TEXT
            else reason["message"],
            "detail": reason["message"],
        }
        for reason in photo.quality.get("reasons", [])
    ]
    return {
        "ticket": ticket,
        "passed": photo.quality_passed,
        "score": photo.quality_score,
        "faces_found": photo.faces_found,
        "reasons": reasons,
        "width": photo.photo.width,
        "height": photo.photo.height,
    }


def _recent_option(view: dict[str, Any], _: Any) -> dict[str, str]:
    traveller = view.get("traveller") or {}
    when = view["occurred_at_local"][11:16]
    name = f"{traveller.get('surname', '')} {traveller.get('given_names', '')}".strip()
    direction = label(DIRECTIONS, view["direction"], _)
    return {
        "id": view["id"],
        "time": when,
        "name": name,
        "direction_text": direction,
        "decision_text": label(DECISIONS, view["decision"], _),
        "label": f"{when} {name} ({direction})",
        "referred": view.get("referred", False),
    }


async def recent_registrations(
    reading: AsyncSession, node: Node, officer: Officer, _: Any
) -> list[dict[str, str]]:
    """This post's registrations of the last hours (for guardians, companions, reprints),
    read in an audited read (``audited_read``)."""
    until = utcnow()
    views = await search_crossings(
        reading,
        node=node,
        officer=officer,
        since=until - timedelta(hours=RECENT_HOURS),
        until=until,
        direction=None,
        limit=RECENT_LIMIT,
    )
    referred = await referred_crossings(
        reading, officer=officer, crossing_ids=[uuid.UUID(view["id"]) for view in views]
    )
    for view in views:
        view["referred"] = uuid.UUID(view["id"]) in referred
    return [_recent_option(view, _) for view in views]


def shown_days(values: dict[str, Any], lang: str) -> dict[str, Any]:
    """The MRZ's days (ISO from ``mrz_view``) as the page writes them."""
    for part, name, _label in DAY_FIELDS:
        key = f"{part}.{name}"
        if values.get(key):
            values[key] = format_day(lang, values[key])
    return values


def typed_days(raw: bytes | str, _: Any, *, inside: str | None = None) -> bytes | str:
    """The crossing's days as the officer typed them (dd/mm/yyyy, or ISO: ``parse_day``)
    turned into ISO for the service; a mistyped day is a 422 naming the field, in the
    officer's language. ``inside``: the key of the crossing in the body (the check's)."""
    check_json_depth(raw)
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw  # decode_as names the malformed body
    crossing = body.get(inside) if inside and isinstance(body, dict) else body
    if not isinstance(crossing, dict):
        return raw
    for part, name, text in DAY_FIELDS:
        section = crossing.get(part)
        if not isinstance(section, dict) or not isinstance(section.get(name), str):
            continue
        try:
            day = parse_day(section[name])
        except ValueError as refused:
            detail = _(DAY_EXPECTED) % {"field": _(text), "format": _("dd/mm/yyyy")}
            raise Problem(
                422, _(INVALID_INPUT), field=f"crossing.{part}.{name}", detail=detail
            ) from refused
        if day is None:
            del section[name]
        else:
            section[name] = day.isoformat()
    return msgspec.json.encode(body)


def refused_photo(registration: RegistrationRequest, photo: AnalysedPhoto | None, _: Any) -> None:
    """A portrait the quality gate refused saves only with the officer's reason: said in
    the officer's language here (the service's own refusal speaks the API's English)."""
    if photo is None or photo.quality_passed or registration.photo_quality_override is not None:
        return
    raise Problem(
        422,
        _(PHOTO_REFUSED),
        field="photo",
        detail=check_text("photo_refused", "", _),
    )


async def _upload(request: Request[Any, Any, Any], name: str) -> bytes | None:
    form = await request.form()
    upload = form.get(name)
    if upload is None or upload == "":
        return None
    if not isinstance(upload, UploadFile):
        raise Problem(422, "Photo must be a file", field=name)
    return await upload.read()


async def _form_text(request: Request[Any, Any, Any], name: str) -> str | None:
    value = (await request.form()).get(name)
    return value if isinstance(value, str) and value else None


class DeskController(Controller):
    """/web/desk"""

    path = "/desk"
    opt = {"roles": FRONT_DESK}
    include_in_schema = False

    @get("/")
    async def page(
        self, request: Request[Any, Any, Any], node: Node, reading: AsyncSession, officer: Officer
    ) -> Response[str]:
        _ = translator(request)
        return await render(
            request,
            "desk.html",
            active="desk",
            recent=await recent_registrations(reading, node, officer, _),
            directions=[(code, label(DIRECTIONS, code, _)) for code in DIRECTIONS],
            decisions=[(code, label(DECISIONS, code, _)) for code in DECISIONS],
            modes=[(code, label(MODES, code, _)) for code in MODES],
            sexes=[(code, label(SEXES, code, _)) for code in SEXES],
            purposes=[label(PURPOSES, code, _) for code in PURPOSES],
            draft_key=desk_draft_key(node, str(officer.id)),
        )

    @post("/mrz", status_code=200, opt={"body": "json"})
    async def parse(self, request: Request[Any, Any, Any], node: Node) -> dict[str, Any]:
        """The MRZ parsed by ``registry.mrz.parse_mrz``, with the form values and checks."""
        data = decode_as(await request.body(), MrzRequest)
        today = utcnow().astimezone(node.settings.zone).date()
        view = mrz_view(data.mrz, today, translator(request))
        view["values"] = shown_days(view["values"], language_of(request))
        return view

    @post("/photo", status_code=200)
    async def photo(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer
    ) -> dict[str, Any]:
        """Run the face pipeline and quality gate on a portrait; nothing is stored."""
        data = await _upload(request, "photo")
        if data is None:
            raise Problem(422, "Photo missing", field="photo", detail="send a `photo` file")
        analysed = await _analyse(node, data, translator(request))
        ticket = photo_cache(request).put(officer.id, analysed)
        return quality_view(analysed, ticket, translator(request))

    @post("/check", status_code=200, opt={"body": "json"})
    async def check(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer
    ) -> dict[str, Any]:
        """Integrity checks, stay outcome and the watchlist instructions, before deciding.
        The body is received and decoded first, then read and audited in an audited read
        of the handler's own (nothing is written but the audit)."""
        raw = typed_days(await request.body(), translator(request), inside="crossing")
        data = decode_as(raw, CheckRequest)
        photo = photo_cache(request).get(officer.id, data.photo_ticket)
        async with audited_read(node) as session:
            return await desk_check(
                session,
                node=node,
                officer=officer,
                registration=data.crossing,
                photo=photo,
                _=translator(request),
            )

    @post("/register", status_code=201)
    async def register(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer
    ) -> dict[str, Any]:
        """Save through the API's service path; answer the desk view and the receipt URLs.
        The page sends an ``Idempotency-Key`` per traveller: a save sent again answers the
        first one (``registry.idempotency``)."""

        async def submit(key: str | None) -> Registration:
            raw = await _form_text(request, "crossing")
            if raw is None:
                raise Problem(
                    422, "Missing part", field="crossing", detail="send the crossing JSON"
                )
            registration = decode_as(typed_days(raw, translator(request)), RegistrationRequest)
            ticket = await _form_text(request, "photo_ticket")
            photo = photo_cache(request).get(officer.id, ticket)
            if photo is None and (data := await _upload(request, "photo")) is not None:
                photo = await _analyse(node, data, translator(request))
            if photo is None and ticket is not None:
                raise Problem(
                    409, "Photo expired", field="photo_ticket", detail="send the photo file again"
                )
            refused_photo(registration, photo, translator(request))
            prepared = prepare_registration(node, officer, registration, photo)
            result = await node.registrations.submit(replace(prepared, idempotency_key=key))
            photo_cache(request).discard(ticket)
            return result

        key = idempotency_key(request.headers.get(IDEMPOTENCY_HEADER.lower()))
        result, _ = await register_once(node, officer, key, submit)
        return _saved_view(request, result)


def _saved_view(request: Request[Any, Any, Any], result: Any) -> dict[str, Any]:
    """What the desk shows once saved: instructions only for alerts, and the receipt URLs."""
    _ = translator(request)
    crossing, traveller = result.crossing, result.traveller
    receipt = f"/web/receipts/{crossing.id}"
    alerts = {desk_alert_view(alert)["instruction"] for alert in result.alerts}
    when = crossing.occurred_at.astimezone(request.app.state.node.settings.zone)
    name = f"{traveller.surname} {traveller.given_names}".strip()
    return {
        "id": str(crossing.id),
        "receipt_url": f"{receipt}?paper=80mm&print=1&embed=1",
        "crossing_url": f"/web/crossings/{crossing.id}",
        "receipt_80mm_url": f"{receipt}?paper=80mm",
        "receipt_a4_url": f"{receipt}?paper=a4",
        "alerts": sorted(instruction_text(text, _) for text in alerts),
        "checks": [
            check_view(Check(c["code"], c["field"], c["message"]), _) for c in crossing.checks
        ],
        "recent": {
            "id": str(crossing.id),
            "time": f"{when:%H:%M}",
            "label": f"{when:%H:%M} {name} ({label(DIRECTIONS, crossing.direction, _)})",
        },
        "direction": label(DIRECTIONS, crossing.direction, _),
        "decision": label(DECISIONS, crossing.decision, _),
        "traveller": name,
    }


class ReceiptPageController(Controller):
    """/web/receipts/{id}: the printable slip, 80 mm or A4 (the read is audited)."""

    path = "/receipts"
    opt = {"roles": FRONT_DESK}
    include_in_schema = False

    @get("/{crossing_id:uuid}")
    async def slip(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        officer: Officer,
        crossing_id: uuid.UUID,
        paper: Annotated[str, Parameter(max_length=8)] = "80mm",
        print_: Annotated[str | None, Parameter(query="print", max_length=2)] = None,
        embed: Annotated[str | None, Parameter(max_length=2)] = None,
    ) -> Response[str]:
        """The slip; its QR code is drawn once the audited read is done, so the handler
        opens its read itself."""
        async with audited_read(node) as session:
            crossing, traveller, document = await audited_crossing_rows(
                session, node=node, officer=officer, crossing_id=crossing_id, purpose="receipt_html"
            )
        paper = paper if paper in PAPERS else "80mm"
        html = (
            environment(language_of(request))
            .get_template("receipt.html")
            .render(
                crossing=crossing,
                traveller=traveller,
                document=document,
                node=node.settings,
                paper=paper,
                local_time=crossing.occurred_at.astimezone(node.settings.zone),
                qr_svg=qr_svg(crossing.receipt),
                stylesheet=static_url(f"css/receipt-{paper}.css"),
                script=static_url("js/receipt.js"),
                autoprint=print_ == "1",
                embed=embed == "1",
                other_paper="a4" if paper == "80mm" else "80mm",
            )
        )
        return Response(html, media_type=HTML)
