"""Images carried in by offline bundles, and the keys bundles may be signed with."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base
from catalog.models.common import created_column, id_column


class OfflineImage(Base):
    """A tenant's `docker save` tarball of an image reference: what its deployments run when
    they name that reference, loaded under a catalog-owned name, so no registry is needed."""

    __tablename__ = "offline_images"
    __table_args__ = (UniqueConstraint("tenant_id", "reference", name="uq_offline_images_ref"),)

    id: Mapped[str] = id_column()
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
    )
    reference: Mapped[str] = mapped_column(String(255), nullable=False)
    digest: Mapped[str] = mapped_column(String(71), nullable=False)  # the tarball's sha256
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = created_column()


class BundleKey(Base):
    """An Ed25519 public key an admin trusts to sign the bundles imported here."""

    __tablename__ = "bundle_keys"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    public_key: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)  # base64
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = created_column()
