"""Offline images: a tenant's `docker save` tarballs of image references, carried in by bundles.

A deployment of the tenant that names one of these references runs the stored image, loaded
under a catalog-owned name (workers/deploy/images.py), and never asks a registry: what an
isolated site needs. A tarball is checked like a bundled one before it is recorded, and must
hold an image tagged with the reference it is stored under. A reference holds one tarball:
the same bytes again are the same image (idempotent), other bytes are a conflict.

Bundle keys: the Ed25519 public keys an admin trusts to sign the bundles imported here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import BinaryIO

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.auth import Principal, require_role
from catalog.errors import Conflict, NotFound, ValidationFailed
from catalog.models import BundleKey, OfflineImage
from catalog.services import audit
from catalog.services.blobs import BlobStore
from catalog.services.quotas import QuotaExceeded, lock_tenant
from packages.errors import ImageError
from packages.imageref import RegistryPolicy, reference_problem
from packages.images import check_image_tarball
from packages.limits import OFFLINE_IMAGE_LIMITS


def _refuse(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"path": field, "message": message}])


def receive_image(
    session: Session,
    principal: Principal,
    blobs: BlobStore,
    body: Callable[[], BinaryIO],
    max_bytes: int,
    *,
    reference: str,
    registries: RegistryPolicy,
    expected_digest: str | None = None,
    tenant_max_bytes: int | None = None,
) -> tuple[OfflineImage, bool]:
    """Record the tarball `body` gives as the caller's tenant's image `reference`; (the row,
    whether it is new). Nothing is kept of a refused tarball, nor of one whose digest is not
    `expected_digest` (what a bundle listed for it)."""
    require_role(principal, "publisher")
    try:
        problem = reference_problem(reference, registries)
    except ValueError as exc:
        problem = str(exc)
    if problem is None and "@" in reference:
        # Nothing here could check that the tarball is the image that digest names.
        problem = "is pinned by a digest: it is pulled by that digest, never stored offline"
    if problem:
        raise _refuse("reference", f"image {reference} {problem}")
    with blobs.receive(body(), max_bytes) as (path, digest, size):
        if expected_digest is not None and digest != expected_digest:
            raise _refuse("digest", f"the tarball received is {digest}, not {expected_digest}")
        if tenant_max_bytes is not None:
            _check_quota(session, principal.tenant_id, size, tenant_max_bytes)
        try:
            with path.open("rb") as stream:
                tarball = check_image_tarball(stream, reference, OFFLINE_IMAGE_LIMITS)
            tarball.select(reference)
        except ImageError as exc:
            raise ValidationFailed(
                f"not an image tarball of {reference}",
                errors=[{"path": "body", "message": str(p)} for p in exc.problems],
            ) from None
        existing = _find(session, principal.tenant_id, reference)
        if existing is not None:
            return _same(existing, digest), False
        image = OfflineImage(
            tenant_id=principal.tenant_id,
            reference=reference,
            digest=digest,
            size=size,
            created_by=principal.token_id,
        )
        session.add(image)
        stored = False
        try:
            session.flush()
            audit.record(session, principal, "image.upload", "offline_image", reference,
                         detail={"digest": digest, "size": size})  # fmt: skip
            stored = blobs.store(path, digest)
            session.commit()
        except IntegrityError:  # the same reference, recorded meanwhile
            session.rollback()
            _forget(session, blobs, digest, stored)
            existing = _find(session, principal.tenant_id, reference)
            if existing is None:
                raise
            return _same(existing, digest), False
        except BaseException:
            session.rollback()
            _forget(session, blobs, digest, stored)
            raise
        return image, True


def _check_quota(session: Session, tenant_id: str, size: int, limit: int) -> None:
    lock_tenant(session, tenant_id)
    held = session.scalar(
        select(func.coalesce(func.sum(OfflineImage.size), 0)).where(
            OfflineImage.tenant_id == tenant_id
        )
    )
    if int(held or 0) + size > limit:
        raise QuotaExceeded(
            f"the tenant's offline images would hold {int(held or 0) + size} bytes, more than "
            f"CATALOG_TENANT_MAX_OFFLINE_IMAGE_BYTES ({limit}); remove some first"
        )


def _same(existing: OfflineImage, digest: str) -> OfflineImage:
    if existing.digest != digest:
        raise Conflict(
            f"image {existing.reference} is here already with another tarball "
            f"({existing.digest}); remove it first to replace it"
        )
    return existing


def _find(session: Session, tenant_id: str, reference: str) -> OfflineImage | None:
    return session.scalar(
        select(OfflineImage).where(
            OfflineImage.tenant_id == tenant_id, OfflineImage.reference == reference
        )
    )


def _forget(session: Session, blobs: BlobStore, digest: str, stored: bool) -> None:
    if stored and not session.scalar(select(OfflineImage.id).where(OfflineImage.digest == digest)):
        blobs.delete(digest)


def find_image(session: Session, tenant_id: str, reference: str) -> OfflineImage | None:
    """The tenant's offline image of `reference`, if it has one (the workers' lookup)."""
    return _find(session, tenant_id, reference)


def list_images(
    session: Session, principal: Principal, reference: str | None = None, *, every_tenant=False
) -> list[OfflineImage]:
    """The caller's tenant's offline images (an admin asking: every tenant's), by reference."""
    require_role(principal, "viewer")
    query = select(OfflineImage).order_by(OfflineImage.reference, OfflineImage.id)
    if not (principal.is_admin and every_tenant):
        query = query.where(OfflineImage.tenant_id == principal.tenant_id)
    if reference is not None:
        query = query.where(OfflineImage.reference == reference)
    return list(session.scalars(query))


def delete_image(session: Session, principal: Principal, blobs: BlobStore, image_id: str) -> None:
    require_role(principal, "publisher")
    query = select(OfflineImage).where(OfflineImage.id == image_id)
    if not principal.is_admin:
        query = query.where(OfflineImage.tenant_id == principal.tenant_id)
    image = session.scalar(query)
    if image is None:
        raise NotFound(f"no image {image_id!r}")
    session.delete(image)
    audit.record(session, principal, "image.delete", "offline_image", image.reference,
                 tenant_id=image.tenant_id)  # fmt: skip
    session.flush()
    left = session.scalar(
        select(func.count()).select_from(OfflineImage).where(OfflineImage.digest == image.digest)
    )
    session.commit()
    if not left:
        blobs.delete(image.digest)


# -- bundle keys --------------------------------------------------------------------------------


def public_key_problem(text: str) -> str | None:
    """Why `text` is not an Ed25519 public key in base64 (32 bytes), or None."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return "must be base64"
    return None if len(raw) == 32 else "must be an Ed25519 public key (32 bytes in base64)"


def register_key(
    session: Session, principal: Principal, *, name: str, public_key: str
) -> BundleKey:
    require_role(principal, "admin")
    if problem := public_key_problem(public_key):
        raise _refuse("public_key", problem)
    if session.scalar(select(BundleKey.id).where(BundleKey.public_key == public_key)):
        raise Conflict("this key is registered already")
    key = BundleKey(name=name, public_key=public_key, created_by=principal.token_id)
    session.add(key)
    session.flush()
    audit.record(session, principal, "bundle_key.create", "bundle_key", key.id,
                 detail={"name": name})  # fmt: skip
    session.commit()
    return key


def list_keys(session: Session, principal: Principal) -> list[BundleKey]:
    """Every trusted key: public keys are no secret, and an importer checks against them."""
    require_role(principal, "viewer")
    return list(session.scalars(select(BundleKey).order_by(BundleKey.created_at, BundleKey.id)))


def delete_key(session: Session, principal: Principal, key_id: str) -> None:
    require_role(principal, "admin")
    key = session.get(BundleKey, key_id)
    if key is None:
        raise NotFound(f"no bundle key {key_id!r}")
    session.delete(key)
    audit.record(session, principal, "bundle_key.delete", "bundle_key", key.id)
    session.commit()
