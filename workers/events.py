"""Deployment events, each in its own short transaction so followers see them at once (a
revision's last one in the transaction of its final status)."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from catalog.models import DeploymentEvent
from catalog.snapshot import DeploymentSnapshot
from packages.secrets import redact, secret_strings

log = logging.getLogger(__name__)


class EventLog:
    """Events of one environment's revision; `hidden` secrets never reach a message."""

    def __init__(self, sessions: sessionmaker[Session], env_id: str, revision: int | None) -> None:
        self.sessions = sessions
        self.env_id = env_id
        self.revision = revision
        self.hidden: frozenset[str] = frozenset()

    def hide(self, spec: DeploymentSnapshot) -> None:
        """Keep the secret parameters of a deployment snapshot's apps out of every message."""
        self.hidden = spec_secrets(spec)

    def emit(
        self,
        message: str,
        *,
        level: str = "info",
        app: str | None = None,
        service: str | None = None,
    ) -> None:
        """Write an event now, in a transaction of its own."""
        with self.sessions() as session:
            self.add(session, message, level=level, app=app, service=service)
            session.commit()

    def add(
        self,
        session: Session,
        message: str,
        *,
        level: str = "info",
        app: str | None = None,
        service: str | None = None,
    ) -> None:
        """Add an event to `session`'s transaction: it is seen with what that commits (a
        revision's last event with its final status, so a follower that sees the status
        finished also finds every event)."""
        message = redact(message, self.hidden)
        log.log(
            logging.WARNING if level == "error" else logging.INFO, "%s: %s", self.env_id, message
        )
        session.add(
            DeploymentEvent(
                environment_id=self.env_id,
                revision=self.revision,
                level=level,
                app=app,
                service=service,
                message=message[:8000],
            )
        )


def spec_secrets(spec: DeploymentSnapshot) -> frozenset[str]:
    """The secret values of a snapshot's apps (`secret_strings`), by each app's own schema."""
    return frozenset().union(
        *(
            secret_strings(app.get("parameters", {}), [app.get("manifest", {}).get("parameters")])
            for app in spec.get("apps", [])
        )
    )
