"""A person's timeline at headquarters: every current crossing, at every post, of a traveller
record and of the records LINKED to it, each link with its evidence (same document, a close
face, or the same date of birth and a close name). Records are never merged. The read is
audited with the linked records and the crossings it returned.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from biometrics.engine import decode_template
from registry.audit import audit
from registry.crossings.records import traveller_view
from registry.crossings.registration import current_version_filter
from registry.crossings.search import travellers_by_id, views_with_people
from registry.hq.search import DOB_CANDIDATES, NAME_CUTOFF, name_matches, score_names
from registry.models import Crossing, Officer, Photo, TravelDocument, Traveller
from registry.node import Node
from registry.problems import Problem

NAME_LINK_THRESHOLD = 90.0
FACE_NAME_CANDIDATES = 1000


@dataclass
class Link:
    """A traveller record linked to the one asked about, with every piece of evidence."""

    traveller: Traveller
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def confidence(self) -> float:
        return max(item["confidence"] for item in self.evidence)

    def as_json(self) -> dict[str, Any]:
        order = {"document": 0, "face": 1, "name_dob": 2}
        evidence = sorted(self.evidence, key=lambda item: order[item["kind"]])
        return {
            "traveller": traveller_view(self.traveller),
            "confidence": self.confidence,
            "evidence": evidence,
        }


async def _load_traveller(session: AsyncSession, traveller_id: uuid.UUID) -> Traveller:
    traveller = await session.get(Traveller, traveller_id)
    if traveller is None:
        raise Problem(404, "Not found", field="traveller_id", detail="no traveller has this id")
    return traveller


Evidence = list[tuple[uuid.UUID, dict[str, Any]]]


async def _document_links(session: AsyncSession, root: Traveller) -> Evidence:
    """Other records holding a document with the same issuing state and normalised number."""
    mine = select(col(TravelDocument.issuing_state), col(TravelDocument.number_norm)).where(
        col(TravelDocument.traveller_id) == root.id
    )
    query = select(TravelDocument).where(
        tuple_(TravelDocument.issuing_state, TravelDocument.number_norm).in_(mine),
        col(TravelDocument.traveller_id) != root.id,
    )
    documents = (await session.scalars(query)).all()
    return [
        (
            document.traveller_id,
            {
                "kind": "document",
                "confidence": 1.0,
                "issuing_state": document.issuing_state,
                "number": document.number_norm,
            },
        )
        for document in documents
    ]


async def _same_birth_date(session: AsyncSession, root: Traveller) -> list[Traveller]:
    if root.date_of_birth is None:
        return []
    query = (
        select(Traveller)
        .where(col(Traveller.date_of_birth) == root.date_of_birth, col(Traveller.id) != root.id)
        .limit(DOB_CANDIDATES)
    )
    return list((await session.scalars(query)).all())


def _name_dob_evidence(root: Traveller, others: Iterable[Traveller]) -> Evidence:
    return [
        (
            other.id,
            {
                "kind": "name_dob",
                "confidence": round(score / 100, 4),
                "similarity": score,
                "date_of_birth": other.date_of_birth.isoformat() if other.date_of_birth else None,
            },
        )
        for score, other in score_names(root.name_key, others, NAME_LINK_THRESHOLD)
    ]


async def _face_templates(
    session: AsyncSession, traveller_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, np.ndarray]:
    """Every face encoding seen on each traveller's crossings, as one matrix per traveller."""
    ids = list(set(traveller_ids))
    vectors: dict[uuid.UUID, dict[str, np.ndarray]] = defaultdict(dict)
    for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
        query = (
            select(col(Crossing.traveller_id), col(Photo.sha256), col(Photo.face_encoding))
            .join(Photo, col(Photo.sha256) == col(Crossing.photo_sha256))
            .where(col(Crossing.traveller_id).in_(chunk), col(Photo.face_encoding).is_not(None))
        )
        for traveller_id, sha256, encoding in (await session.execute(query)).all():
            if encoding is None:  # never: the query keeps only photos with one
                continue
            try:
                vectors[traveller_id][sha256] = decode_template(encoding)
            except ValueError:  # a post's unreadable template (wrong size, NaN) is no evidence
                continue
    return {tid: np.stack(list(rows.values())) for tid, rows in vectors.items()}


