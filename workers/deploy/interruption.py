"""Why a deployment attempt must stop now: its lease lost, its time up, cancelled or deleted."""

from __future__ import annotations

import math
import threading
import time
from datetime import datetime

from catalog.models import Environment
from catalog.models.common import utcnow
from catalog.models.environment import EnvironmentStatus
from workers import lease
from workers.deploy.outcome import deployment_of
from workers.deploy.readiness import Interrupted
from workers.runtime import Runtime, deploy_time_limit
from workers.tracker.lifecycle import aware

CANCEL_POLL_SECONDS = 0.5


class Interruption:
    """The attempt's reasons to stop, each cheap to ask often: the cancel is read from the
    database at most every CANCEL_POLL_SECONDS, and kept once seen."""

    def __init__(self, rt: Runtime, env_id: str, revision: int, heartbeat: lease.Heartbeat) -> None:
        self.rt, self.env_id, self.revision, self.heartbeat = rt, env_id, revision, heartbeat
        self._lock = threading.Lock()
        self._cancel_checked = 0.0
        self._cancel_reason: str | None = None
        self._deadline = math.inf  # time.monotonic() past which the deployment has failed

    def set_deadline(self, started_at: datetime) -> None:
        """The time limit counts from the first attempt: a retried deployment gets no more."""
        elapsed = (utcnow() - aware(started_at)).total_seconds()
        self._deadline = time.monotonic() + deploy_time_limit(self.rt) - max(elapsed, 0.0)

    def out_of_time(self) -> bool:
        return time.monotonic() >= self._deadline

    def seconds_left(self) -> float:
        """Until the deployment's time limit (0 past it; a large number before it is set)."""
        return max(min(self._deadline - time.monotonic(), 1e9), 0.0)

    def time_limit_reason(self) -> str:
        return f"the deployment ran past its time limit of {deploy_time_limit(self.rt):.0f} s"

    def reason(self) -> str | None:
        """Why the attempt must stop, or None."""
        if self.heartbeat.lost.is_set():
            return "the environment lease was lost"
        if self.out_of_time():
            return self.time_limit_reason()
        now = time.monotonic()
        with self._lock:
            if self._cancel_reason is None and now - self._cancel_checked >= CANCEL_POLL_SECONDS:
                self._cancel_checked = now
                self._cancel_reason = self._read_cancel_reason()
            return self._cancel_reason

    def _read_cancel_reason(self) -> str | None:
        with self.rt.sessions() as session:
            deployment = deployment_of(session, self.env_id, self.revision)
            environment = session.get(Environment, self.env_id)
        if (
            deployment is None
            or environment is None
            or environment.status == EnvironmentStatus.DELETING
        ):
            return "the environment is being deleted"
        if deployment.cancel_requested:
            return "cancelled by request"
        return None

    def check(self) -> None:
        """Raise LeaseLost or Interrupted when the attempt must stop."""
        self.heartbeat.check()
        reason = self.reason()
        if reason:
            raise Interrupted(reason)
