"""Executing a deployment: bring an environment to revision N, or undo every change.

New containers start beside the old ones (or stop-first for published ports),
must prove ready, and only then do the old generation and removed apps go.
Any failure, cancel or render error undoes everything this revision did; the
previous revision keeps serving. Every step is idempotent, so a redelivered
message or a second attempt after a killed worker converges without duplicates.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from catalog.models import ContainerRecord, Deployment, Environment
from catalog.models.common import utcnow
from catalog.secretbox import SecretBox, SecretKeyError, open_all
from catalog.services.quotas import Quotas
from packages.archive import PackageArchive, open_archive
from packages.container import ContainerTarget, RuntimeDefaults, container_params
from packages.errors import PackageError
from packages.imageref import RegistryPolicy
from packages.render_process import RenderLimits, RenderProcess
from packages.secrets import redact
from workers import lease
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
    Engine,
    EngineError,
)
from workers.events import EventLog
from workers.images import ensure_bundled_image
from workers.lifecycle import aware
from workers.names import container_name, hostname, network_name
from workers.parallel import run_in_waves
from workers.planner import Plan, Step, Strategy, plan
from workers.ports import PortsExhausted, allocate, parse_range, release_orphans
from workers.prepare import Prepared, PrepareError, prepare, published_ports
from workers.readiness import Interrupted, NotReady, wait_ready

log = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 0.5
STOP_TIMEOUT = 3  # seconds an old container gets to stop before it is killed
# Containers of one deployment waiting to prove ready at once. The engine work (stop,
# create, start) is bounded by DEPLOY_PARALLELISM; a wait holds no engine slot.
MAX_WAITING = 64
DEPLOY_TIME_LIMIT = 1800.0  # the default of CATALOG_DEPLOY_TIME_LIMIT_SECONDS


class LeaseBusy(Exception):
    """Another worker holds the environment; try again shortly."""


class DatabaseAway(Exception):
    """The database stopped answering mid-deploy: the attempt stops as it is and is retried.

    Nothing is undone (undoing would need the database to record it); the next attempt,
    under a new fencing token, keeps what this one started once it proves ready.
    """


class _Abandoned(Exception):
    """Another container of this attempt failed: stop starting and waiting, it is undone."""


@dataclass
class Runtime:
    """What a worker needs to deploy: database, engine, blob store and settings."""

    sessions: sessionmaker[Session]
    engine: Engine
    blob_path: Callable[[str], Any]
    settings: dict[str, Any]
    owner: str
    defaults: RuntimeDefaults = field(default_factory=RuntimeDefaults)
    # The registered host whose engine `engine` drives (the tracker's); None: the default one.
    host_id: str | None = None
    # Opens the secret parameters of a snapshot, only to build its containers.
    secrets: SecretBox = field(default_factory=SecretBox)


def deploy(rt: Runtime, env_id: str, revision: int) -> str:
    """Run revision N of an environment; returns the deployment's final status.

    Raises LeaseBusy when another worker acts on the environment.
    """
    if not _should_run(rt, env_id, revision):
        return "skipped"
    seconds = lease_seconds(rt)
    fencing = lease.acquire(rt.sessions, env_id, rt.owner, seconds=seconds)
    if fencing is None:
        raise LeaseBusy(env_id)
    try:
        with lease.Heartbeat(rt.sessions, env_id, rt.owner, fencing, seconds=seconds) as heartbeat:
            return Execution(rt, env_id, revision, fencing, heartbeat).run()
    finally:
        # With the database away the lease cannot be released: it expires on its own.
        with contextlib.suppress(DBAPIError):
            lease.release(rt.sessions, env_id, rt.owner, fencing)


def network_pool(rt: Runtime) -> tuple[IPv4Network | None, int]:
    """Where environment networks take their subnets (CATALOG_NETWORK_POOL), and their prefix.

    No pool: the engine's default address pools choose.
    """
    pool = rt.settings["NETWORK_POOL"]
    return (IPv4Network(pool) if pool else None), rt.settings["NETWORK_PREFIX"]


def lease_seconds(rt: Runtime) -> float:
    """How long an environment lease lasts unless renewed (CATALOG_LEASE_SECONDS)."""
    return float(rt.settings.get("LEASE_SECONDS", lease.LEASE_SECONDS))


def deploy_time_limit(rt: Runtime) -> float:
    """Seconds one deployment may take over all its attempts (CATALOG_DEPLOY_TIME_LIMIT_SECONDS)."""
    return float(rt.settings.get("DEPLOY_TIME_LIMIT_SECONDS", DEPLOY_TIME_LIMIT))


def _should_run(rt: Runtime, env_id: str, revision: int) -> bool:
    """False for finished, missing or superseded deployments (marked so)."""
    with rt.sessions() as session:
        deployment = _deployment(session, env_id, revision)
        if deployment is None or deployment.status not in ("queued", "running"):
            return False
        newer = session.scalar(
            select(Deployment.revision)
            .where(
                Deployment.environment_id == env_id,
                Deployment.revision > revision,
                Deployment.status.in_(("queued", "running")),
            )
            .limit(1)
        )
        if newer is not None and deployment.status == "queued":
            deployment.status = "cancelled"
            deployment.error = f"superseded by revision {newer}"
            deployment.finished_at = utcnow()
            EventLog(rt.sessions, env_id, revision).add(
                session, f"revision {revision} superseded by {newer}"
            )
            session.commit()
            return False
        return True


def _deployment(session: Session, env_id: str, revision: int) -> Deployment | None:
    return session.scalar(
        select(Deployment).where(
            Deployment.environment_id == env_id, Deployment.revision == revision
        )
    )


class Execution:
    """One attempt at one revision, holding the environment's lease."""

    def __init__(self, rt: Runtime, env_id: str, revision: int, fencing: int, heartbeat) -> None:
        self.rt = rt
        self.env_id = env_id
        self.revision = revision
        self.fencing = fencing
        self.heartbeat = heartbeat
        self.events = EventLog(rt.sessions, env_id, revision)
        self.created: list[str] = []  # containers this attempt created
        self.stopped: list[str] = []  # old containers stopped first (published ports)
        self._archives: dict[str, PackageArchive] = {}
        self._image_ids: dict[str, str] = {}  # image reference -> id, resolved this attempt
        self.volumes: dict[tuple[str, str], str] = {}  # (app, volume) -> docker volume name
        self._lock = threading.Lock()
        self._engine_slots = threading.BoundedSemaphore(rt.settings["DEPLOY_PARALLELISM"])
        self._abandoned = threading.Event()  # set at the first failed start
        self._cancel_checked = 0.0
        self._cancel_reason: str | None = None
        self._deadline = math.inf  # time.monotonic() past which the deployment has failed

    # -- entry -----------------------------------------------------------------

    def run(self) -> str:
        started = self._start()
        if started is None:
            return "skipped"
        spec, env_name, tenant_id, had_revision = started
        self.log_share = spec.get("log_share") or self.rt.settings["LOG_SHARE_BYTES"]
        try:
            status = self._converge(spec, env_name, tenant_id)
        except lease.LeaseLost as exc:
            self.events.emit(f"stopped: {exc}", level="warning")
            return "lease_lost"
        except DBAPIError as exc:
            raise DatabaseAway(type(exc.orig).__name__ if exc.orig else str(exc)) from None
        except Interrupted as exc:
            self._undo()
            if self._out_of_time():
                return self._finish_failed(str(exc), had_revision)
            return self._finish_cancelled(str(exc), had_revision)
        except SoftTimeLimitExceeded:
            # Celery's backstop, in case a step that checks no deadline ran past it.
            self._undo()
            return self._finish_failed(self._time_limit_reason(), had_revision)
        except (
            PrepareError, PackageError, EngineError, NotReady, PortsExhausted, SecretKeyError,
        ) as exc:  # fmt: skip
            self._undo()
            return self._finish_failed(str(exc), had_revision)
        except Exception as exc:
            log.exception("deployment %s/%s failed unexpectedly", self.env_id, self.revision)
            self._undo()
            return self._finish_failed(f"internal error: {type(exc).__name__}", had_revision)
        finally:
            for archive in self._archives.values():
                archive.close()
        return status

    def _start(self):
        with self.rt.sessions() as session:
            deployment = _deployment(session, self.env_id, self.revision)
            environment = session.get(Environment, self.env_id)
            if deployment is None or environment is None or deployment.status not in (
                "queued", "running",
            ):  # fmt: skip
                return None
            if environment.status == "deleting":
                deployment.status, deployment.error = (
                    "cancelled",
                    "the environment is being deleted",
                )
                deployment.finished_at = utcnow()
                session.commit()
                return None
            deployment.status = "running"
            deployment.attempts += 1
            deployment.started_at = deployment.started_at or utcnow()
            self._set_deadline(deployment.started_at)
            environment.status = "deploying"
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

    def _converge(self, spec: dict, env_name: str, tenant_id: str) -> str:
        wanted_ports = published_ports(spec["apps"])
        prepared = self._prepare(spec, env_name, tenant_id)
        observed = self.rt.engine.observe(self.env_id)
        the_plan = plan(
            [p.desired() for p in prepared], observed, revision=self.revision, fencing=self.fencing
        )
        self._save_plan(the_plan)
        for step in the_plan.remove_now:
            self.events.emit(f"removing {step.container_id[:12]}: {step.reason}", app=step.app,
                             service=step.service)  # fmt: skip
            self.rt.engine.remove(step.container_id)
        self._ensure_network_and_volumes(spec, tenant_id)
        self._verify_leftovers(prepared, the_plan, observed)
        self._start_all(prepared, the_plan, tenant_id)
        self._check_interrupted()
        self._teardown(the_plan.remove_after)
        release_orphans(self.rt.sessions, self.env_id, set(wanted_ports))
        return self._finish_succeeded()

    def _prepare(self, spec: dict, env_name: str, tenant_id: str) -> list[Prepared]:
        spec = {**spec, "apps": open_all(spec["apps"], self.rt.secrets)}
        self.events.hide(spec)
        host_ports = allocate(
            self.rt.sessions,
            self.env_id,
            published_ports(spec["apps"]),
            parse_range(self.rt.settings["HOST_PORT_RANGE"]),
            tenant=(tenant_id, Quotas.from_config(self.rt.settings)),
        )
        # The templates render in a child with hard limits; a cancel stops it at once.
        limits = RenderLimits.from_settings(self.rt.settings)
        with RenderProcess(limits, should_stop=self._check_interrupted) as templates:
            return prepare(
                spec,
                env_name,
                read_member=self._read_member,
                image_id=lambda image, app: self._image_id(image, app, tenant_id),
                host_ports=host_ports,
                runtime_defaults=self.rt.defaults,
                templates=templates,
            )

    def start_missing(self, spec: dict, env_name: str, tenant_id: str, missing: set) -> list[str]:
        """The tracker's repair: create and start the containers of the `missing` (app, service,
        replica) slots of this revision, dependencies first, each until ready; their ids.

        Nothing is undone when one fails (the error propagates): what was created stays and
        the tracker follows it like any other container (restarts, crash loop).
        """
        self.log_share = spec.get("log_share") or self.rt.settings["LOG_SHARE_BYTES"]
        try:
            prepared = [p for p in self._prepare(spec, env_name, tenant_id) if p.key in missing]
            the_plan = plan(
                [p.desired() for p in prepared], [], revision=self.revision, fencing=self.fencing
            )
            starts = tuple(replace(s, reason="recreated: it was missing") for s in the_plan.start)
            self._ensure_network_and_volumes(spec, tenant_id)
            self._start_all(prepared, replace(the_plan, start=starts), tenant_id)
        finally:
            for archive in self._archives.values():
                archive.close()
            self._archives.clear()
        return list(self.created)

    def _save_plan(self, the_plan: Plan) -> None:
        steps = [
            {"action": s.strategy.name.lower(), "app": s.app, "service": s.service,
             "replica": s.replica, "container": s.container_id, "reason": s.reason}
            for group in (the_plan.remove_now, the_plan.keep, the_plan.start, the_plan.remove_after)
            for s in group
        ]  # fmt: skip
        with self.rt.sessions() as session:
            deployment = _deployment(session, self.env_id, self.revision)
            deployment.plan = steps
            session.commit()
        kept, started, removed = len(the_plan.keep), len(the_plan.start), len(the_plan.remove_after)
        self.events.emit(f"plan: {started} to start, {kept} unchanged, {removed} to remove")

    def _ensure_network_and_volumes(self, spec: dict, tenant_id: str) -> None:
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
        parallelism = self.rt.settings["DEPLOY_PARALLELISM"]
        outcome = run_in_waves(
            the_plan.start_dependencies(),
            lambda key: self._start_one(by_key[key], steps[key], tenant_id),
            # Every independent container starts before any waits: a readiness window
            # (MIN_RUNNING_SECONDS or the healthcheck's) holds a thread, not an engine slot.
            max_workers=max(parallelism, min(len(steps), MAX_WAITING)),
            cancelled=lambda: self._interrupted() is not None,
        )
        failed = {k: e for k, e in outcome.failed.items() if not isinstance(e, _Abandoned)}
        if failed:
            key, error = sorted(failed.items())[0]
            if isinstance(error, Interrupted | lease.LeaseLost | DBAPIError):
                raise error
            raise NotReady(f"{key[0]}/{key[1]}: {error}")
        self._check_interrupted()

    def _verify_leftovers(self, prepared: list[Prepared], the_plan: Plan, observed) -> None:
        """Kept containers that a dead attempt at this revision started must prove ready too.

        The planner keeps such a container when it runs with the wanted config, but its
        worker died before it was checked ready; what depends on it starts only after.
        """
        by_key = {p.key: p for p in prepared}
        leftovers = {
            c.id: c.name
            for c in observed
            if c.revision == self.revision and c.fencing is not None and c.fencing < self.fencing
        }
        for step in the_plan.keep:
            if step.container_id in leftovers:
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
        return self._interrupted()

    def _launch(self, item: Prepared, step: Step, tenant_id: str) -> CreatedContainer:
        """Stop the old container first if need be, then create and start the new one."""
        self._check_interrupted()
        if step.strategy is Strategy.STOP_FIRST and step.container_id:
            self.events.emit("stopping the old container first (published port)",
                             app=item.app, service=item.service)  # fmt: skip
            self.rt.engine.stop(step.container_id, timeout=STOP_TIMEOUT)
            with self._lock:
                self.stopped.append(step.container_id)
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
                min_running=self.rt.settings["MIN_RUNNING_SECONDS"],
                interrupted=interrupted or self._interrupted,
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

    # -- reading the snapshot's inputs ---------------------------------------------

    def _archive(self, digest: str) -> PackageArchive:
        """The package archive of `digest`, opened once per attempt; hold `_lock` to use it."""
        archive = self._archives.get(digest)
        if archive is None:
            archive = self._archives[digest] = open_archive(self.rt.blob_path(digest))
        return archive

    def _read_member(self, digest: str, member: str) -> bytes:
        with self._lock:
            return self._archive(digest).read(member)

    def _image_id(self, image: Any, app: Mapping[str, Any], tenant_id: str) -> str:
        if isinstance(image, str):
            # Once per reference and attempt: services sharing an image cost one engine call
            # and run the very same image id.
            if image not in self._image_ids:
                self._image_ids[image] = self.rt.engine.image_id(
                    image,
                    pull=self.rt.settings["ALLOW_PULL"],
                    registries=RegistryPolicy.from_setting(self.rt.settings["REGISTRIES"]),
                )
            return self._image_ids[image]
        return self._bundled_image_id(image, app, tenant_id)

    def _bundled_image_id(self, image: Mapping[str, Any], app: Mapping[str, Any],
                          tenant_id: str) -> str:  # fmt: skip
        """Checked, loaded under a catalog-owned name (once per package digest), run by id."""
        with self._lock:  # the archive is read while the engine loads it
            result = ensure_bundled_image(
                self.rt.engine,
                tenant_id=tenant_id,
                package=app["package"],
                digest=app["digest"],
                image=image,
                open_member=self._archive(app["digest"]).open,
            )
        done = "loaded" if result.loaded else "already loaded"
        self.events.emit(f"bundled image {image['bundled']} {done} as {result.name} "
                         f"({result.image_id[:19]})", app=app["name"])  # fmt: skip
        return result.image_id

    # -- interruption ------------------------------------------------------------------

    def _set_deadline(self, started_at) -> None:
        """The time limit counts from the first attempt: a retried deployment gets no more."""
        elapsed = (utcnow() - aware(started_at)).total_seconds()
        self._deadline = time.monotonic() + deploy_time_limit(self.rt) - max(elapsed, 0.0)

    def _out_of_time(self) -> bool:
        return time.monotonic() >= self._deadline

    def _time_limit_reason(self) -> str:
        return f"the deployment ran past its time limit of {deploy_time_limit(self.rt):.0f} s"

    def _interrupted(self) -> str | None:
        if self.heartbeat.lost.is_set():
            return "the environment lease was lost"
        if self._out_of_time():
            return self._time_limit_reason()
        now = time.monotonic()
        with self._lock:
            if self._cancel_reason is None and now - self._cancel_checked >= CANCEL_POLL_SECONDS:
                self._cancel_checked = now
                self._cancel_reason = self._read_cancel_reason()
            return self._cancel_reason

    def _read_cancel_reason(self) -> str | None:
        with self.rt.sessions() as session:
            deployment = _deployment(session, self.env_id, self.revision)
            environment = session.get(Environment, self.env_id)
        if deployment is None or environment is None or environment.status == "deleting":
            return "the environment is being deleted"
        if deployment.cancel_requested:
            return "cancelled by request"
        return None

    def _check_interrupted(self) -> None:
        self.heartbeat.check()
        reason = self._interrupted()
        if reason:
            raise Interrupted(reason)

    # -- undo and finish -------------------------------------------------------------------

    def _undo(self) -> None:
        # Kept leftovers of an earlier attempt at this revision go too, never checked ready.
        ours = [c.id for c in self.rt.engine.observe(self.env_id) if c.revision == self.revision]
        for container_id in dict.fromkeys([*reversed(self.created), *ours]):
            self.rt.engine.retire(container_id, network_name(self.env_id))
        for container_id in self.stopped:
            try:
                self.rt.engine.start(container_id)
            except EngineError as exc:
                self.events.emit(f"could not restart {container_id[:12]}: {exc}", level="error")
        if self.created or self.stopped:
            self.events.emit(
                f"undone: removed {len(self.created)} new container(s), "
                f"restarted {len(self.stopped)} old one(s)"
            )

    def _finish_succeeded(self) -> str:
        records = self.rt.engine.observe(self.env_id)
        with self.rt.sessions() as session:
            deployment = _deployment(session, self.env_id, self.revision)
            environment = session.get(Environment, self.env_id)
            deployment.status, deployment.finished_at, deployment.error = "succeeded", utcnow(), ""
            environment.current_revision = self.revision
            environment.status, environment.status_detail = "ready", ""
            _replace_records(session, self.env_id, records, self.log_share)
            self.events.add(session, f"revision {self.revision} is ready")
            session.commit()
        return "succeeded"

    def _finish_failed(self, reason: str, had_revision: bool) -> str:
        status = "rolled_back" if had_revision else "failed"
        detail = f"revision {self.revision} failed: {reason}"
        suffix = "; the previous revision keeps serving" if had_revision else ""
        self._finish(status, "deploy_failed", detail, event=(detail + suffix, "error"))
        return status

    def _finish_cancelled(self, reason: str, had_revision: bool) -> str:
        event = (f"revision {self.revision} cancelled: {reason}", "warning")
        if reason == "the environment is being deleted":
            self._finish("cancelled", None, reason, event=event)
        else:
            self._finish("cancelled", "ready" if had_revision else "new", "", event=event)
        return "cancelled"

    def _finish(
        self, status: str, env_status: str | None, detail: str, *, event: tuple[str, str]
    ) -> None:
        """The final status, with the revision's last event (message, level) in its commit."""
        with self.rt.sessions() as session:
            deployment = _deployment(session, self.env_id, self.revision)
            environment = session.get(Environment, self.env_id)
            detail = redact(detail, self.events.hidden)
            if deployment is not None:
                deployment.status, deployment.finished_at = status, utcnow()
                deployment.error = detail
            if environment is not None and env_status is not None:
                environment.status, environment.status_detail = env_status, detail
            if environment is not None:  # else its events went with it
                message, level = event
                self.events.add(session, message, level=level)
            session.commit()


def _replace_records(session: Session, env_id: str, observed, log_share: int) -> None:
    """Container records mirror what the engine shows for the environment right now.

    A container that stays keeps its record and what the tracker learnt of it (restarts,
    deaths, exit code, OOM); the records of containers gone are dropped.
    """
    existing = {
        record.id: record
        for record in session.scalars(
            select(ContainerRecord).where(ContainerRecord.environment_id == env_id)
        )
    }
    kept: set[str] = set()
    for item in observed:
        if item.app is None or item.service is None:
            continue
        record = existing.get(item.id)
        if record is None:
            record = ContainerRecord(id=item.id, environment_id=env_id)
            session.add(record)
        record.revision = item.revision or 0
        record.app, record.service, record.name = item.app, item.service, item.name
        record.config_hash = item.config_hash or ""
        record.state = "running" if item.running else "exited"
        record.log_bytes = log_share
        record.updated_at = utcnow()
        kept.add(item.id)
    for container_id in existing.keys() - kept:
        session.delete(existing[container_id])