def _face_evidence(
    root: np.ndarray | None, others: dict[uuid.UUID, np.ndarray], tolerance: float
) -> Evidence:
    """Records whose closest pair of encodings is within ``tolerance`` (confidence 1 - d)."""
    if root is None:
        return []
    evidence = []
    for traveller_id, matrix in others.items():
        distances = np.linalg.norm(matrix[:, None, :] - root[None, :, :], axis=2)
        distance = round(float(distances.min()), 4)
        if distance <= tolerance:
            confidence = round(max(0.0, 1.0 - distance), 4)
            evidence.append(
                (traveller_id, {"kind": "face", "confidence": confidence, "distance": distance})
            )
    return evidence


async def _face_links(
    session: AsyncSession, node: Node, root: Traveller, people: dict[uuid.UUID, Traveller]
) -> Evidence:
    """Face evidence against the known candidates plus the records with a similar name;
    nothing to do (no query) when the root record has no face encoding."""
    root_faces = (await _face_templates(session, [root.id])).get(root.id)
    if root_faces is None:
        return []
    matches = await name_matches(
        session, root.name_key, None, cutoff=NAME_CUTOFF, limit=FACE_NAME_CANDIDATES
    )
    people.update({t.id: t for _, t in matches if t.id != root.id})
    others = await _face_templates(session, people)
    return _face_evidence(root_faces, others, node.settings.face_tolerance)


async def linked_records(session: AsyncSession, node: Node, root: Traveller) -> list[Link]:
    """Traveller records of any post linked to ``root`` (one hop, no transitive chains).

    Evidence: ``document`` (same issuing state and normalised number, confidence 1.0);
    ``name_dob`` (same date of birth, ``name_similarity`` >= 90, confidence similarity/100);
    ``face`` (closest face encodings within ``settings.face_tolerance``, confidence
    1 - distance). Faces are compared with the records found by document, by date of birth
    or by a name scoring 85 or more, not with the whole national gallery (that needs an
    in-memory 1:N index, biometrics.index.FaceIndex, which national does not hold yet).
    """
    by_document = await _document_links(session, root)
    same_dob = await _same_birth_date(session, root)
    people = {t.id: t for t in same_dob}
    people.update(await travellers_by_id(session, (tid for tid, _ in by_document)))
    by_name = _name_dob_evidence(root, same_dob)
    by_face = await _face_links(session, node, root, people)
    links: dict[uuid.UUID, Link] = {}
    for traveller_id, evidence in [*by_document, *by_name, *by_face]:
        links.setdefault(traveller_id, Link(people[traveller_id])).evidence.append(evidence)
    return sorted(links.values(), key=lambda link: (-link.confidence, str(link.traveller.id)))


async def person_timeline(
    session: AsyncSession, *, node: Node, officer: Officer, traveller_id: uuid.UUID
) -> dict[str, Any]:
    """Every current crossing, at every post, of a traveller and of the records linked to it,
    oldest first; the linked records are listed apart with their evidence, never merged."""
    root = await _load_traveller(session, traveller_id)
    links = await linked_records(session, node, root)
    ids = [root.id, *(link.traveller.id for link in links)]
    query = (
        select(Crossing)
        .where(col(Crossing.traveller_id).in_(ids), current_version_filter())
        .order_by(col(Crossing.occurred_at), col(Crossing.id))
    )
    crossings = list((await session.scalars(query)).all())
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="read",
        record_type="traveller",
        record_id=root.id,
        purpose="hq_timeline",
        detail={
            "linked": [str(link.traveller.id) for link in links],
            "crossings": [str(c.id) for c in crossings],
        },
    )
    return {
        "traveller": traveller_view(root),
        "linked": [link.as_json() for link in links],
        "crossings": await views_with_people(session, node, crossings),
    }
