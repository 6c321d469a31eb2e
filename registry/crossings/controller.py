"""Crossing endpoints: register (JSON or multipart with a photo), read, list by time range,
versions, correct. Referring a crossing to protection is ``registry.referrals.controller``."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from registry.api.auth import CROSSING_READERS, FRONT_DESK
from registry.api.params import Offset
from registry.crossings.idempotent import register_once
from registry.crossings.records import (
    correct_crossing,
    crossing_view,
    read_crossing,
    read_crossing_versions,
)
from registry.crossings.registration import Registration, prepare_registration
from registry.crossings.schemas import (
    CorrectionRequest,
    CrossingView,
    RegisteredCrossing,
    RegistrationRequest,
)
from registry.crossings.search import search_crossings
from registry.idempotency import IDEMPOTENCY_HEADER, KEY_PATTERN, idempotency_key
from registry.models import Officer, utcnow
from registry.node import Node
from registry.photos import AnalysedPhoto, analyse_upload
from registry.problems import Problem
from registry.schemas import as_response, decode_as
from registry.watchlists.alerts import desk_alert_view

MULTIPART = "multipart/form-data"


async def _registration_input(
    request: Request[Any, Any, Any], node: Node
) -> tuple[RegistrationRequest, AnalysedPhoto | None]:
    """Accept JSON, or multipart with a `crossing` JSON part and an optional `photo` file."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        return decode_as(await request.body(), RegistrationRequest), None
    if not content_type.startswith(MULTIPART):
        raise Problem(
            415,
            "Unsupported media type",
            field="content-type",
            detail="send application/json or multipart/form-data",
        )
    form = await request.form()
    raw = form.get("crossing")
    if not isinstance(raw, str):
        raise Problem(
            422,
            "Missing part",
            field="crossing",
            detail="the multipart body needs a `crossing` part holding JSON",
        )
    registration = decode_as(raw, RegistrationRequest)
    upload = form.get("photo")
    if upload is None or upload == "":
        return registration, None
    if not isinstance(upload, UploadFile):
        raise Problem(422, "Photo must be a file", field="photo")
    photo = await analyse_upload(await upload.read(), node.settings, field="photo")
    return registration, photo


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise Problem(422, "Invalid time", field=field, detail="give a time zone offset")
    return value


class CrossingController(Controller):
    """/api/crossings"""

    path = "/api/crossings"
    tags = ["crossings"]

    @post(
        "/",
        opt={"roles": FRONT_DESK},
        status_code=HTTP_201_CREATED,
        summary="Register a crossing",
        description="JSON body (RegistrationRequest) or multipart/form-data with a `crossing` "
        "JSON part and an optional `photo` file. Warnings never block; the officer decides.",
    )
    async def register(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        officer: Officer,
        idempotency: Annotated[
            str | None,
            Parameter(
                header=IDEMPOTENCY_HEADER,
                pattern=KEY_PATTERN,
                description="Optional. The same key sent again by the same officer registers "
                "nothing and answers the crossing the first request registered.",
            ),
        ] = None,
    ) -> RegisteredCrossing:

        async def submit(key: str | None) -> Registration:
            registration, photo = await _registration_input(request, node)
            prepared = prepare_registration(node, officer, registration, photo)
            return await node.registrations.submit(replace(prepared, idempotency_key=key))

        result, _ = await register_once(node, officer, idempotency_key(idempotency), submit)
        view = crossing_view(node, result.crossing, result.traveller, result.document)
        view["alerts"] = [desk_alert_view(alert) for alert in result.alerts]
        return as_response(view, RegisteredCrossing)

    @get("/", opt={"roles": CROSSING_READERS}, summary="Crossings in a time range")
    async def by_range(
        self,
        node: Node,
        reading: AsyncSession,
        officer: Officer,
        since: datetime | None = None,
        until: datetime | None = None,
        direction: Literal["entry", "exit"] | None = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Offset = 0,
    ) -> list[CrossingView]:
        until = _aware(until, "until") if until else utcnow()
        since = _aware(since, "since") if since else until - timedelta(days=1)
        views = await search_crossings(
            reading,
            node=node,
            officer=officer,
            since=since,
            until=until,
            direction=direction,
            limit=limit,
            offset=offset,
        )
        return as_response(views, list[CrossingView])

    @get("/{crossing_id:uuid}", opt={"roles": CROSSING_READERS})
    async def read(
        self, node: Node, reading: AsyncSession, officer: Officer, crossing_id: uuid.UUID
    ) -> CrossingView:
        view = await read_crossing(
            reading, node=node, officer=officer, crossing_id=crossing_id, purpose="view"
        )
        return as_response(view, CrossingView)

    @get("/{crossing_id:uuid}/versions", opt={"roles": CROSSING_READERS})
    async def versions(
        self, node: Node, reading: AsyncSession, officer: Officer, crossing_id: uuid.UUID
    ) -> list[CrossingView]:
        views = await read_crossing_versions(
            reading, node=node, officer=officer, crossing_id=crossing_id
        )
        return as_response(views, list[CrossingView])

    @post(
        "/{crossing_id:uuid}/corrections",
        opt={"roles": FRONT_DESK},
        status_code=HTTP_201_CREATED,
        summary="Correct a crossing by a superseding version",
    )
    async def correct(
        self,
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        crossing_id: uuid.UUID,
        data: CorrectionRequest,
    ) -> CrossingView:
        changes = {f: getattr(data, f) for f in data.__struct_fields__ if f != "reason"}
        corrected = await correct_crossing(
            transaction,
            node=node,
            officer=officer,
            crossing_id=crossing_id,
            changes=changes,
            reason=data.reason,
        )
        return as_response(crossing_view(node, corrected), CrossingView)
