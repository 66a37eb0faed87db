"""Sending webhook deliveries: one signed POST per attempt, retried with backoff, recorded.

The rows are added by catalog.services.webhooks.emit in the transaction of what they tell;
`send` publishes their task after it commits, to the maintenance queue every worker takes.
A delivery never blocks what it tells: a receiver that is slow or down costs a worker slot
for at most WEBHOOK_TIMEOUT_SECONDS per attempt, and attempts wait in the broker between.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterable

import requests
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.orm import Session, sessionmaker

from catalog.config import Settings
from catalog.models import Webhook, WebhookDelivery
from catalog.models.common import utcnow
from catalog.queue import Publisher
from catalog.secretbox import SecretBox
from catalog.services.webhooks import AllowList, publish, target_problem

log = logging.getLogger(__name__)

MAX_RETRY_SECONDS = 600.0
ANSWER_BYTES = 1024  # of a failed answer's body, kept for the delivery's record
ERROR_CHARS = 500
USER_AGENT = "container-catalog-webhooks/1"


def signature(secret: str, body: bytes) -> str:
    """The X-Catalog-Signature value of `body`: `sha256=` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(payload: dict) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def send(delivery_ids: Iterable[str]) -> None:
    """Publish the delivery tasks of rows a worker just committed."""
    ids = list(delivery_ids)
    if ids:
        from workers.celery_app import celery  # imported when used: it imports the tasks

        publish(Publisher(celery), ids)


def deliver(
    sessions: sessionmaker[Session], delivery_id: str, settings: Settings, box: SecretBox
) -> float | None:
    """One attempt at a pending delivery. The seconds to wait before the next attempt, or
    None when there is none to make (delivered, given up, refused, or gone)."""
    with sessions() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        webhook = session.get(Webhook, delivery.webhook_id) if delivery else None
        if delivery is None or webhook is None or delivery.status != "pending":
            return None
        url, secret, payload = webhook.url, box.open(webhook.secret), delivery.payload
    problem = target_problem(url, AllowList.from_setting(settings.webhook_allow))
    status_code, error = None, problem or ""
    if problem is None:
        status_code, error = _post(url, secret, delivery_id, payload, settings)
    with sessions() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None:
            return None
        delivery.attempts += 1
        delivery.last_attempt_at = utcnow()
        delivery.last_status_code, delivery.last_error = status_code, error[:ERROR_CHARS]
        ok = status_code is not None and 200 <= status_code < 300
        if ok:
            delivery.status, delivery.delivered_at = "delivered", utcnow()
        elif problem or delivery.attempts >= settings.webhook_max_attempts:
            delivery.status = "failed"
        attempts, pending = delivery.attempts, delivery.status == "pending"
        session.commit()
    if not pending:
        if not ok:
            log.warning("webhook delivery %s failed for good after %d attempt(s): %s",
                        delivery_id, attempts, error or status_code)  # fmt: skip
        return None
    return min(settings.webhook_retry_seconds * 2 ** (attempts - 1), MAX_RETRY_SECONDS)


def _post(
    url: str, secret: str, delivery_id: str, payload: dict, settings: Settings
) -> tuple[int | None, str]:
    body = body_of(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Catalog-Event": str(payload.get("event")),
        "X-Catalog-Delivery": delivery_id,
        "X-Catalog-Signature": signature(secret, body),
    }
    timeout = settings.webhook_timeout_seconds
    # No proxy or .netrc from the worker's environment, no redirects (a receiver could send
    # the request on to an address it may not reach), and at most ANSWER_BYTES of the
    # answer read: a receiver that trickles bytes is ended by the task's time limit.
    with requests.Session() as session:
        session.trust_env = False
        try:
            response = session.post(
                url, data=body, headers=headers, timeout=(timeout, timeout),
                allow_redirects=False, stream=True,
            )  # fmt: skip
            with response:
                answer = b"" if response.ok else response.raw.read(ANSWER_BYTES)
        except SoftTimeLimitExceeded:
            return None, f"no answer within {settings.webhook_timeout_seconds * 3:g} s"
        except requests.RequestException as exc:
            # The class only: the text names the URL, whose path may be a credential.
            return None, f"{type(exc).__name__}: the receiver did not answer"
    text = "" if response.ok else f"HTTP {response.status_code}: {_printable(answer)}"
    return response.status_code, text


def _printable(answer: bytes) -> str:
    return answer.decode("utf-8", "replace").replace("\n", " ")[:200]
