"""One attempt at one revision: plan, start what is new until ready, remove what is old.

Any failure, cancel or render error undoes everything the attempt did (`Execution._undo`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Set as AbstractSet
from dataclasses import replace

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError

from catalog.models import Environment
from catalog.models.common import utcnow
from catalog.models.deployment import IN_FLIGHT, DeploymentStatus
from catalog.models.environment import EnvironmentStatus
from catalog.secretbox import SecretKeyError, opened
from catalog.services.quotas import Quotas
from catalog.snapshot import DeploymentSnapshot
from packages.container import ContainerTarget, container_params
from packages.errors import PackageError
from packages.render_process import RenderLimits, RenderProcess
from workers import lease
from workers.deploy.inputs import SnapshotInputs
from workers.deploy.interruption import Interruption
from workers.deploy.outcome import Outcome, deployment_of
from workers.deploy.parallel import run_in_waves
from workers.deploy.planner import Identity, Plan, Step, Strategy, plan
from workers.deploy.ports import PortsExhausted, allocate, parse_range, release_orphans
from workers.deploy.prepare import Prepared, PrepareError, prepare, published_ports
from workers.deploy.readiness import Interrupted, NotReady, wait_ready
from workers.deploy.safekeeping import Safekeeping
from workers.engine import (
    APP_LABEL,
    ENV_LABEL,
    FENCING_LABEL,
    HASH_LABEL,
    REPLICA_LABEL,
    REVISION_LABEL,
    SERVICE_LABEL,
    TENANT_LABEL,
    CreatedContainer,
    EngineError,
    ObservedContainer,
)
from workers.engine.names import container_name, hostname, network_name
from workers.events import EventLog
from workers.runtime import Runtime, network_pool

log = logging.getLogger(__name__)

STOP_TIMEOUT = 3  # seconds an old container gets to stop before it is killed
# Containers of one deployment waiting to prove ready at once. The engine work (stop,
# create, start) is bounded by DEPLOY_PARALLELISM; a wait holds no engine slot.
MAX_WAITING = 64


class DatabaseAway(Exception):
    """The database stopped answering mid-deploy: the attempt stops as it is and is retried.

    Nothing is undone (undoing would need the database to record it); the next attempt,
    under a new fencing token, keeps what this one started once it proves ready.
    """


class _Abandoned(Exception):
    """Another container of this attempt failed: stop starting and waiting, it is undone."""


class Execution:
    """One attempt at one revision, holding the environment's lease."""

    def __init__(
        self, rt: Runtime, env_id: str, revision: int, fencing: int, heartbeat: lease.Heartbeat
    ) -> None:
        self.rt = rt
        self.env_id = env_id
        self.revision = revision
        self.fencing = fencing
        self.heartbeat = heartbeat
        self.events = EventLog(rt.sessions, env_id, revision)
        self.interruption = Interruption(rt, env_id, revision, heartbeat)
        self.inputs = SnapshotInputs(rt, self.events)
        self.outcome = Outcome(rt, env_id, revision, self.events)
        self.safekeeping = Safekeeping(rt, env_id, revision, self.events, self.interruption)
        self.outcome.unrestored = self.safekeeping.unrestored  # named by a failure's detail
        self.created: list[str] = []  # containers this attempt created
        self.stopped: list[str] = []  # old containers stopped first (ports, snapshots)
        self.volumes: dict[tuple[str, str], str] = {}  # (app, volume) -> docker volume name
        self.log_share: int = rt.settings.log_share_bytes
        self._lock = threading.Lock()
        self._engine_slots = threading.BoundedSemaphore(rt.settings.deploy_parallelism)
        self._abandoned = threading.Event()  # set at the first failed start

    # -- entry -----------------------------------------------------------------

    def run(self) -> str:
        started = self._start()
        if started is None:
            return "skipped"
        spec, env_name, tenant_id, had_revision = started
        self.log_share = spec.get("log_share") or self.rt.settings.log_share_bytes
        try:
            status = self._converge(spec, env_name, tenant_id)
        except lease.LeaseLost as exc:
            self.events.emit(f"stopped: {exc}", level="warning")
            return "lease_lost"
        except DBAPIError as exc:
            raise DatabaseAway(type(exc.orig).__name__ if exc.orig else str(exc)) from None
        except Interrupted as exc:
            self._undo()
            if self.interruption.out_of_time():
                return self.outcome.failed(str(exc), had_revision)
            return self.outcome.cancelled(str(exc), had_revision)
        except SoftTimeLimitExceeded:
            # Celery's backstop, in case a step that checks no deadline ran past it.
            self._undo()
            return self.outcome.failed(self.interruption.time_limit_reason(), had_revision)
        except (
            PrepareError, PackageError, EngineError, NotReady, PortsExhausted, SecretKeyError,
        ) as exc:  # fmt: skip
            self._undo()
            return self.outcome.failed(str(exc), had_revision)
        except Exception as exc:
            log.exception("deployment %s/%s failed unexpectedly", self.env_id, self.revision)
            self._undo()
            return self.outcome.failed(f"internal error: {type(exc).__name__}", had_revision)
        finally:
            self.inputs.close()
        return status

    def _start(self) -> tuple[DeploymentSnapshot, str, str, bool] | None:
        with self.rt.sessions() as session:
            deployment = deployment_of(session, self.env_id, self.revision)
            environment = session.get(Environment, self.env_id)
            if deployment is None or environment is None or deployment.status not in IN_FLIGHT:
                return None
            if environment.status == EnvironmentStatus.DELETING:
                deployment.status, deployment.error = (
                    DeploymentStatus.CANCELLED,
                    "the environment is being deleted",
                )
                deployment.finished_at = utcnow()
                session.commit()
                return None
            deployment.status = DeploymentStatus.RUNNING
            deployment.attempts += 1
            started_at = deployment.started_at or utcnow()
            deployment.started_at = started_at
            self.interruption.set_deadline(started_at)
            environment.status = EnvironmentStatus.DEPLOYING
            attempt = deployment.attempts
            result = (
                deployment.spec,
                environment.name,
                environment.tenant_id,
                environment.current_revision is not None,
            )
            session.commit()
        self.events.emit(f"revision {self.revision} started (attempt {attempt})")
        return result

    # -- converge ----------------------------------------------------------------

    def _converge(self, spec: DeploymentSnapshot, env_name: str, tenant_id: str) -> str:
        wanted_ports = published_ports(spec["apps"])
        prepared = self._prepare(spec, env_name, tenant_id)
        observed = self.rt.engine.observe(self.env_id)
        desired = self.safekeeping.desired(prepared, spec)  # guarded volumes: stop-first
        the_plan = plan(desired, observed, revision=self.revision, fencing=self.fencing)
        self._save_plan(the_plan)
        for step in the_plan.remove_now:
            assert step.container_id is not None  # a removal names the container it removes
            self.events.emit(f"removing {step.container_id[:12]}: {step.reason}", app=step.app,
                             service=step.service)  # fmt: skip
            self.rt.engine.remove(step.container_id)
        self._ensure_network_and_volumes(spec, tenant_id)
        self._verify_leftovers(prepared, the_plan, observed)
        self.safekeeping.take(the_plan, self.volumes, tenant_id, self._stop_old)
        self._start_all(prepared, the_plan, tenant_id)
        self.interruption.check()
        self._teardown(the_plan.remove_after)
        release_orphans(self.rt.sessions, self.env_id, set(wanted_ports))
        self.safekeeping.prune()  # counting this revision's success; it never fails it
        return self.outcome.succeeded(self.log_share)

    def _prepare(
        self, snapshot: DeploymentSnapshot, env_name: str, tenant_id: str
    ) -> list[Prepared]:
        spec = opened(snapshot, self.rt.secrets)
        self.events.hide(spec)
        self.inputs.verify(spec["apps"])  # a damaged archive runs nothing
        host_ports = allocate(
            self.rt.sessions,
            self.env_id,
            published_ports(spec["apps"]),
            parse_range(self.rt.settings.host_port_range),
            tenant=(tenant_id, Quotas.from_settings(self.rt.settings)),
        )
        # The templates render in a child with hard limits; a cancel stops it at once.
        limits = RenderLimits.from_settings(self.rt.settings)
        with RenderProcess(limits, should_stop=self.interruption.check) as templates:
            return prepare(
                spec,
                env_name,
                read_member=self.inputs.read_member,
                image_id=lambda image, app, policy: self.inputs.image_id(
                    image, app, tenant_id, policy
                ),
                host_ports=host_ports,
                runtime_defaults=self.rt.defaults,
                templates=templates,
            )

    def start_missing(
        self,
        spec: DeploymentSnapshot,
        env_name: str,
        tenant_id: str,
        missing: AbstractSet[Identity],
    ) -> list[str]:
        """The tracker's repair: create and start the containers of the `missing` (app, service,
        replica) slots of this revision, dependencies first, each until ready; their ids.

        Nothing is undone when one fails (the error propagates): what was created stays and
        the tracker follows it like any other container (restarts, crash loop).
        """
        self.log_share = spec.get("log_share") or self.rt.settings.log_share_bytes
        try:
            prepared = [p for p in self._prepare(spec, env_name, tenant_id) if p.key in missing]
            the_plan = plan(
                [p.desired() for p in prepared], [], revision=self.revision, fencing=self.fencing
            )
            starts = tuple(replace(s, reason="recreated: it was missing") for s in the_plan.start)
            self._ensure_network_and_volumes(spec, tenant_id)
            self._start_all(prepared, replace(the_plan, start=starts), tenant_id)
        finally:
            self.inputs.close()
        return list(self.created)

    def _save_plan(self, the_plan: Plan) -> None:
        steps = [
            {"action": s.strategy.name.lower(), "app": s.app, "service": s.service,
             "replica": s.replica, "container": s.container_id, "reason": s.reason}
            for group in (the_plan.remove_now, the_plan.keep, the_plan.start, the_plan.remove_after)
            for s in group
        ]  # fmt: skip
        with self.rt.sessions() as session:
            deployment = deployment_of(session, self.env_id, self.revision)
            assert deployment is not None  # held under the lease
            deployment.plan = steps
            session.commit()
        kept, started, removed = len(the_plan.keep), len(the_plan.start), len(the_plan.remove_after)
        self.events.emit(f"plan: {started} to start, {kept} unchanged, {removed} to remove")

    def _ensure_network_and_volumes(self, spec: DeploymentSnapshot, tenant_id: str) -> None:
        labels = {ENV_LABEL: self.env_id, TENANT_LABEL: tenant_id}
        pool, prefix = network_pool(self.rt)
        self.rt.engine.ensure_network(network_name(self.env_id), labels, pool, prefix)
        for app in spec["apps"]:
            for service in app["manifest"].get("services", {}).values():
                for volume in service.get("volumes", []):
                    key = (app["name"], volume["name"])
                    if key not in self.volumes:
                        self.volumes[key] = self.rt.engine.ensure_volume(
                            self.env_id, *key, {**labels, APP_LABEL: app["name"]}
                        )

    def _start_all(self, prepared: list[Prepared], the_plan: Plan, tenant_id: str) -> None:
        by_key = {p.key: p for p in prepared}
        steps = {(s.app, s.service, s.replica): s for s in the_plan.start}
        if not steps:
            return
        parallelism = self.rt.settings.deploy_parallelism
        outcome = run_in_waves(
            the_plan.start_dependencies(),
            lambda key: self._start_one(by_key[key], steps[key], tenant_id),
            # Every independent container starts before any waits: a readiness window
            # (MIN_RUNNING_SECONDS or the healthcheck's) holds a thread, not an engine slot.
            max_workers=max(parallelism, min(len(steps), MAX_WAITING)),
            cancelled=lambda: self.interruption.reason() is not None,
        )
        failed = {k: e for k, e in outcome.failed.items() if not isinstance(e, _Abandoned)}
        if failed:
            key, error = sorted(failed.items())[0]
            if isinstance(error, Interrupted | lease.LeaseLost | DBAPIError):
                raise error
            raise NotReady(f"{key[0]}/{key[1]}: {error}")
        self.interruption.check()

    def _verify_leftovers(
        self, prepared: list[Prepared], the_plan: Plan, observed: list[ObservedContainer]
    ) -> None:
        """Kept containers that a dead attempt at this revision started must prove ready too.

        The planner keeps such a container when it runs with the wanted config, but its
        worker died before it was checked ready; what depends on it starts only after.
        """
        # Keyed as steps name their slot (a kept step always names one).
        by_key: dict[tuple[str | None, str | None, int | None], Prepared]
        by_key = {p.key: p for p in prepared}
        leftovers = {
            c.id: c.name
            for c in observed
            if c.revision == self.revision and c.fencing is not None and c.fencing < self.fencing
        }
        for step in the_plan.keep:
            if step.container_id is not None and step.container_id in leftovers:
                item = by_key[(step.app, step.service, step.replica)]
                self._await_ready(item, step.container_id, leftovers[step.container_id],
                                  "left by an interrupted attempt")  # fmt: skip

    def _start_one(self, item: Prepared, step: Step, tenant_id: str) -> None:
        try:
            with self._engine_slots:
                if self._abandoned.is_set():
                    raise _Abandoned()
                container = self._launch(item, step, tenant_id)
            # A container started beside an old one joins its service's name once ready; any
            # other was created under that name already.
            beside = step.strategy is Strategy.START_BESIDE and bool(step.container_id)
            self._await_ready(item, container.id, container.name, step.reason,
                              self._still_wanted, join=beside)  # fmt: skip
        except BaseException:
            self._abandoned.set()
            raise

    def _still_wanted(self) -> str | None:
        if self._abandoned.is_set():
            raise _Abandoned()
        return self.interruption.reason()

    def _launch(self, item: Prepared, step: Step, tenant_id: str) -> CreatedContainer:
        """Stop the old container first if need be, then create and start the new one."""
        self.interruption.check()
        if step.strategy is Strategy.STOP_FIRST and step.container_id:
            self._stop_old(step, "published port")
        params = self._params(item, tenant_id)
        if step.strategy is Strategy.START_BESIDE and step.container_id:
            # Off the service's DNS name until ready: the old generation alone answers to it.
            # (The engine makes a container's hostname a DNS alias too: it keeps its id's.)
            params["networking_config"] = {network_name(self.env_id): {"Aliases": []}}
            params["hostname"] = None
        container = self.rt.engine.create(params, item.files)
        with self._lock:
            self.created.append(container.id)
        self.rt.engine.start(container.id)
        return container

    def _stop_old(self, step: Step, why: str) -> None:
        assert step.container_id is not None  # a replacement names the container it replaces
        with self._lock:
            if step.container_id in self.stopped:
                return  # before its volumes were snapshotted
        self.events.emit(f"stopping the old container first ({why})", app=step.app,
                         service=step.service)  # fmt: skip
        self.rt.engine.stop(step.container_id, timeout=STOP_TIMEOUT)
        with self._lock:
            self.stopped.append(step.container_id)

    def _await_ready(
        self,
        item: Prepared,
        container_id: str,
        name: str,
        reason: str,
        interrupted=None,
        *,
        join: bool = True,
    ) -> None:
        try:
            took = wait_ready(
                self.rt.engine,
                container_id,
                item.rendered,
                network_name(self.env_id),
                min_running=self.rt.settings.min_running_seconds,
                interrupted=interrupted or self.interruption.reason,
            )
        except NotReady as exc:
            tail = self.rt.engine.logs_tail(container_id)
            message = f"{name} failed: {exc}"
            if tail:
                message += f"\nlast log lines:\n{tail}"
            self.events.emit(message, level="error", app=item.app, service=item.service)
            raise
        if join:  # ready: now it answers to the service's name too (beside the old one)
            self.rt.engine.join_as(container_id, network_name(self.env_id),
                                   [hostname(item.app, item.service)])  # fmt: skip
        self.events.emit(f"{name} ready in {took:.1f} s ({reason})",
                         app=item.app, service=item.service)  # fmt: skip

    def _params(self, item: Prepared, tenant_id: str) -> dict:
        labels = {
            ENV_LABEL: self.env_id,
            TENANT_LABEL: tenant_id,
            APP_LABEL: item.app,
            SERVICE_LABEL: item.service,
            REPLICA_LABEL: str(item.replica),
            REVISION_LABEL: str(self.revision),
            FENCING_LABEL: str(self.fencing),
            HASH_LABEL: item.config_hash,
        }
        volumes = {
            v["name"]: self.volumes[item.app, v["name"]] for v in item.rendered.get("volumes", [])
        }
        target = ContainerTarget(
            name=container_name(self.env_id, item.app, item.service, item.replica, self.revision),
            hostname=hostname(item.app, item.service),
            image=item.image_id,
            network=network_name(self.env_id),
            labels=labels,
            volumes=volumes,
            host_ports=item.host_ports,
            log_max_bytes=self.log_share,
        )
        return container_params(item.rendered, target, self.rt.defaults)

    def _teardown(self, steps: tuple[Step, ...]) -> None:
        for step in steps:
            if step.container_id:
                self.rt.engine.retire(step.container_id, network_name(self.env_id))
        if steps:
            self.events.emit(f"removed {len(steps)} old container(s)")

    # -- undo and finish -------------------------------------------------------------------

    def _undo(self) -> None:
        # Kept leftovers of an earlier attempt at this revision go too, never checked ready.
        ours = [c for c in self.rt.engine.observe(self.env_id) if c.revision == self.revision]
        touched = {c.app for c in ours if c.app}  # apps whose volumes a new container may change
        for container_id in dict.fromkeys([*reversed(self.created), *(c.id for c in ours)]):
            self.rt.engine.retire(container_id, network_name(self.env_id))
        restored = self.safekeeping.restore(touched)  # before the old containers read them
        for container_id in self.stopped:
            try:
                self.rt.engine.start(container_id)
            except EngineError as exc:
                self.events.emit(f"could not restart {container_id[:12]}: {exc}", level="error")
        if self.created or self.stopped:
            self.events.emit(
                f"undone: removed {len(self.created)} new container(s), "
                f"restored {restored} volume(s), restarted {len(self.stopped)} old one(s)"
            )
