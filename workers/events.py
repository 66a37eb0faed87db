"""Deployment events, each in its own short transaction so followers see them at once."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from catalog.models import DeploymentEvent

log = logging.getLogger(__name__)


class EventLog:
    def __init__(self, sessions: sessionmaker[Session], env_id: str, revision: int | None) -> None:
        self.sessions = sessions
        self.env_id = env_id
        self.revision = revision

    def emit(
        self,
        message: str,
        *,
        level: str = "info",
        app: str | None = None,
        service: str | None = None,
    ) -> None:
        log.log(
            logging.WARNING if level == "error" else logging.INFO, "%s: %s", self.env_id, message
        )
        with self.sessions() as session:
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
            session.commit()
