"""A fake iris modality used only by tests to exercise entry-point plug-in discovery.

Honest but trivial: the template of a sample is its SHA-256 digest, so two samples match
(similarity 1.0) exactly when their bytes are identical, and never otherwise (0.0).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from biometrics.quality import QualityReason, QualityReport


class IrisModality:
    """Exact-byte-match "iris" plug-in."""

    name = "iris"
    modality = "IRIS"
    match_threshold = 1.0

    def quality(self, sample: bytes) -> QualityReport:
        if not sample:
            reason = QualityReason("empty", "no iris sample received")
            return QualityReport(score=0, passed=False, reasons=[reason], metrics={})
        return QualityReport(score=100, passed=True, reasons=[], metrics={"bytes": len(sample)})

    def extract_template(self, sample: bytes) -> bytes | None:
        return hashlib.sha256(sample).digest() if sample else None

    def match(self, a: bytes, b: bytes) -> float:
        return 1.0 if hmac.compare_digest(a, b) else 0.0

    def identify(
        self, probe: bytes, gallery: Mapping[str, bytes], k: int
    ) -> list[tuple[str, float]]:
        scored = sorted(
            ((key, self.match(probe, template)) for key, template in gallery.items()),
            key=lambda item: (-item[1], item[0]),
        )
        return scored[: max(k, 0)]
