"""Reading an environment's volume snapshots (workers/deploy/safekeeping.py writes them)."""

from __future__ import annotations

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from catalog.auth import Principal
from catalog.errors import ValidationFailed
from catalog.models import VolumeSnapshot
from catalog.services.environments import get_environment
from catalog.services.pagination import decode_cursor, encode_cursor


def list_snapshots(
    session: Session, principal: Principal, env_ref: str, limit: int, cursor: str | None
) -> tuple[list[VolumeSnapshot], str | None]:
    """The caller's environment's snapshots, newest revision first, then by app and volume
    (one snapshot per app volume and revision); another tenant's environment is a 404."""
    environment = get_environment(session, principal, env_ref)
    query = select(VolumeSnapshot).where(VolumeSnapshot.environment_id == environment.id)
    if cursor:
        revision, app, volume = decode_cursor(cursor, 3)
        if not (isinstance(revision, int) and isinstance(app, str) and isinstance(volume, str)):
            raise ValidationFailed(
                "the cursor is not valid", errors=[{"path": "cursor", "message": "invalid cursor"}]
            )
        query = query.where(
            or_(
                VolumeSnapshot.revision < revision,
                and_(VolumeSnapshot.revision == revision, VolumeSnapshot.app > app),
                and_(
                    VolumeSnapshot.revision == revision,
                    VolumeSnapshot.app == app,
                    VolumeSnapshot.volume > volume,
                ),
            )
        )
    order = (VolumeSnapshot.revision.desc(), VolumeSnapshot.app, VolumeSnapshot.volume)
    rows = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    page = rows[:limit]
    following = None
    if len(rows) > limit:
        following = encode_cursor([page[-1].revision, page[-1].app, page[-1].volume])
    return page, following
