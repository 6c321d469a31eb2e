"""Issue 13, attacks on one post that used to break it, reproduced over HTTP and the CLI:
image bombs within the old limits, missing security headers, integers that overflow the
database, deeply nested JSON, a portrait left behind by a refused registration, a watchlist
entry disclosed by a 409, and a document number recovered from a receipt's QR.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import re
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from litestar.params import KwargDefinition
from PIL import Image

from registry.api.params import MAX_OFFSET
from registry.app import create_app
from registry.json_limits import MAX_JSON_DEPTH, json_depth
from registry.models import Photo
from registry.photos import DecodeSlots, analyse_upload, decode_slots
from registry.problems import Problem
from registry.receipts import base45_decode
from registry.web.i18n import gettext_for
from registry.web.messages import PHOTO_REFUSALS
from registry.web.security import CONTENT_SECURITY_POLICY
from tests.support.factories import td3
from tests.support.hostile import huge_png, snapshot
from tests.support.nodes import NodeUnderTest, base_settings, national_settings, unique_number
from tests.support.servers import ServerProcess, bearer, cli
from tests.support.web_client import Web

OVERRIDE = "test portrait without a face"
OVERFLOW = str(2**63)  # 9223372036854775808


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def gradient(width: int, height: int) -> Image.Image:
    """A smooth colour image (fast to build and to compress)."""
    x = np.linspace(0, 255, width, dtype=np.uint8)
    y = np.linspace(0, 255, height, dtype=np.uint8)
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    pixels[..., 0] = x[None, :]
    pixels[..., 1] = y[:, None]
    pixels[..., 2] = 128
    return Image.fromarray(pixels)


async def upload(node: NodeUnderTest, photo: bytes, *, name: str = "p.png", **crossing: Any) -> Any:
    body = {"direction": "entry", "mrz": td3(unique_number()), **crossing}
    return await node.client.post(
        "/api/crossings",
        headers=node.auth("officer"),
        data={"crossing": json.dumps(body)},
        files={"photo": (name, photo, "application/octet-stream")},
    )


def photo_files(node: NodeUnderTest) -> list[Path]:
    return sorted(node.node.settings.photo_dir.rglob("*.jpg"))


# ---------------------------------------------------------------- images in bounded memory
def sixteen_bit_png() -> bytes:
    return encode(Image.fromarray(np.full((40, 40), 40_000, dtype=np.uint16)), "PNG")


REFUSED_PHOTOS = [
    # the bomb: 6324 x 6324 1-bit PNG of 4.9 KB, under the old 40 MP limit
    ("bilevel 6324x6324 (40 MP, old limit)", lambda: huge_png(6324, 6324), 413),
    ("bilevel 4000x3000 (within the size limits)", lambda: huge_png(4000, 3000), 422),
    ("16-bit greyscale", sixteen_bit_png, 422),
    ("one side over 4000 px", lambda: encode(gradient(4001, 16), "PNG"), 413),
    ("over 12 MP", lambda: encode(gradient(3999, 3100), "PNG", compress_level=1), 413),
]


@pytest.mark.parametrize(
    ("case", "make", "status"), REFUSED_PHOTOS, ids=[case[0] for case in REFUSED_PHOTOS]
)
async def test_portraits_outside_the_limits_are_refused_before_decoding(
    post_node: NodeUnderTest, case: str, make: Any, status: int
) -> None:
    before = await snapshot(post_node)
    response = await upload(post_node, make(), photo_quality_override=OVERRIDE)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["invalid_params"][0]["name"] == "photo"
    assert await snapshot(post_node) == before
    assert photo_files(post_node) == []


@pytest.mark.faces
async def test_a_large_jpeg_is_decoded_at_working_size_and_stored_small(
    post_node: NodeUnderTest,
) -> None:
    data = encode(gradient(4000, 3000), "JPEG", quality=90)
    response = await upload(post_node, data, name="p.jpg", photo_quality_override=OVERRIDE)
    assert response.status_code == 201, response.text
    async with post_node.db.session() as session:
        stored = await session.get(Photo, response.json()["photo_sha256"])
    assert stored is not None
    # draft mode decoded it at 1/4 (1000 x 750): between 1x and 2x the face pipeline's 800 px
    assert (stored.width, stored.height) == (1000, 750)
    webp = encode(gradient(3000, 4000), "WEBP", quality=80)
    response = await upload(post_node, webp, name="p.webp", photo_quality_override=OVERRIDE)
    assert response.status_code == 201, response.text
    async with post_node.db.session() as session:
        stored = await session.get(Photo, response.json()["photo_sha256"])
    assert stored is not None and (stored.width, stored.height) == (600, 800)  # reduced by 5


async def test_decode_slots_make_extra_photos_wait_and_refuse_beyond_the_queue() -> None:
    slots = DecodeSlots(1, 1)
    entered: list[str] = []
    release = asyncio.Event()

    async def decode(name: str) -> None:
        async with slots.slot("photo"):
            entered.append(name)
            await release.wait()

    first = asyncio.create_task(decode("first"))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(decode("second"))
    await asyncio.sleep(0.01)
    assert entered == ["first"] and slots.waiting == 1 and slots.decoding == 1
    with pytest.raises(Problem) as refused:
        async with slots.slot("photo"):
            pass
    assert refused.value.status == 503
    assert refused.value.invalid_params[0]["name"] == "photo"
    release.set()
    await asyncio.gather(first, second)
    assert entered == ["first", "second"] and slots.decoding == 0 and slots.waiting == 0


# ---------------------------------------------------------------- no file left behind
async def test_a_refused_registration_leaves_no_portrait_on_disk(post_node: NodeUnderTest) -> None:
    data = encode(gradient(640, 480), "JPEG", quality=90)
    before = await snapshot(post_node)
    response = await upload(
        post_node,
        data,
        name="p.jpg",
        photo_quality_override=OVERRIDE,
        guardian_crossing_id=str(uuid.uuid4()),  # unknown guardian: refused by the writer
    )
    assert response.status_code == 422, response.text
    assert response.json()["invalid_params"][0]["name"] == "guardian_crossing_id"
    assert await snapshot(post_node) == before
    assert photo_files(post_node) == []
    accepted = await upload(post_node, data, name="p.jpg", photo_quality_override=OVERRIDE)
    assert accepted.status_code == 201, accepted.text
    assert len(photo_files(post_node)) == 1  # the same portrait, once registered, is kept


# ---------------------------------------------------------------- headers
def _header_problems(response: Any, *, html: bool = False) -> list[str]:
    problems = []
    if response.headers.get("cache-control") != "no-store":
        problems.append(f"cache-control={response.headers.get('cache-control')}")
    if response.headers.get("x-content-type-options") != "nosniff":
        problems.append("nosniff missing")
    if html and "frame-ancestors 'none'" not in response.headers.get("content-security-policy", ""):
        problems.append("no frame-ancestors 'none'")
    return problems


async def test_personal_data_is_never_cached_nor_sniffed_and_html_is_never_framed(
    post_node: NodeUnderTest,
) -> None:
    data = encode(gradient(320, 240), "JPEG")
    created = await upload(post_node, data, name="p.jpg", photo_quality_override=OVERRIDE)
    assert created.status_code == 201, created.text
    assert _header_problems(created) == []
    crossing = created.json()
    officer = post_node.auth("officer")
    checked = {
        "/api/crossings": False,
        f"/api/crossings/{crossing['id']}": False,
        f"/api/crossings/{crossing['id']}/receipt": False,
        f"/api/crossings/{crossing['id']}/receipt.png": False,
        f"/api/crossings/{crossing['id']}/receipt.svg": False,
        f"/api/crossings/{crossing['id']}/receipt.html": True,
        f"/api/photos/{crossing['photo_sha256']}": False,
        "/api/auth/me": False,
        "/api/no-such-route": False,
    }
    failures = {}
    for url, html in checked.items():
        response = await post_node.client.get(url, headers=officer)
        assert response.status_code in (200, 404), (url, response.status_code)
        if problems := _header_problems(response, html=html):
            failures[url] = problems
    assert failures == {}
    slip = await post_node.client.get(
        f"/api/crossings/{crossing['id']}/receipt.html", headers=officer
    )
    assert slip.headers["x-frame-options"] == "DENY"
    policy = slip.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert "strict-transport-security" not in slip.headers  # plain HTTP: no HSTS
    static = await post_node.client.get("/static/css/app.css")
    assert "max-age" in static.headers["cache-control"]  # assets stay cacheable
    assert static.headers["x-content-type-options"] == "nosniff"


async def test_web_pages_keep_their_policy_and_tls_gets_hsts(post_node: NodeUnderTest) -> None:
    login = await post_node.client.get("/web/login")
    assert login.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert login.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY  # no page is ever framed
    assert login.headers["x-frame-options"] == "DENY"
    over_tls = await post_node.client.get(
        "https://testserver.local/api/auth/me", headers=post_node.auth("officer")
    )
    assert over_tls.status_code == 200
    assert over_tls.headers["strict-transport-security"].startswith("max-age=31536000")
    docs = await post_node.client.get("/schema/swagger")
    if docs.headers.get("content-type", "").startswith("text/html"):
        assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]


# ---------------------------------------------------------------- no 5xx: integers, JSON
async def test_huge_offsets_are_400_naming_the_parameter(post_node: NodeUnderTest) -> None:
    for url, role in (
        ("/api/crossings", "officer"),
        ("/api/watchlist/entries", "supervisor"),
    ):
        for value in (OVERFLOW, str(MAX_OFFSET + 1), "-1"):
            response = await post_node.client.get(
                url, params={"offset": value}, headers=post_node.auth(role)
            )
            assert response.status_code == 400, (url, value, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert "offset" in [p["name"] for p in response.json()["invalid_params"]]
        largest = await post_node.client.get(
            url, params={"offset": str(MAX_OFFSET)}, headers=post_node.auth(role)
        )
        assert largest.status_code == 200, largest.text


def _integer_parameters(app: Any) -> list[tuple[str, str, Any]]:
    found = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for name, parameter in handler.parsed_fn_signature.parameters.items():
                kinds = {
                    parameter.annotation,
                    *(inner.annotation for inner in parameter.inner_types),
                }
                if int not in kinds:
                    continue
                found.append((str(route.path), name, parameter.kwarg_definition))
    return found


@pytest.mark.parametrize("role", ["post", "national"])
def test_every_integer_parameter_has_an_upper_bound(tmp_path: Path, role: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    settings = (
        base_settings(tmp_path, url)
        if role == "post"
        else national_settings(tmp_path, "postgresql+asyncpg://unused/none")
    )
    parameters = _integer_parameters(create_app(settings))
    assert parameters, "no integer parameter found: the test looks in the wrong place"
    unbounded = [
        f"{path} {name}"
        for path, name, definition in parameters
        if not isinstance(definition, KwargDefinition) or definition.le is None
    ]
    assert unbounded == []


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


async def test_deeply_nested_json_is_400_and_logs_no_traceback(
    post_node: NodeUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    json_type = {"content-type": "application/json"}
    attempts = [
        ("/api/auth/login", nested(1000), json_type),
        (
            "/api/auth/login",
            b'{"username":"x","password":' + b"[" * 5000 + b"]" * 5000 + b"}",
            json_type,
        ),
        ("/api/crossings", nested(1000), {**json_type, **post_node.auth("officer")}),
    ]
    for url, body, headers in attempts:
        response = await post_node.client.post(url, content=body, headers=headers)
        assert response.status_code == 400, (url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["invalid_params"][0]["name"] == "body"
    multipart = await post_node.client.post(
        "/api/crossings",
        headers=post_node.auth("officer"),
        files={"crossing": (None, nested(1000).decode())},
    )
    assert multipart.status_code == 400, multipart.text
    malformed = await post_node.client.post(
        "/api/auth/login", content=b'{"username": "x", "pass', headers=json_type
    )
    assert malformed.status_code == 400, malformed.text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth(nested(MAX_JSON_DEPTH)) <= MAX_JSON_DEPTH
    assert json_depth(nested(MAX_JSON_DEPTH + 1)) == MAX_JSON_DEPTH + 1
    text = json.dumps({"remarks": "{[" * 500 + '"\\"{{'}).encode()
    assert json_depth(text) == 1
    assert json_depth(b"[" * 10_000) == 10_000


# ---------------------------------------------------------------- watchlist disclosure
def _entry(action: str, external_id: str, number: str) -> dict[str, Any]:
    return {
        "kind": "document",
        "issuing_state": "MLI",
        "document_number": number,
        "reason": "listed for this test",
        "action": action,
        "source": "INTERPOL SLTD",
        "external_id": external_id,
        "valid_from": "2024-01-01",
    }


async def test_a_protect_entry_is_not_disclosed_by_its_external_id(
    post_node: NodeUnderTest,
) -> None:
    external_id = f"X-{uuid.uuid4().hex[:8]}"
    hidden = await post_node.client.post(
        "/api/watchlist/entries",
        json=_entry("protect", external_id, unique_number()),
        headers=post_node.auth("protection"),
    )
    assert hidden.status_code == 201, hidden.text
    # the supervisor may not see protect entries: creating one under the same source and
    # external id answers exactly as if nothing were there (a new, separate entry)
    mine = await post_node.client.post(
        "/api/watchlist/entries",
        json=_entry("notify", external_id, unique_number()),
        headers=post_node.auth("supervisor"),
    )
    assert mine.status_code == 201, mine.text
    assert mine.json()["entry_id"] != hidden.json()["entry_id"]
    assert mine.json()["external_id"] == external_id
    again = await post_node.client.post(
        "/api/watchlist/entries",
        json=_entry("notify", external_id, unique_number()),
        headers=post_node.auth("supervisor"),
    )
    assert again.status_code == 409  # a collision with the supervisor's own entry
    listed = await post_node.client.get(
        "/api/watchlist/entries", headers=post_node.auth("supervisor")
    )
    assert hidden.json()["entry_id"] not in {e["entry_id"] for e in listed.json()}
    both = await post_node.client.get("/api/watchlist/entries", headers=post_node.auth("admin"))
    ids = {e["entry_id"] for e in both.json()}
    assert {hidden.json()["entry_id"], mine.json()["entry_id"]} <= ids
    # and the other way round: a protection officer learns nothing of the notify entry
    other = f"Y-{uuid.uuid4().hex[:8]}"
    visible = await post_node.client.post(
        "/api/watchlist/entries",
        json=_entry("notify", other, unique_number()),
        headers=post_node.auth("supervisor"),
    )
    assert visible.status_code == 201
    protect = await post_node.client.post(
        "/api/watchlist/entries",
        json=_entry("protect", other, unique_number()),
        headers=post_node.auth("protection"),
    )
    assert protect.status_code == 201, protect.text


# ---------------------------------------------------------------- keyed receipt binding
def test_receipt_binding_is_keyed_and_checked_offline_by_the_key_holder(
    migrated_env: dict[str, str],
) -> None:
    number = "R" + uuid.uuid4().hex[:7].upper()
    server = ServerProcess(migrated_env).start()
    try:
        created = httpx.post(
            f"{server.url}/api/crossings",
            headers=bearer(server.url, "awa"),
            json={"direction": "entry", "mrz": td3(number)},
        ).json()
    finally:
        server.stop()
    payload = created["receipt"]
    shown = json.loads(cli(migrated_env, "keys", "show").stdout)
    assert "binding_key" not in shown  # only on request
    keys = json.loads(cli(migrated_env, "keys", "show", "--binding-key").stdout)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", keys["binding_key"])
    # the QR's document bytes are not an unkeyed hash of the number any more
    raw = base45_decode(payload.split(":", 1)[1])
    binding = raw[-64 - 8 : -64]
    assert hashlib.sha256(f"MLI:{number}".encode()).digest()[:8] != binding
    # a verifier elsewhere, holding the public key and the binding key, checks it offline
    elsewhere = {
        **migrated_env,
        "BORDERPOST_DATA_DIR": str(Path(migrated_env["BORDERPOST_DATA_DIR"]).parent / "verifier"),
    }
    key_options = ["--key", f"MR-GOGUI={keys['public_key']}"]
    signature_only = json.loads(cli(elsewhere, "receipt", "verify", payload, *key_options).stdout)
    assert signature_only["valid"] is True and "document_matches" not in signature_only
    no_key = cli(
        elsewhere,
        "receipt",
        "verify",
        payload,
        *key_options,
        "--document",
        f"MLI:{number}",
        check=False,
    )
    assert no_key.returncode == 2 and "binding" in no_key.stderr
    binding_option = ["--binding-key", f"MR-GOGUI={keys['binding_key']}"]
    good = cli(
        elsewhere,
        "receipt",
        "verify",
        payload,
        *key_options,
        *binding_option,
        "--document",
        f"MLI:{number.lower()}",
    )
    assert json.loads(good.stdout)["document_matches"] is True
    wrong = cli(
        elsewhere,
        "receipt",
        "verify",
        payload,
        *key_options,
        *binding_option,
        "--document",
        "MLI:R0000000",
        check=False,
    )
    assert wrong.returncode == 1
    assert json.loads(wrong.stdout)["reason"] == "document_mismatch"


async def test_the_desk_says_why_a_photo_is_refused_in_the_officers_language(
    web: Web,  # noqa: F811 - the fixture imported above
) -> None:
    await web.login("officer")  # French, the default language
    refused = await web.client.post(
        "/web/desk/photo",
        files={"photo": ("bilevel.png", huge_png(4000, 3000), "image/png")},
        headers=web.headers(),
    )
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["title"] == gettext_for("fr")("Photo refused") == "Photo refusée"
    assert problem["detail"] == gettext_for("fr")(PHOTO_REFUSALS["unsupported_mode"])
    assert problem["detail"].startswith("Les images en noir et blanc")
    assert problem["invalid_params"][0]["name"] == "photo"
    too_large = await web.client.post(
        "/web/desk/photo",
        files={"photo": ("bomb.png", huge_png(6324, 6324), "image/png")},
        headers=web.headers(),
    )
    assert too_large.status_code == 413
    assert "4000" in too_large.json()["detail"] and "12.0" in too_large.json()["detail"]


MALFORMED_BODIES = [
    ("/api/crossings", b'--xyz\r\nContent-Disposition: form-data; name="crossing"\r\n\r\n{"d',
     "multipart/form-data; boundary=xyz"),
    ("/api/crossings", b'{"direction": "\xff\xfe"}', "application/json"),
    ("/api/auth/login", b"\xff\xfe", "application/json"),
    ("/api/auth/login", b'{"username": "x", "password": NaN}', "application/json"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "body", "content_type"), MALFORMED_BODIES)
async def test_a_malformed_body_is_400_naming_the_body(
    post_node: NodeUnderTest, url: str, body: bytes, content_type: str
) -> None:
    before = await snapshot(post_node)
    response = await post_node.client.post(
        url, content=body, headers={**post_node.auth("officer"), "content-type": content_type}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["invalid_params"][0]["name"] == "body"
    assert await snapshot(post_node) == before


@pytest.mark.faces
async def test_a_dropped_upload_keeps_its_decode_slot_until_its_thread_ends(
    tmp_path: Path,
) -> None:
    settings = replace(
        base_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}"),
        photo_decode_slots=1,
        photo_decode_waiting=3,
    )
    noise = np.random.default_rng(7).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "WEBP", quality=80, method=0)  # slow to decode
    limiter = decode_slots(settings)
    upload = asyncio.create_task(analyse_upload(data, settings))
    await asyncio.sleep(0.05)
    assert limiter.decoding == 1
    upload.cancel()  # the client went away; the decoding thread cannot be stopped
    await asyncio.sleep(0.02)
    assert limiter.decoding == 1  # so its slot stays taken until the thread is done
    with pytest.raises(asyncio.CancelledError):
        await upload
    assert limiter.decoding == 0 and limiter.waiting == 0
