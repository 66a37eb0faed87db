"""Copies of named volumes a worker made before a revision changed their data."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base
from catalog.models.common import created_column, id_column


class SnapshotStatus(StrEnum):
    """Where a volume snapshot is; stored as its string value."""

    KEPT = "kept"  # made, complete; the revision did not need it back
    RESTORED = "restored"  # copied back into its volume when the revision was undone
    FAILED = "failed"  # making or restoring it failed: `detail` says what; never pruned
    PRUNED = "pruned"  # past the retention: its engine volume was removed


# Snapshots whose engine volume holds a complete copy that retention may remove.
PRUNABLE = frozenset({SnapshotStatus.KEPT, SnapshotStatus.RESTORED})


class VolumeSnapshot(Base):
    """One app volume copied by the worker before revision `revision` replaced a container
    mounting it: the engine volume `snapshot_volume` holds the copy (labelled with the
    environment, so the environment's teardown removes it with the rest)."""

    __tablename__ = "volume_snapshots"
    __table_args__ = (
        UniqueConstraint("deployment_id", "app", "volume", name="uq_volume_snapshots_volume"),
        Index("ix_volume_snapshots_env", "environment_id", "revision"),
    )

    id: Mapped[str] = id_column()
    deployment_id: Mapped[str] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False
    )
    environment_id: Mapped[str] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
    )
    revision: Mapped[int] = mapped_column(Integer, nullable=False)
    app: Mapped[str] = mapped_column(String(63), nullable=False)
    service: Mapped[str] = mapped_column(String(63), nullable=False)  # whose replacement it was
    volume: Mapped[str] = mapped_column(String(63), nullable=False)  # the package's volume name
    source_volume: Mapped[str] = mapped_column(String(255), nullable=False)  # the engine's
    snapshot_volume: Mapped[str] = mapped_column(String(255), nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)  # du -sb
    seconds: Mapped[float] = mapped_column(Float, default=0.0, nullable=False)  # the copy's
    status: Mapped[str] = mapped_column(String(16), default=SnapshotStatus.KEPT, nullable=False)
    detail: Mapped[str] = mapped_column(Text, default="", nullable=False)
    created_at: Mapped[datetime] = created_column()
