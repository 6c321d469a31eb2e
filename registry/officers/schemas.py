"""Request schemas of the officers slice (msgspec): logging in, creating an account, changing
one's own password and an administrator's reset."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from registry.schemas import CleanText
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
