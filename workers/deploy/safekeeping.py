"""The data a revision may change: named volumes snapshotted before it touches them, restored
when it is undone, and old snapshots pruned after a later success.

Which volumes and which snapshots is decided in `workers.deploy.snapshot_rules` (pure); the
copies are the engine's (`Engine.snapshot_volume`, `restore_volume`: helper containers). Each
snapshot is a `VolumeSnapshot` row, written once its copy is complete, so an attempt after a
killed worker keeps the copy an earlier attempt made before any new container ran.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace

from sqlalchemy import select

from catalog.models import IN_FLIGHT, Deployment, Environment, VolumeSnapshot
from catalog.models.deployment import DeploymentStatus
from catalog.models.volume_snapshot import PRUNABLE, SnapshotStatus
from catalog.snapshot import DeploymentSnapshot
from workers.deploy.interruption import Interruption
from workers.deploy.outcome import deployment_of
from workers.deploy.planner import DesiredContainer, Plan, Step
from workers.deploy.prepare import Prepared
from workers.deploy.snapshot_rules import (
    Guarded,
    VolumeToSnapshot,
    guarded_services,
    past_retention,
    volumes_to_snapshot,
)
from workers.engine import (
    APP_LABEL,
    ENV_LABEL,
    REVISION_LABEL,
    SNAPSHOT_LABEL,
    TENANT_LABEL,
    EngineError,
    NotFound,
    VolumeCopy,
)
from workers.engine.names import snapshot_volume_name
from workers.events import EventLog
from workers.runtime import Runtime

log = logging.getLogger(__name__)

# A restore runs during the undo, possibly past the deployment's time limit (the reason it
# is undone): it still gets this long, within Celery's hard limit (120 s after the soft one).
RESTORE_GRACE_SECONDS = 90.0


class Safekeeping:
    """Snapshots of one revision's attempt: taken, restored, and the environment's pruned."""

    def __init__(
        self, rt: Runtime, env_id: str, revision: int, events: EventLog, interruption: Interruption
    ) -> None:
        self.rt, self.env_id, self.revision = rt, env_id, revision
        self.events, self.interruption = events, interruption
        self.guarded: Guarded = {}
        self.unrestored: list[str] = []  # what the undo could not restore, for the outcome

    def desired(self, prepared: list[Prepared], spec: DeploymentSnapshot) -> list[DesiredContainer]:
        """The containers to plan: a guarded service's old container stops first."""
        self.guarded = guarded_services(spec["apps"], self._serving())
        return [
            replace(p.desired(), snapshots_volumes=True) if p.key[:2] in self.guarded
            else p.desired()
            for p in prepared
        ]  # fmt: skip

    def take(
        self,
        the_plan: Plan,
        volumes: Mapping[tuple[str, str], str],
        tenant_id: str,
        stop: Callable[[Step, str], None],
    ) -> None:
        """Stop the old containers of guarded services, then snapshot each of their volumes."""
        targets = volumes_to_snapshot(the_plan.start, self.guarded)
        if not targets:
            return
        for step in the_plan.start:
            if step.container_id and (step.app, step.service) in self.guarded:
                stop(step, "its volumes are snapshotted")
        made = self._rows()
        for target in targets:
            self.interruption.check()
            row = made.get((target.app, target.volume))
            if row is not None and row.status == SnapshotStatus.KEPT:
                self.events.emit(f"snapshot of volume {target.volume}: kept from an earlier "
                                 f"attempt as {row.snapshot_volume}", app=target.app,
                                 service=target.service)  # fmt: skip
                continue
            self._snapshot(target, volumes[(target.app, target.volume)], tenant_id)

    def _snapshot(self, target: VolumeToSnapshot, source: str, tenant_id: str) -> None:
        name = snapshot_volume_name(self.env_id, target.app, target.volume, self.revision)
        labels = self._labels(target.app, target.volume, tenant_id)
        try:
            copy = self.rt.engine.snapshot_volume(
                source, name, labels, image=self.rt.settings.snapshot_image,
                timeout=self.interruption.seconds_left(),
            )  # fmt: skip
        except EngineError as exc:
            detail = f"snapshot failed: {exc}"
            try:  # a partial copy is no snapshot: it would only hold the disk
                self.rt.engine.remove_volume(name)
                detail += "; the partial copy was removed"
            except NotFound:
                pass
            except EngineError as again:
                detail += f"; the partial copy {name} stays ({again})"
            self._record(target, source, name, None, SnapshotStatus.FAILED, detail)
            raise EngineError(
                f"{target.app}/{target.service}: snapshot of volume {target.volume} failed: {exc}"
            ) from None
        self._record(target, source, name, copy, SnapshotStatus.KEPT, "")
        self.events.emit(
            f"snapshot of volume {target.volume} ({source}): {copy.size_bytes} bytes in "
            f"{copy.seconds:.1f} s, kept as {name}",
            app=target.app, service=target.service,
        )  # fmt: skip

    def restore(self, touched: set[str]) -> int:
        """Copy every snapshot this revision kept back into its volume; how many were.

        Called by the undo before the old containers start again, for the apps of `touched`:
        those a container of this revision ran in (another app's volume is as it was, and its
        snapshot stays kept). A snapshot that cannot be restored stays, marked failed, and is
        named in `unrestored` (the outcome's detail). Once the lease is lost, another attempt
        may be using the volumes: nothing is restored and every snapshot stays.
        """
        with self.rt.sessions() as session:
            rows = session.scalars(
                select(VolumeSnapshot)
                .where(
                    VolumeSnapshot.deployment_id == self._deployment_id(session),
                    VolumeSnapshot.status == SnapshotStatus.KEPT,
                )
                .order_by(VolumeSnapshot.app, VolumeSnapshot.volume)
            ).all()
            session.expunge_all()
        restored = 0
        for row in rows:
            if row.app not in touched:
                self.events.emit(f"volume {row.volume} was not changed (no new container of "
                                 f"{row.app} ran): its snapshot {row.snapshot_volume} is kept",
                                 app=row.app, service=row.service)  # fmt: skip
                continue
            if self.interruption.heartbeat.lost.is_set():
                message = (f"volume {row.volume} of {row.app} was not restored: the lease was "
                           f"lost; its snapshot {row.snapshot_volume} is kept")  # fmt: skip
                self.unrestored.append(message)
                self.events.emit(message, level="error", app=row.app, service=row.service)
                continue
            # The copy back takes about as long as the copy did: never less than that.
            budget = max(self.interruption.seconds_left(), 0.0) + RESTORE_GRACE_SECONDS
            try:
                copy = self.rt.engine.restore_volume(
                    row.snapshot_volume, row.source_volume,
                    self._labels(row.app, row.volume, ""), image=self.rt.settings.snapshot_image,
                    timeout=max(budget, 2 * row.seconds + RESTORE_GRACE_SECONDS),
                )  # fmt: skip
            except EngineError as exc:
                self._set(row.id, SnapshotStatus.FAILED, f"restore failed: {exc}")
                message = (
                    f"volume {row.volume} of {row.app} was not restored ({exc}); "
                    f"its snapshot {row.snapshot_volume} is kept"
                )
                self.unrestored.append(message)
                self.events.emit(message, level="error", app=row.app, service=row.service)
                continue
            self._set(row.id, SnapshotStatus.RESTORED, "")
            restored += 1
            self.events.emit(
                f"restored volume {row.volume} from snapshot {row.snapshot_volume}: "
                f"{copy.size_bytes} bytes in {copy.seconds:.1f} s",
                app=row.app, service=row.service,
            )  # fmt: skip
        return restored

    def prune(self) -> None:
        """Once the revision is ready (its success written next, with its last event): remove
        the snapshots past CATALOG_SNAPSHOT_RETENTION, counting this revision as successful.

        Nothing here fails the revision: a problem is logged and told as a warning, and the
        snapshot stays for the next success to prune.
        """
        try:
            self._prune()
        except Exception as exc:
            log.warning("pruning snapshots of %s failed: %s", self.env_id, exc)

    def _prune(self) -> None:
        retention = self.rt.settings.snapshot_retention
        with self.rt.sessions() as session:
            succeeded = session.scalars(
                select(Deployment.revision).where(
                    Deployment.environment_id == self.env_id,
                    Deployment.status == DeploymentStatus.SUCCEEDED,
                )
            ).all()
            successful = [*succeeded, self.revision]  # it is ready: its success comes next
            rows = {
                row.id: row
                for row in session.scalars(
                    select(VolumeSnapshot).where(
                        VolumeSnapshot.environment_id == self.env_id,
                        VolumeSnapshot.status.in_(PRUNABLE),
                        # Never one an unfinished revision may still restore.
                        VolumeSnapshot.deployment_id.not_in(
                            select(Deployment.id).where(
                                Deployment.environment_id == self.env_id,
                                Deployment.status.in_(IN_FLIGHT),
                                Deployment.revision != self.revision,
                            )
                        ),
                    )
                )
            }
            session.expunge_all()
        gone = past_retention([(r.id, r.revision) for r in rows.values()], successful, retention)
        for snapshot_id in gone:
            row = rows[snapshot_id]
            try:
                self.rt.engine.remove_volume(row.snapshot_volume)
                note = ""
            except NotFound:
                note = " (its volume was gone already)"
            except EngineError as exc:
                self.events.emit(f"could not prune snapshot {row.snapshot_volume}: {exc}",
                                 level="warning", app=row.app)  # fmt: skip
                continue
            self._set(row.id, SnapshotStatus.PRUNED, note.strip(" ()"))
            self.events.emit(
                f"pruned snapshot {row.snapshot_volume} of volume {row.volume}, revision "
                f"{row.revision}{note}: past CATALOG_SNAPSHOT_RETENTION={retention}",
                app=row.app,
            )  # fmt: skip

    # -- rows ------------------------------------------------------------------------------

    def _serving(self) -> list | None:
        """The apps of the revision that serves now (None before the first success)."""
        with self.rt.sessions() as session:
            environment = session.get(Environment, self.env_id)
            if environment is None or environment.current_revision is None:
                return None
            spec = session.scalar(
                select(Deployment.spec).where(
                    Deployment.environment_id == self.env_id,
                    Deployment.revision == environment.current_revision,
                )
            )
        return list((spec or {}).get("apps", []))

    def _deployment_id(self, session) -> str:
        deployment = deployment_of(session, self.env_id, self.revision)
        assert deployment is not None  # held under the lease
        return deployment.id

    def _rows(self) -> dict[tuple[str, str], VolumeSnapshot]:
        with self.rt.sessions() as session:
            rows = session.scalars(
                select(VolumeSnapshot).where(
                    VolumeSnapshot.deployment_id == self._deployment_id(session)
                )
            ).all()
            session.expunge_all()
        return {(row.app, row.volume): row for row in rows}

    def _record(
        self,
        target: VolumeToSnapshot,
        source: str,
        name: str,
        copy: VolumeCopy | None,
        status: SnapshotStatus,
        detail: str,
    ) -> None:
        """Write (or, after an earlier attempt's failure, rewrite) the snapshot's row."""
        with self.rt.sessions() as session:
            deployment_id = self._deployment_id(session)
            row = session.scalar(
                select(VolumeSnapshot).where(
                    VolumeSnapshot.deployment_id == deployment_id,
                    VolumeSnapshot.app == target.app,
                    VolumeSnapshot.volume == target.volume,
                )
            )
            if row is None:
                row = VolumeSnapshot(
                    deployment_id=deployment_id, environment_id=self.env_id,
                    revision=self.revision, app=target.app, volume=target.volume,
                )  # fmt: skip
                session.add(row)
            row.service, row.source_volume, row.snapshot_volume = target.service, source, name
            row.size_bytes = copy.size_bytes if copy else 0
            row.seconds = copy.seconds if copy else 0.0
            row.status, row.detail = status, detail
            session.commit()

    def _set(self, snapshot_id: str, status: SnapshotStatus, detail: str) -> None:
        with self.rt.sessions() as session:
            row = session.get(VolumeSnapshot, snapshot_id)
            if row is not None:
                row.status, row.detail = status, detail
                session.commit()

    def _labels(self, app: str, volume: str, tenant_id: str) -> dict[str, str]:
        labels = {
            ENV_LABEL: self.env_id,
            APP_LABEL: app,
            SNAPSHOT_LABEL: volume,
            REVISION_LABEL: str(self.revision),
        }
        if tenant_id:
            labels[TENANT_LABEL] = tenant_id
        return labels
