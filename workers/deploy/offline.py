"""Offline images: a tenant's stored `docker save` tarball of a reference, run without a registry.

When the deploying tenant holds an offline image of a service's reference (an offline bundle
carried it in, catalog/services/offline_images.py), the worker runs that image and never asks
a registry. It is loaded exactly as a bundled image is (workers/deploy/images.py): checked
again, rewritten so that its only tag is a catalog-owned name of the tenant's, derived from the
tarball's digest, and run by id. So a tenant's tarball never re-points the engine's own
`nginx:1.25` for others, and a second deployment reuses the loaded image.
"""

from __future__ import annotations

from typing import BinaryIO

from sqlalchemy import select

from catalog.models import OfflineImage
from catalog.services.blobs import digest_of
from packages.limits import OFFLINE_IMAGE_LIMITS
from workers.deploy.images import LoadedImage, ensure_bundled_image
from workers.engine import EngineError
from workers.runtime import Runtime


def stored_digest(rt: Runtime, tenant_id: str, reference: str) -> str | None:
    """The digest of the tenant's offline image of `reference`, if it has one."""
    with rt.sessions() as session:
        return session.scalar(
            select(OfflineImage.digest).where(
                OfflineImage.tenant_id == tenant_id, OfflineImage.reference == reference
            )
        )


def ensure_offline_image(rt: Runtime, tenant_id: str, reference: str, digest: str) -> LoadedImage:
    """The engine's id of the stored image, loaded first (its digest verified) unless it is."""
    path = rt.blob_path(digest)
    verified = False

    def open_tarball(_member: str) -> BinaryIO:
        nonlocal verified
        stream = open(path, "rb")  # noqa: SIM115 (the loader closes it)
        if not verified:
            if digest_of(stream) != digest:
                stream.close()
                raise EngineError(
                    f"the offline image {reference} does not match its digest {digest}"
                )
            verified = True
            stream.seek(0)
        return stream

    return ensure_bundled_image(
        rt.engine,
        tenant_id=tenant_id,
        package=reference,
        digest=digest,
        image={"bundled": f"the offline image {reference}", "tag": reference},
        open_member=open_tarball,
        limits=OFFLINE_IMAGE_LIMITS,
    )
