"""The watchlist's galleries of the node's other biometric modalities (``registry.modalities``):
one per modality, of the templates its active entries were enrolled with
(``WatchlistEntry.modality_templates``), searched by the plug-in's own ``identify``.

Part of the matcher's listing (``registry.watchlists.matcher``): built, updated by entry
version and swapped with it, under its lock. No I/O. A plug-in that raises while identifying
is logged and skipped: it never fails a registration.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from biometrics.plugins import BiometricModality

log = logging.getLogger("borderpost.biometrics")

# How many gallery entries a plug-in ranks per probe (as many as the face index does).
CANDIDATES = 16


def stored_template(value: Any) -> bytes | None:
    """The template of one ``modality_templates`` value (``ModalityTemplate.as_json``), or
    None when the value is not one (a row from elsewhere is not trusted to be)."""
    if not isinstance(value, Mapping):
        return None
    text = value.get("template")
    if not isinstance(text, str):
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


class Galleries:
    """``{modality name: {entry key: template}}`` for the modalities the node runs."""

    def __init__(self, modalities: Mapping[str, BiometricModality]) -> None:
        self.modalities = modalities
        self.templates: dict[str, dict[str, bytes]] = {name: {} for name in modalities}

    def add(self, key: str, stored: Mapping[str, Any] | None) -> None:
        """Add an entry's templates (those of modalities this node does not run are kept out:
        nothing here could compare them)."""
        for name, value in (stored or {}).items():
            gallery = self.templates.get(name)
            template = stored_template(value)
            if gallery is not None and template is not None:
                gallery[key] = template

    def discard(self, key: str) -> None:
        for gallery in self.templates.values():
            gallery.pop(key, None)

    def __len__(self) -> int:
        return sum(map(len, self.templates.values()))

    def identify(self, probes: Mapping[str, bytes]) -> list[tuple[str, float, str]]:
        """``(modality name, similarity, entry key)`` of every gallery entry a probe matches:
        the plug-in's best candidates whose similarity reaches its ``match_threshold``."""
        found: list[tuple[str, float, str]] = []
        for name, probe in probes.items():
            modality, gallery = self.modalities.get(name), self.templates.get(name)
            if modality is None or not gallery:
                continue
            try:
                ranked = modality.identify(
                    probe, MappingProxyType(gallery), min(CANDIDATES, len(gallery))
                )
                threshold = float(modality.match_threshold)
                found += [
                    (name, float(similarity), key)
                    for key, similarity in ranked
                    if key in gallery and float(similarity) >= threshold
                ]
            except Exception:  # noqa: BLE001 - a third-party plug-in must not fail a registration
                log.warning("biometric plug-in %r failed to identify; skipped", name, exc_info=True)
        return found
