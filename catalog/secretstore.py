"""Every stored secret parameter sealed again with the first key of CATALOG_SECRET_KEY.

Sealed ones are re-encrypted (a rotation: `catalogctl admin rotate-secrets`); secrets stored
in clear by a catalog from before encryption are sealed (migration 0006 when a key is set,
or the first rotation). Draft apps, templates, deployment snapshots and action tasks are all
covered; webhook secrets and registry passwords by `reseal_columns`. The tables are read
with SQLAlchemy Core and only the columns needed here, so a migration can run it whatever
columns later revisions add to the models.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from collections.abc import Set as AbstractSet

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from catalog.secretbox import SecretBox, is_sealed, rotate_all, seal_at
from catalog.services.environment_rules import SecretPath, secret_paths
from packages.secrets import lookup

_JSON = sa.JSON()
_packages = sa.table("packages", sa.column("id"), sa.column("name"))
_versions = sa.table("package_versions", sa.column("package_id"), sa.column("manifest", _JSON))
_apps = sa.table(
    "apps", sa.column("id"), sa.column("environment_id"), sa.column("name"),
    sa.column("package"), sa.column("parameters", _JSON),
)  # fmt: skip
_templates = sa.table("templates", sa.column("id"), sa.column("apps", _JSON))
_deployments = sa.table("deployments", sa.column("id"), sa.column("spec", _JSON))
_tasks = sa.table(
    "tasks", sa.column("id"), sa.column("environment_id"), sa.column("app"),
    sa.column("action"), sa.column("parameters", _JSON),
)  # fmt: skip


def reseal_all(connection: Connection, box: SecretBox) -> dict[str, int]:
    """Seal every stored secret with the first key, in the caller's transaction.

    Returns {"rotated": sealed ones sealed again, "sealed": clear ones sealed now}.
    """
    manifests = _manifests(connection)
    counts: Counter[str] = Counter()
    for row in connection.execute(sa.select(_apps)).mappings():
        schemas = _parameter_schemas(manifests.get(row["package"], ()))
        _save(connection, _apps, row, "parameters",
              _reseal(row["parameters"] or {}, schemas, box, counts))  # fmt: skip
    for row in connection.execute(sa.select(_templates)).mappings():
        apps = [
            {**app, "parameters": _reseal(
                app.get("parameters") or {},
                _parameter_schemas(manifests.get(app.get("package"), ())),
                box, counts, {tuple(path) for path in app.get("secrets", ())},
            )}
            for app in row["apps"] or []
        ]  # fmt: skip
        _save(connection, _templates, row, "apps", apps)
    for row in connection.execute(sa.select(_deployments)).mappings():
        spec = dict(row["spec"] or {})
        spec["apps"] = [
            {**app, "parameters": _reseal(
                app.get("parameters") or {},
                (*_parameter_schemas(manifests.get(app.get("package"), ())),
                 (app.get("manifest") or {}).get("parameters")),
                box, counts,
            )}
            for app in spec.get("apps") or []
        ]  # fmt: skip
        _save(connection, _deployments, row, "spec", spec)
    packages = {
        (row["environment_id"], row["name"]): row["package"]
        for row in connection.execute(sa.select(_apps)).mappings()
    }
    for row in connection.execute(sa.select(_tasks)).mappings():
        package = packages.get((row["environment_id"], row["app"]))
        versions = manifests.get(package, ()) if package is not None else ()
        action_schemas = [((m.get("actions") or {}).get(row["action"]) or {}).get("parameters")
                          for m in versions]  # fmt: skip
        _save(connection, _tasks, row, "parameters",
              _reseal(row["parameters"] or {}, action_schemas, box, counts))  # fmt: skip
    return {"rotated": counts["rotated"], "sealed": counts["sealed"]}


# Columns of tables made after migration 0006 (which runs reseal_all before they exist), each
# holding one sealed value: a webhook's signing secret, a registry password.
_SEALED_COLUMNS = (("webhooks", "secret"), ("registry_credentials", "password"))


def reseal_columns(connection: Connection, box: SecretBox) -> int:
    """Seal every webhook secret and registry password again with the first key, in the
    caller's transaction; how many there were."""
    count = 0
    for name, column in _SEALED_COLUMNS:
        table = sa.table(name, sa.column("id"), sa.column(column, _JSON))
        for row in connection.execute(sa.select(table)).mappings():
            value, rotated = rotate_all(row[column], box)
            count += rotated
            _save(connection, table, row, column, value)
    return count


def reseal_everything(connection: Connection, box: SecretBox) -> dict[str, int]:
    """`reseal_all`, then `reseal_columns` (counted as rotated): `rotate-secrets`' work."""
    counts = reseal_all(connection, box)
    counts["rotated"] += reseal_columns(connection, box)
    return counts


def _manifests(connection: Connection) -> dict[str, list[dict]]:
    """The manifests of every version, by package name."""
    found: dict[str, list[dict]] = {}
    query = sa.select(_packages.c.name, _versions.c.manifest).join(
        _versions, _versions.c.package_id == _packages.c.id
    )
    for name, manifest in connection.execute(query):
        found.setdefault(name, []).append(manifest or {})
    return found


def _parameter_schemas(manifests: Iterable[dict]) -> tuple:
    return tuple(m.get("parameters") for m in manifests)


def _reseal(
    values: dict,
    schemas: Iterable,
    box: SecretBox,
    counts: Counter[str],
    also: AbstractSet[SecretPath] = frozenset(),
) -> dict:
    rotated, count = rotate_all(values, box)
    counts["rotated"] += count
    places = secret_paths(rotated, schemas) | also
    counts["sealed"] += sum(
        1 for path in places if lookup(rotated, path)[0] and not is_sealed(lookup(rotated, path)[1])
    )
    return seal_at(rotated, places, box)


def _save(connection: Connection, table: sa.TableClause, row, column: str, value) -> None:
    if value != row[column]:
        connection.execute(sa.update(table).where(table.c.id == row["id"]).values({column: value}))
