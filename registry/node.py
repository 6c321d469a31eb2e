"""The running node: settings, database, signing key, biometric modalities (the primary face
modality and the others, ``registry.modalities``) and in-memory indexes, built once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from biometrics.plugins import BiometricModality
from registry.audit import AuditJournal
from registry.db import Database
from registry.idempotency import IdempotencyLocks
from registry.modalities import other_modalities, start_modalities
from registry.photos import face_modality
from registry.receipts import load_or_create_node_key, receipt_binding_key
from registry.security import TokenCache
from registry.settings import Settings
from registry.stays import StayRules
from registry.throttle import LoginPolicy, LoginThrottle
from registry.watchlists.matcher import WatchlistMatcher

if TYPE_CHECKING:  # types only: registration itself takes the node (no import at run time)
    from registry.crossings.registration import PreparedRegistration, Registration


class RegistrationQueue(Protocol):
    """What the node offers registration: the group-commit writer of prepared registrations
    (``registry.crossings.registration_writer.RegistrationWriter``, set by ``Node.build``)."""

    async def submit(self, item: PreparedRegistration) -> Registration:
        """Queue ``item``; the answer once the batch holding it has committed (or the
        Problem that refused it)."""
        ...


@dataclass
class Node:
    """Everything a service needs besides the session and the acting officer."""

    settings: Settings
    db: Database
    signing_key: Ed25519PrivateKey
    trusted_keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    registrations: RegistrationQueue = field(init=False, repr=False, compare=False)  # build()
    audit_journal: AuditJournal = field(init=False)  # audit events of reads (group commit)
    tokens: TokenCache = field(default_factory=TokenCache)
    watchlists: WatchlistMatcher = field(default_factory=WatchlistMatcher)
    logins: LoginThrottle = field(default_factory=LoginThrottle)  # failed-login throttling
    idempotency: IdempotencyLocks = field(default_factory=IdempotencyLocks)  # Idempotency-Key
    stay_rules_override: StayRules | None = None  # pulled from national, if any

    def __post_init__(self) -> None:
        self.audit_journal = AuditJournal(self.db)

    @property
    def receipt_binding_key(self) -> bytes:
        """The key of the document binding in this node's receipts (``registry.receipts``)."""
        return receipt_binding_key(self.signing_key)

    @property
    def stay_rules(self) -> StayRules:
        return self.stay_rules_override or self.settings.stay_rules

    @property
    def face_modality(self) -> BiometricModality:
        """The biometric plug-in that assesses and encodes this node's portraits
        (``settings.face_modality``, loaded once: ``registry.photos.face_modality``)."""
        return face_modality(self.settings)

    @classmethod
    def build(cls, settings: Settings) -> Node:
        """The node of ``settings``; SettingsError (before anything is opened) when its face
        modality is not an installed biometric plug-in."""
        # every installed modality discovered, the primary one picked, once, at start: an
        # unknown primary name stops the node here
        start_modalities(settings)
        key = load_or_create_node_key(settings.node_key_path)
        node = cls(settings=settings, db=Database(settings), signing_key=key)
        node.trusted_keys[settings.node_code] = key.public_key()
        from registry.crossings.registration_writer import RegistrationWriter

        node.registrations = RegistrationWriter(node)
        node.watchlists = WatchlistMatcher(
            face_tolerance=settings.face_tolerance, modalities=other_modalities(settings)
        )
        node.logins = LoginThrottle(
            LoginPolicy(
                delay_s=settings.login_delay_seconds,
                lockout_failures=settings.login_lockout_failures,
                lockout_s=settings.login_lockout_seconds,
            )
        )
        return node
