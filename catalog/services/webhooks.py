"""Webhooks: a tenant's URLs, the events they are told of, and who may be pointed at.

A delivery is a row, added in the transaction of what it tells (a deployment's end, a
package published), and sent after the commit by a worker task (workers/webhooks.py) that
retries it with backoff; nothing waits for it. Every request is signed: the header
`X-Catalog-Signature: sha256=<hex>` is HMAC-SHA256 of the exact body under the webhook's
secret, which is shown once, at registration, and kept sealed (catalog/secretbox.py).

A webhook may not point at the installation's own network: an address that is not global
(loopback, private, link-local such as a cloud's metadata service, shared, reserved) is
refused at registration and again before every delivery (a name can be made to resolve
elsewhere later), unless the operator lists it in WEBHOOK_ALLOW.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.auth import Principal, require_role
from catalog.errors import Conflict, NotFound, ValidationFailed
from catalog.models import Webhook, WebhookDelivery
from catalog.models.common import new_id, utcnow
from catalog.queue import WEBHOOK_TASK, Publisher
from catalog.secretbox import SecretBox
from catalog.services import audit

EVENTS = (
    "deployment.succeeded",
    "deployment.failed",
    "deployment.rolled_back",
    "app.crashloop",
    "app.unhealthy",
    "package.published",
)
SECRET_PREFIX = "whsec_"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AllowList:
    """What WEBHOOK_ALLOW lets webhooks reach that is not global: networks and host names."""

    networks: tuple[IPNetwork, ...] = ()
    names: frozenset[str] = frozenset()

    @classmethod
    def from_setting(cls, text: str) -> AllowList:
        networks, names = [], set()
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                names.add(item.lower().rstrip("."))
        return cls(tuple(networks), frozenset(names))

    def allows(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def target_problem(url: str, allow: AllowList) -> str | None:
    """Why a webhook may not be sent to `url` (None: it may).

    The host is resolved here: every address it has must be global, or allowed.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "the URL must be http:// or https://"
    if parts.username is not None or parts.password is not None:
        return "the URL may not hold credentials: the signature says who sends"
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return "the URL has no host"
    if not host.isascii():
        # Python's resolver and the HTTP client encode such names differently (IDNA 2003
        # and 2008): the name checked would not be the name connected to.
        return "the host must be written in ASCII (an international name as its xn-- form)"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "the URL's port is not a number from 1 to 65535"
    if host in allow.names:
        return None
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return f"{host} does not resolve"
    for *_, address in found:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
        if not all(a.is_global or allow.allows(a) for a in _reached(ip)):
            # Which address is not said: a publisher could map the internal names with it.
            return (
                f"{host} is a loopback, private or reserved address: webhooks may not reach "
                "the installation's own network (an operator may allow it in "
                "CATALOG_WEBHOOK_ALLOW)"
            )
    return None


def _reached(ip: IPAddress) -> list[IPAddress]:
    """The address and the IPv4 addresses an IPv6 one carries to (mapped, 6to4, Teredo,
    NAT64, IPv4-compatible): each must be global. Site-local IPv6 counts as not global."""
    if isinstance(ip, ipaddress.IPv4Address):
        return [ip]
    if ip.is_site_local or ip in _IPV4_COMPATIBLE:
        return [ipaddress.ip_address("0.0.0.0")]  # deprecated: never a webhook's
    reached: list[IPAddress] = [ip]
    if ip.ipv4_mapped is not None:
        reached.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        reached.append(ip.sixtofour)
    if ip.teredo is not None:
        reached += list(ip.teredo)
    if ip in _NAT64:
        reached.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return reached


_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
MAX_WEBHOOKS = 20  # per tenant: each event costs a delivery per webhook


