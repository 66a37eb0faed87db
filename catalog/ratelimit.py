"""Per-token request limits (Flask-Limiter); a 429 carries Retry-After."""

from __future__ import annotations

import hashlib

from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from catalog.api.context import READ_METHODS


def per_token() -> str:
    """Limit by token (hashed, never stored in clear); by address for anonymous calls."""
    header = request.headers.get("Authorization", "")
    if header:
        return "token:" + hashlib.sha256(header.encode()).hexdigest()[:32]
    return "addr:" + get_remote_address()


limiter = Limiter(key_func=per_token, headers_enabled=True, default_limits=[])


@limiter.request_filter
def _reads() -> bool:
    """Reads carry no limits: skip looking for any (the check runs before every request)."""
    return request.method in READ_METHODS
