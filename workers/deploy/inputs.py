"""What a deployment snapshot's containers are made of: package archive members and images."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from packages.archive import PackageArchive, open_archive
from packages.imageref import RegistryPolicy
from workers.deploy.images import ensure_bundled_image
from workers.events import EventLog
from workers.runtime import Runtime


class Archives:
    """Package archives by digest, each opened (and checked) once, until `close`."""

    def __init__(self, blob_path: Callable[[str], Any]) -> None:
        self.blob_path = blob_path
        self._opened: dict[str, PackageArchive] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        for archive in self._opened.values():
            archive.close()
        self._opened.clear()

    def _archive(self, digest: str) -> PackageArchive:
        """The package archive of `digest`; hold `_lock` to use it."""
        archive = self._opened.get(digest)
        if archive is None:
            archive = self._opened[digest] = open_archive(self.blob_path(digest))
        return archive

    def read_member(self, digest: str, member: str) -> bytes:
        with self._lock:
            return self._archive(digest).read(member)


class SnapshotInputs(Archives):
    """The archives (opened once per attempt) and image ids (resolved once per reference)."""

    def __init__(self, rt: Runtime, events: EventLog) -> None:
        super().__init__(rt.blob_path)
        self.rt, self.events = rt, events
        self._image_ids: dict[str, str] = {}  # image reference -> id, resolved this attempt

    def image_id(self, image: Any, app: Mapping[str, Any], tenant_id: str) -> str:
        if isinstance(image, str):
            # Once per reference and attempt: services sharing an image cost one engine call
            # and run the very same image id.
            if image not in self._image_ids:
                self._image_ids[image] = self.rt.engine.image_id(
                    image,
                    pull=self.rt.settings.allow_pull,
                    registries=RegistryPolicy.from_setting(self.rt.settings.registries),
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
