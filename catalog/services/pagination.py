"""Keyset pagination: opaque cursors that carry the last row's sort key."""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import Session

from catalog.errors import ValidationFailed
from catalog.services.lookup import Owned

DEFAULT_LIMIT = 20
MAX_LIMIT = 200


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        values = None
    if not isinstance(values, list) or len(values) != length:
        raise ValidationFailed(
            "the cursor is not valid", errors=[{"path": "cursor", "message": "invalid cursor"}]
        )
    return values


def page_by_name(
    session: Session, query: Select, model: type[Owned], limit: int, cursor: str | None
) -> tuple[list[Owned], str | None]:
    """One page of `query`'s rows ordered by name, then id (an admin sees equal names of
    several tenants), and the cursor of the next page or None."""
    if cursor:
        name, last_id = decode_cursor(cursor, 2)
        query = query.where(or_(model.name > name, and_(model.name == name, model.id > last_id)))
    rows = list(session.scalars(query.order_by(model.name, model.id).limit(limit + 1)))
    page = rows[:limit]
    following = encode_cursor([page[-1].name, page[-1].id]) if len(rows) > limit else None
    return page, following
