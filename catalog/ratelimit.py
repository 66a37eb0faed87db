"""Request rate limits (Flask-Limiter), keyed on the authenticated token; a 429 has Retry-After.

Every limit is counted per caller: the id of the token the request authenticated with
(`catalog.api.context.authenticate_request` runs before the limiter's check), so however the header
spells the token (`Bearer  T`, `bearer T`, `Bearer T `) it is one bucket; a request without a
token (the health check, the OpenAPI document) is counted by its remote address.

- reads (GET, HEAD) share one budget per caller over every route: READ_RATE_LIMIT;
- uploads have their own, on top: UPLOAD_RATE_LIMIT;
- a request whose token is missing or not valid never reaches those checks (its 401 comes
  first), so it counts against its remote address: AUTH_FAILURE_RATE_LIMIT, whatever the
  method; past it, even a guess at a token gets 429 before it is looked up.

The counts live in RATELIMIT_STORAGE_URL: `memory://` counts per API process, `redis://...`
over every process that shares the server.
"""

from __future__ import annotations

import ipaddress
import time

from flask import g, request
from flask_limiter import ApplicationLimit, Limiter
from flask_limiter.util import get_remote_address
from limits import parse

from catalog import current_settings
from catalog.api.context import READ_METHODS
from catalog.errors import TooManyRequests

# Routes no limit applies to: liveness must answer a load balancer however often it asks.
UNLIMITED_PATHS = frozenset({"/v1/health"})


def caller_key() -> str:
    """The authenticated token's id; the remote address for a request without a token."""
    principal = g.get("principal")
    if principal is not None:
        return "token:" + principal.token_id
    return address_key()


def address_key() -> str:
    """The caller's address as a limit counts it: an IPv6 address by its /64, the least a
    single subscriber is given, so that walking through one's own addresses gains nothing."""
    address = get_remote_address() or "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "addr:" + address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return "addr:" + str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return "addr:" + str(ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else ip)


def _not_a_limited_read() -> bool:
    return request.method not in READ_METHODS or request.path in UNLIMITED_PATHS


limiter = Limiter(
    key_func=caller_key,
    headers_enabled=True,
    default_limits=[],
    application_limits=[
        ApplicationLimit(
            limit_provider=lambda: current_settings().read_rate_limit,
            scope="reads",
            exempt_when=_not_a_limited_read,
        )
    ],
)


def count_failed_authentication() -> None:
    """Count a request without a valid token against its address; TooManyRequests past
    AUTH_FAILURE_RATE_LIMIT (in the limiter's storage, so across API processes too)."""
    item = parse(current_settings().auth_failure_rate_limit)
    key = address_key()
    if limiter.limiter.hit(item, "auth-failures", key):
        return
    reset, _ = limiter.limiter.get_window_stats(item, "auth-failures", key)
    raise TooManyRequests(
        f"too many requests without a valid token from this address (limit {item}); "
        "wait before trying again",
        headers={"Retry-After": str(max(1, int(reset - time.time()) + 1))},
    )
