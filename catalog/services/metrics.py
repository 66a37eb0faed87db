"""The catalog's state as Prometheus metrics, read from the database when a scrape asks.

Nothing here is counted in a process: deployments, apps and log budgets are rows every API
process reads alike, so any process answers a scrape with the same figures, and a restarted
worker loses none of them. A scrape costs a handful of aggregate queries (one per family),
none of which grows with the number of requests served.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import Float, and_, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from catalog.config import Settings
from catalog.models import (
    App,
    ContainerRecord,
    Deployment,
    Environment,
    Host,
    Package,
    PackageVersion,
    Tenant,
)
from catalog.models.deployment import FINISHED, IN_FLIGHT, DeploymentStatus
from catalog.models.environment import AppStatus
from catalog.services.environment_rules import app_status

# Seconds from a deployment's start to its end: a pull and a health gate take from seconds
# to the deploy timeout (minutes).
DEPLOYMENT_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
# The host label of environments placed on no registered host (the default engine).
DEFAULT_HOST = "default"


class seconds_between(FunctionElement):
    """SQL: the seconds from one timestamp to another (`seconds_between(start, end)`)."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between)
def _seconds_between(element, compiler, **kw):
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _seconds_between_postgresql(element, compiler, **kw):
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"extract(epoch from ({end} - {start}))"


class CatalogCollector(Collector):
    """The catalog's figures, read through `session` at each scrape."""

    def __init__(self, session: Session, settings: Settings):
        self.session = session
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        yield from self._deployments()
        yield self._deployment_durations()
        yield self._apps()
        yield from self._log_budgets()
        for name, model, documentation in (
            ("catalog_tenants", Tenant, "Tenants."),
            ("catalog_packages", Package, "Packages."),
            ("catalog_package_versions", PackageVersion, "Published package versions."),
        ):
            count = self.session.scalar(select(func.count()).select_from(model)) or 0
            yield GaugeMetricFamily(name, documentation, value=count)

    def _deployments(self) -> Iterator[Metric]:
        by_status: dict[str, int] = {
            status: count
            for status, count in self.session.execute(
                select(Deployment.status, func.count()).group_by(Deployment.status)
            )
        }
        finished = CounterMetricFamily(
            "catalog_deployments", "Deployments finished, by outcome.", labels=["status"]
        )
        for status in sorted(FINISHED):
            finished.add_metric([status], by_status.get(status, 0))
        yield finished
        yield CounterMetricFamily(
            "catalog_rollbacks",
            "Deployments that failed and rolled their environment back.",
            value=by_status.get(DeploymentStatus.ROLLED_BACK, 0),
        )
        in_flight = GaugeMetricFamily(
            "catalog_deployments_in_flight",
            "Deployments queued or running now.",
            labels=["status"],
        )
        for status in sorted(IN_FLIGHT):
            in_flight.add_metric([status], by_status.get(status, 0))
        yield in_flight

    def _deployment_durations(self) -> Metric:
        took = seconds_between(Deployment.started_at, Deployment.finished_at)
        counted = [func.sum(case((took <= bound, 1), else_=0)) for bound in DEPLOYMENT_BUCKETS]
        row = self.session.execute(
            select(func.count(), func.coalesce(func.sum(took), 0.0), *counted).where(
                Deployment.status.in_(FINISHED),
                Deployment.started_at.is_not(None),
                Deployment.finished_at.is_not(None),
            )
        ).one()
        total, seconds, cumulative = row[0], float(row[1]), row[2:]
        buckets = [
            (_bound(bound), count or 0)
            for bound, count in zip(DEPLOYMENT_BUCKETS, cumulative, strict=True)
        ]
        buckets.append(("+Inf", total))
        return HistogramMetricFamily(
            "catalog_deployment_duration_seconds",
            "Time from a deployment's start to its end, of finished deployments.",
            buckets=buckets,
            sum_value=seconds,
        )

    def _apps(self) -> Metric:
        current = {
            environment_id: (status, {a["name"] for a in (spec or {}).get("apps", [])})
            for environment_id, status, spec in self.session.execute(
                select(Deployment.environment_id, Deployment.status, Deployment.spec).join(
                    Environment,
                    and_(
                        Deployment.environment_id == Environment.id,
                        Deployment.revision == Environment.current_revision,
                    ),
                )
            )
        }
        containers = defaultdict(list)
        for record in self.session.scalars(select(ContainerRecord)):
            containers[record.environment_id, record.app].append(record)
        counted: Counter[str] = Counter()
        for environment_id, name in self.session.execute(select(App.environment_id, App.name)):
            status, deployed = current.get(environment_id, (None, set()))
            counted[
                app_status(name in deployed, status, containers.get((environment_id, name), ()))
            ] += 1
        family = GaugeMetricFamily(
            "catalog_apps", "Apps of every environment, by status.", labels=["status"]
        )
        for status in AppStatus:
            family.add_metric([status.value], counted.get(status, 0))
        return family

    def _log_budgets(self) -> Iterator[Metric]:
        used: dict[str | None, int] = {
            host_id: held
            for host_id, held in self.session.execute(
                select(Environment.host_id, func.sum(ContainerRecord.log_bytes))
                .join(Environment, ContainerRecord.environment_id == Environment.id)
                .group_by(Environment.host_id)
            )
        }
        names: dict[str | None, str] = {None: DEFAULT_HOST}
        names.update(
            {host_id: name for host_id, name in self.session.execute(select(Host.id, Host.name))}
        )
        held = GaugeMetricFamily(
            "catalog_log_bytes",
            "Bytes of container logs held on each engine host.",
            labels=["host"],
        )
        budget = GaugeMetricFamily(
            "catalog_log_budget_bytes",
            "Bytes of container logs each engine host may hold in all.",
            labels=["host"],
        )
        for host_id, name in sorted(names.items(), key=lambda item: item[1]):
            held.add_metric([name], used.get(host_id) or 0)
            budget.add_metric([name], self.settings.log_budget_bytes)
        yield held
        yield budget


def _bound(seconds: float) -> str:
    return str(float(seconds))
