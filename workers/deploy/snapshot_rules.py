"""Which volumes a revision snapshots before it changes their data, and which snapshots
retention removes: decided from plain values, without Docker or a database."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workers.deploy.planner import Step

Guarded = dict[tuple[str, str], tuple[str, ...]]
"""(app, service) -> the package volumes a replacement of that service snapshots first."""


@dataclass(frozen=True)
class VolumeToSnapshot:
    app: str
    service: str  # the replaced service it is snapshotted for (the first by name)
    volume: str  # the package's volume name
    container_id: str  # the old container, stopped before the copy


def guarded_services(
    apps: Sequence[Mapping[str, Any]], serving: Sequence[Mapping[str, Any]] | None
) -> Guarded:
    """The services of `apps` (a snapshot's) whose replacement touches data, with the volumes.

    A service is guarded when it mounts, writable, a named volume that its app already had in
    the serving revision (`serving`, that revision's apps; None when none serves: a volume
    made now holds no data yet), and either the app moves to another package or version, or
    the service says `data: {migrates: true}` (a replacement changes its data whatever the
    version).
    """
    before = {app["name"]: app for app in serving or ()}
    guarded: Guarded = {}
    for app in apps:
        was = before.get(app["name"])
        if was is None:
            continue
        had = {
            volume["name"]
            for service in was["manifest"].get("services", {}).values()
            for volume in service.get("volumes", [])
        }
        moved = (app["package"], app["version"]) != (was["package"], was["version"])
        for name, service in sorted(app["manifest"].get("services", {}).items()):
            migrates = bool((service.get("data") or {}).get("migrates"))
            volumes = sorted(
                {
                    volume["name"]
                    for volume in service.get("volumes", [])
                    if not volume.get("read_only") and volume["name"] in had
                }
            )
            if volumes and (moved or migrates):
                guarded[(app["name"], name)] = tuple(volumes)
    return guarded


def volumes_to_snapshot(start: Iterable[Step], guarded: Guarded) -> list[VolumeToSnapshot]:
    """One snapshot per app volume that a started step replacing a guarded service mounts.

    An app volume two replaced services mount is copied once (both old containers stopped
    first), for the first of them by name.
    """
    found: dict[tuple[str, str], VolumeToSnapshot] = {}
    for step in sorted(start, key=lambda s: (s.app or "", s.service or "", s.replica or 0)):
        if step.app is None or step.service is None or step.container_id is None:
            continue
        for volume in guarded.get((step.app, step.service), ()):
            found.setdefault(
                (step.app, volume),
                VolumeToSnapshot(step.app, step.service, volume, step.container_id),
            )
    return list(found.values())


def past_retention(
    snapshots: Iterable[tuple[str, int]], successful: Iterable[int], retention: int
) -> list[str]:
    """The ids of `snapshots` ((id, revision) pairs) that retention removes.

    A snapshot made by revision r is kept through the first successful revision at or after
    r (r itself when it succeeded; the next success when r was undone) and `retention` more
    successful revisions; once more than that many have succeeded after that first one, it
    goes. With retention 2, the snapshot of revision 3 (which succeeded) goes when the third
    successful revision after 3 does.
    """
    done = sorted(set(successful))
    gone = []
    for snapshot_id, revision in snapshots:
        first = bisect.bisect_left(done, revision)
        if first < len(done) and len(done) - first - 1 > retention:
            gone.append(snapshot_id)
    return gone
