"""Request and response schemas of the officers slice (msgspec): logging in, creating an
account, changing one's own password and an administrator's reset; an account as the API shows
it, a login's answer and a logout's."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from registry.schemas import CleanText, IsoDateTime
from registry.text import identifier, person_name
from registry.vocabulary import Role

FULL_NAME = person_name(200, min_length=1)
USERNAME = identifier(64, min_length=1)


class LoginRequest(CleanText, forbid_unknown_fields=True):
    """The username is cleaned before anything else sees it: a refused one is never audited.
    The password is never cleaned (it is only hashed and compared)."""

    username: Annotated[str, Meta(min_length=1, max_length=64), USERNAME]
    password: Annotated[str, Meta(min_length=1, max_length=200)]


class OfficerCreate(CleanText, forbid_unknown_fields=True):
    username: Annotated[str, Meta(pattern=r"^[a-z0-9._-]{3,64}$"), USERNAME]
    full_name: Annotated[str, Meta(min_length=1, max_length=200), FULL_NAME]
    role: Role
    password: Annotated[str, Meta(min_length=10, max_length=200)]
    home_post: Annotated[str, Meta(pattern=r"^[A-Z]{2}-[A-Z0-9-]{2,28}$")] | None = None
    language: Literal["fr", "ar", "en"] = "fr"


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    """An officer's own change: the current password, then the new one (policy of account
    creation: 10 characters or more). Passwords are never cleaned, only hashed."""

    current_password: Annotated[str, Meta(min_length=1, max_length=200)]
    new_password: Annotated[str, Meta(min_length=10, max_length=200)]


class PasswordReset(msgspec.Struct, forbid_unknown_fields=True):
    """An administrator's reset of another account at their node: a temporary password the
    officer must change at their next login."""

    password: Annotated[str, Meta(min_length=10, max_length=200)]


class OfficerView(msgspec.Struct, kw_only=True):
    """An account as the API shows it (``service.officer_view``): ``login_locked_until`` is
    set while its logins are locked out after too many failures."""

    id: uuid.UUID
    username: str
    full_name: str
    role: Role
    home_post: str
    language: Literal["fr", "ar", "en"]
    active: bool
    must_change_password: bool
    login_locked_until: IsoDateTime | None


class LoginAnswer(msgspec.Struct, kw_only=True):
    """A bearer token and the account; a browser client that uses the session cookie sends
    ``csrf_token`` in ``X-CSRF-Token`` with every request that changes something."""

    token: str
    token_type: Literal["bearer"]
    csrf_token: str
    officer: OfficerView


class LogoutAnswer(msgspec.Struct, kw_only=True):
    """The session is over (its token revoked, its cookies cleared)."""

    status: Literal["logged out"]
