"""Keyset pagination: opaque cursors that carry the last row's sort key."""

from __future__ import annotations

import base64
import json
from typing import Any

from catalog.errors import ValidationFailed

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
