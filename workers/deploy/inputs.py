"""What a deployment snapshot's containers are made of: package archive members and images."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, BinaryIO

from catalog.services.blobs import digest_of
from packages.archive import PackageArchive, open_archive
from packages.imageref import PullPolicy, RegistryPolicy
from workers.deploy.images import ensure_bundled_image
from workers.deploy.offline import ensure_offline_image, stored_digest
from workers.deploy.prepare import PrepareError
from workers.deploy.registries import PullRefused, access_of, pull_for
from workers.engine import ANONYMOUS, EngineError
from workers.events import EventLog
from workers.runtime import Runtime


class ArchiveUnusable(PrepareError):
    """A package's archive is missing from the blob store or does not match its digest."""


class Archives:
    """Package archives by digest, each verified and opened once, until `close`."""

    def __init__(self, blob_path: Callable[[str], Any]) -> None:
        self.blob_path = blob_path
        self._opened: dict[str, PackageArchive] = {}
        self._files: list[BinaryIO] = []  # the blobs the archives read
        self._packages: dict[str, str] = {}  # digest -> "name version", for errors
        # What was hashed and matched: digest -> the file's (size, mtime_ns, inode) then.
        self._verified: dict[str, tuple[int, int, int]] = {}
        self._lock = threading.Lock()

    def verify(self, apps: Iterable[Mapping[str, Any]]) -> None:
        """Check the archive of each snapshot app against its digest before any is used (an
        app may need none of its archive); ArchiveUnusable names the package and version."""
        apps = list(apps)
        for app in apps:
            self._packages.setdefault(app["digest"], f"{app['package']} {app['version']}")
        with self._lock:
            for app in apps:
                with self._blob(app["digest"]):
                    pass

    def close(self) -> None:
        for archive in self._opened.values():
            archive.close()
        for blob in self._files:
            blob.close()
        self._opened.clear()
        self._files.clear()
        self._verified.clear()

    def _archive(self, digest: str) -> PackageArchive:
        """The package archive of `digest`; hold `_lock` to use it."""
        archive = self._opened.get(digest)
        if archive is None:
            blob = self._blob(digest)
            try:
                archive = open_archive(blob)  # reads the very file that was hashed
            except BaseException:
                blob.close()
                raise
            self._files.append(blob)
            self._opened[digest] = archive
        return archive

    def _blob(self, digest: str) -> BinaryIO:
        """The blob of `digest` opened at byte 0, once it holds what the digest names.

        It is hashed once while this object lives (one attempt), and again if the file
        changed since (size, modification time or inode)."""
        package = self._packages.get(digest)
        what = f"package {package}" if package else "a package"
        try:
            blob = open(self.blob_path(digest), "rb")  # noqa: SIM115 (the caller closes it)
        except FileNotFoundError:
            raise ArchiveUnusable(
                f"{what}: the archive {digest} is missing from the blob store"
            ) from None
        try:
            stat = os.fstat(blob.fileno())
            seen = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
            if self._verified.get(digest) != seen:
                found = digest_of(blob)
                if found != digest:
                    raise ArchiveUnusable(
                        f"{what}: the archive does not match its digest {digest} "
                        f"(the stored file holds {found}); it is not used"
                    )
                self._verified[digest] = seen
                blob.seek(0)
        except BaseException:
            blob.close()
            raise
        return blob

    def read_member(self, digest: str, member: str) -> bytes:
        with self._lock:
            return self._archive(digest).read(member)


class SnapshotInputs(Archives):
    """The archives (opened once per attempt) and image ids (resolved once per reference)."""

    def __init__(self, rt: Runtime, events: EventLog) -> None:
        super().__init__(rt.blob_path)
        self.rt, self.events = rt, events
        # (image reference, pull policy) -> id, resolved this attempt
        self._image_ids: dict[tuple[str, PullPolicy], str] = {}

    def image_id(
        self,
        image: Any,
        app: Mapping[str, Any],
        tenant_id: str,
        policy: PullPolicy = PullPolicy.IF_NOT_PRESENT,
    ) -> str:
        if isinstance(image, str):
            # Once per reference (and pull policy) and attempt: services sharing an image cost
            # one engine call and run the very same image id.
            if (image, policy) not in self._image_ids:
                self._image_ids[image, policy] = self._offline_image_id(
                    image, app, tenant_id
                ) or self._registry_image_id(image, app, tenant_id, policy)
            return self._image_ids[image, policy]
        return self._bundled_image_id(image, app, tenant_id)

    def _offline_image_id(self, image: str, app: Mapping[str, Any], tenant_id: str) -> str | None:
        """The tenant's offline image of `image` (a bundle carried it in), if it has one: it
        wins over any registry and any pull policy (workers/deploy/offline.py)."""
        digest = stored_digest(self.rt, tenant_id, image)
        if digest is None:
            return None
        result = ensure_offline_image(self.rt, tenant_id, image, digest)
        done = "loaded" if result.loaded else "already loaded"
        self.events.emit(f"offline image {image} {done} as {result.name} "
                         f"({result.image_id[:19]})", app=app["name"])  # fmt: skip
        return result.image_id

    def _registry_image_id(
        self, image: str, app: Mapping[str, Any], tenant_id: str, policy: PullPolicy
    ) -> str:
        """Pulled as the service's policy and the registry require: from a registry tenants
        keep credentials for, at every deploy and as this tenant (workers/deploy/registries.py)."""
        settings = self.rt.settings
        access = access_of(self.rt, tenant_id, image)
        pull = pull_for(image, policy, access, allow_pull=settings.allow_pull)
        try:
            found = self.rt.engine.image_id(
                image,
                pull=settings.allow_pull,
                registries=RegistryPolicy.from_setting(settings.registries),
                policy=pull.policy,
                auth=pull.auth,
            )
        except EngineError as exc:
            if pull.auth == ANONYMOUS:
                raise PullRefused(
                    f"{exc} (the tenant has no credentials for {access.server})"
                ) from None
            raise
        if access.auth is not None:
            self.events.emit(f"image {image} pulled with the tenant's credentials for "
                             f"{access.server}", app=app["name"])  # fmt: skip
        return found

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
