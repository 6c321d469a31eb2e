"""Node settings: one object read from BORDERPOST_* variables and an optional TOML file.

Nothing else in the code base reads the environment for configuration.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from registry.stays import StayRules, default_stay_rules

DEV_SECRET = "dev-insecure-secret-change-me"
NodeRole = Literal["post", "national"]


class SettingsError(ValueError):
    """A setting is missing, malformed or unsafe for this node's role."""


@dataclass(frozen=True)
class Settings:
    """Configuration of one Borderpost node (post or national)."""

    role: NodeRole = "post"
    node_code: str = "MR-GOGUI"
    country: str = "MRT"
    partner_country: str = "MLI"
    data_dir: Path = Path("var")
    database_url: str = ""
    timezone: str = "Africa/Nouakchott"
    secret_key: str = DEV_SECRET
    host: str = "127.0.0.1"
    port: int = 8000
    token_ttl_hours: int = 12
    max_photo_bytes: int = 10 * 1024 * 1024
    max_photo_pixels: int = 12_000_000  # a portrait: 12 MP at most ...
    max_photo_side: int = 4000  # ... and 4000 px a side
    photo_decode_slots: int = 1  # photos decoded at once (a 2-core post: one core for the loop)
    photo_decode_waiting: int = 16  # photos waiting for a slot; more are answered 503
    offline_warning_days: int = 7
    stay_rules_json: str = ""
    face_tolerance: float = 0.6
    # the biometric plug-in (entry point in group borderpost.biometrics) that assesses and
    # encodes portraits; checked when the node starts (registry.photos.face_modality)
    face_modality: str = "face"
    sync_interval_seconds: float = 30.0
    sync_batch_records: int = 10000  # post: most records in one pushed batch
    sync_batch_bytes: int = 8_000_000  # post: most JSON bytes in one batch (about 1 MB sent)
    watchlist_refresh_seconds: float = 30.0
    web_idle_minutes: int = 15  # a web session idle this long is revoked
    login_delay_seconds: float = 1.0  # wait after 3 failed logins, doubled by each failure
    login_lockout_failures: int = 10  # failed logins that lock an account (5x for an address)
    login_lockout_seconds: float = 900.0  # how long a lockout lasts
    agreement_file: str = ""  # national: the signed data-sharing agreement (TOML)
    agreement_key_file: str = ""  # national: the agreement's shared HMAC key (0600)
    # national, development only: the agreement's parties may have http:// or example URLs
    agreement_development_urls: bool = False
    link_ca_file: str = ""  # node links: CA bundle (PEM) that vouches for peers' certificates
    allow_plain_http_links: bool = False  # a post, development only: http:// to any host
    debug: bool = False

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'borderpost.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def node_key_path(self) -> Path:
        return self.data_dir / "keys" / "node_ed25519.pem"

    @property
    def photo_dir(self) -> Path:
        return self.data_dir / "photos"

    @property
    def stay_rules(self) -> StayRules:
        """The configured rules; this country's own citizens are unlimited unless named."""
        if not self.stay_rules_json:
            return default_stay_rules(self.partner_country, country=self.country)
        return StayRules.from_mapping(json.loads(self.stay_rules_json)).for_country(self.country)

    def validate(self) -> Settings:
        """Raise SettingsError when the configuration is unusable or unsafe."""
        if self.role not in ("post", "national"):
            raise SettingsError(f"BORDERPOST_ROLE must be 'post' or 'national', not {self.role!r}")
        if not self.node_code or not self.node_code.replace("-", "").isalnum():
            raise SettingsError("BORDERPOST_NODE_CODE must look like MR-GOGUI")
        if min(self.max_photo_pixels, self.max_photo_side, self.photo_decode_slots) < 1:
            raise SettingsError(
                "BORDERPOST_MAX_PHOTO_PIXELS, _MAX_PHOTO_SIDE and _PHOTO_DECODE_SLOTS must be >= 1"
            )
        if len(self.country) != 3 or not self.country.isalpha():
            raise SettingsError("BORDERPOST_COUNTRY must be an ICAO 3-letter code, e.g. MRT")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(f"BORDERPOST_TIMEZONE {self.timezone!r} is unknown") from exc
        if self.role == "national":
            self._refuse_development_secrets()
        if (
            self.login_lockout_failures < 4
            or min(self.login_delay_seconds, self.login_lockout_seconds) <= 0
        ):
            raise SettingsError(
                "BORDERPOST_LOGIN_LOCKOUT_FAILURES must be at least 4 and the login delays positive"
            )
        try:
            self.stay_rules  # noqa: B018 - parse to validate
        except (ValueError, json.JSONDecodeError) as exc:
            raise SettingsError(f"BORDERPOST_STAY_RULES_JSON is invalid: {exc}") from exc
        return self

    def _refuse_development_secrets(self) -> None:
        if self.secret_key == DEV_SECRET or len(self.secret_key) < 32:
            raise SettingsError(
                "role=national refuses the development secret: set BORDERPOST_SECRET_KEY "
                "to at least 32 random characters"
            )
        if self.is_sqlite:
            raise SettingsError("role=national needs PostgreSQL (BORDERPOST_DATABASE_URL)")
        if self.allow_plain_http_links:
            raise SettingsError(
                "role=national refuses BORDERPOST_ALLOW_PLAIN_HTTP_LINKS: links to the "
                "partner must use https (see deploy/TLS.md)"
            )


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


_CASTS: dict[str, Any] = {
    "debug": _boolean,
    "allow_plain_http_links": _boolean,
    "agreement_development_urls": _boolean,
    "data_dir": Path,
    "port": int,
    "token_ttl_hours": int,
    "max_photo_bytes": int,
    "max_photo_pixels": int,
    "max_photo_side": int,
    "photo_decode_slots": int,
    "photo_decode_waiting": int,
    "offline_warning_days": int,
    "face_tolerance": float,
    "sync_interval_seconds": float,
    "sync_batch_records": int,
    "sync_batch_bytes": int,
    "web_idle_minutes": int,
    "login_delay_seconds": float,
    "login_lockout_failures": int,
    "login_lockout_seconds": float,
    "watchlist_refresh_seconds": float,
}


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build settings from BORDERPOST_CONFIG (TOML file) then BORDERPOST_* variables."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    config_file = env.get("BORDERPOST_CONFIG")
    if config_file:
        with open(config_file, "rb") as handle:
            values.update(tomllib.load(handle))
    for spec in fields(Settings):
        key = f"BORDERPOST_{spec.name.upper()}"
        if key in env:
            values[spec.name] = env[key]
    known = {spec.name for spec in fields(Settings)}
    unknown = set(values) - known
    if unknown:
        raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
    for name, cast in _CASTS.items():
        if name in values:
            try:
                values[name] = cast(values[name])
            except ValueError as exc:
                raise SettingsError(f"BORDERPOST_{name.upper()}: {exc}") from exc
    return replace(Settings(), **values).validate()