def register(
    session: Session,
    principal: Principal,
    *,
    url: str,
    events: Iterable[str],
    description: str,
    allow: AllowList,
    box: SecretBox,
) -> tuple[Webhook, str]:
    """A new webhook of the caller's tenant, and its signing secret (shown this once)."""
    require_role(principal, "publisher")
    held = (
        session.scalar(
            select(func.count())
            .select_from(Webhook)
            .where(Webhook.tenant_id == principal.tenant_id)
        )
        or 0
    )
    if held >= MAX_WEBHOOKS:
        raise Conflict(f"the tenant has {held} webhooks, the most it may have; remove one first")
    problem = target_problem(url, allow)
    if problem:
        raise ValidationFailed(
            f"webhooks may not be sent to {url!r}", errors=[{"path": "url", "message": problem}]
        )
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    webhook = Webhook(
        tenant_id=principal.tenant_id,
        url=url,
        events=sorted(set(events)),
        secret=box.seal(secret),
        description=description,
        created_by=principal.token_id,
    )
    session.add(webhook)
    session.flush()
    # The URL's origin only: a path or query may itself be a credential (a chat's hook).
    audit.record(session, principal, "webhook.create", "webhook", webhook.id,
                 detail={"origin": origin(url), "events": webhook.events})  # fmt: skip
    session.commit()
    return webhook, secret


def origin(url: str) -> str:
    """scheme://host[:port] of a URL: what is shown of it where its path must not be."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _scoped(principal: Principal):
    query = select(Webhook)
    return query if principal.is_admin else query.where(Webhook.tenant_id == principal.tenant_id)


def list_webhooks(session: Session, principal: Principal) -> list[Webhook]:
    """The tenant's webhooks (an admin: every tenant's)."""
    require_role(principal, "publisher")
    return list(session.scalars(_scoped(principal).order_by(Webhook.created_at, Webhook.id)))


def get_webhook(session: Session, principal: Principal, webhook_id: str) -> Webhook:
    require_role(principal, "publisher")
    webhook = session.scalar(_scoped(principal).where(Webhook.id == webhook_id))
    if webhook is None:
        raise NotFound(f"no webhook {webhook_id!r}")
    return webhook


def delete_webhook(session: Session, principal: Principal, webhook_id: str) -> None:
    webhook = get_webhook(session, principal, webhook_id)
    session.delete(webhook)
    audit.record(session, principal, "webhook.delete", "webhook", webhook.id,
                 tenant_id=webhook.tenant_id)  # fmt: skip
    session.commit()


def list_deliveries(
    session: Session, principal: Principal, webhook_id: str, limit: int
) -> list[WebhookDelivery]:
    """A webhook's deliveries, newest first."""
    webhook = get_webhook(session, principal, webhook_id)
    return list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == webhook.id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(limit)
        )
    )


def emit(session: Session, tenant_id: str, event: str, data: dict[str, Any]) -> list[str]:
    """Add a delivery of `event` for each webhook of the tenant that asks for it, to the
    caller's transaction; their ids, to send once it commits (workers/webhooks.send)."""
    assert event in EVENTS, event
    ids = []
    for webhook in session.scalars(select(Webhook).where(Webhook.tenant_id == tenant_id)):
        if event not in webhook.events:
            continue
        delivery_id = new_id()
        body = {"id": delivery_id, "event": event, "time": utcnow().isoformat(), "data": data}
        session.add(
            WebhookDelivery(id=delivery_id, webhook_id=webhook.id, event=event, payload=body)
        )
        ids.append(delivery_id)
    return ids


def publish(publisher: Publisher, delivery_ids: Iterable[str]) -> None:
    """Publish the delivery tasks of rows just committed, to the queue every worker takes; a
    broker away leaves them to the resync, which sends pending deliveries never attempted."""
    for delivery_id in delivery_ids:
        publisher.send(WEBHOOK_TASK, delivery_id, maintenance=True)


def tell(
    session: Session, publisher: Publisher, tenant_id: str, event: str, data: dict[str, Any]
) -> None:
    """Emit `event` in a transaction of its own, after the change it tells has committed."""
    delivery_ids = emit(session, tenant_id, event, data)
    if delivery_ids:
        session.commit()
        publish(publisher, delivery_ids)
