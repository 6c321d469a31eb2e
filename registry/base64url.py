"""Unpadded base64url (RFC 4648 §5): the one text form of keys, signatures and signed
headers between nodes, of audit checkpoint signatures, agreement signatures, blinded
exchange values and receipt keys."""

from __future__ import annotations

import base64


def b64url(data: bytes) -> str:
    """``data`` as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Decode base64url, padded or not; ValueError (``binascii.Error``) when ``text`` holds
    anything else: it is received from others, so nothing in it is skipped."""
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
