"""Baseline for bench/registration.py: a bare Litestar handler doing one INSERT through the
same stack (uvicorn, Litestar, SQLAlchemy async engine, aiosqlite, WAL + synchronous=FULL)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, post
from sqlalchemy import text

from registry.db import make_engine
from registry.settings import Settings

settings = Settings(data_dir=Path(os.environ["BASELINE_DATA_DIR"]))
engine = make_engine(settings)


@asynccontextmanager
async def lifespan(_: Litestar) -> AsyncIterator[None]:
    async with engine.begin() as conn:
        await conn.execute(
            text("CREATE TABLE IF NOT EXISTS baseline_crossing (id TEXT PRIMARY KEY, body TEXT)")
        )
    yield
    await engine.dispose()


@post("/insert", status_code=201)
async def insert(request: Request[Any, Any, Any]) -> dict[str, str]:
    body = await request.json()
    row_id = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO baseline_crossing (id, body) VALUES (:id, :body)"),
            {"id": row_id, "body": json.dumps(body)},
        )
    return {"id": row_id}


app = Litestar(route_handlers=[insert], lifespan=[lifespan])
