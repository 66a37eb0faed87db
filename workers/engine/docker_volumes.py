"""Volumes on a Docker engine copied by short-lived helper containers: snapshots and restores.

The worker never reads the engine's own storage (`/var/lib/docker`): a helper container of
CATALOG_SNAPSHOT_IMAGE mounts the source volume read-only and the target volume, copies with
`cp -a` and measures the copy with `du -sb`; its exit code and last output line are the
result. A snapshot volume holds the copy under `data/` and a `complete` marker written once
the copy has ended, so a copy cut short (a killed worker, a full disk) is never restored.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Mapping

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound
from docker.errors import NotFound as DockerNotFound
from docker.types import LogConfig, Mount

from workers.engine import EngineError, InUse, NotFound, VolumeCopy
from workers.engine.docker_images import explained

# The snapshot's layout: the copy under data/, then the marker that it is complete.
SNAPSHOT_SCRIPT = (
    "set -eu; rm -rf /to/data /to/complete; mkdir /to/data; cp -a /from/. /to/data/;"
    " touch /to/complete; du -sb /to/data"
)
# A snapshot without its marker is refused before the volume is touched. The copy goes to a
# staging directory in the volume first: a copy cut short (a timeout, a full disk) leaves the
# volume's own files as they were; only once it is whole are they replaced by the staged
# ones (renames within the volume: quick).
STAGING = "/to/.catalog-restore"
RESTORE_SCRIPT = (
    'set -eu; [ -f /from/complete ] || { echo "the snapshot is incomplete" >&2; exit 3; };'
    # The staging name among the snapshot's own entries could not be moved into place.
    ' [ ! -e /from/data/.catalog-restore ] || { echo "the snapshot holds .catalog-restore" >&2;'
    " exit 3; };"
    f" rm -rf {STAGING}; mkdir {STAGING}; cp -a /from/data/. {STAGING}/;"
    " find /to -mindepth 1 -maxdepth 1 ! -name .catalog-restore -exec rm -rf {} +;"
    f" find {STAGING} -mindepth 1 -maxdepth 1 -exec mv {{}} /to/ \\;; rmdir {STAGING};"
    " du -sb /to"
)
# What cp -a needs to keep owners, modes and times of files it may not own.
HELPER_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID")
HELPER_MEMORY = 256 * 1024 * 1024  # cp streams; the page cache it fills is reclaimable
HELPER_PIDS = 64


class DockerVolumes:
    """The volume-copying half of `DockerEngine`."""

    client: docker.DockerClient

    def snapshot_volume(
        self, volume: str, snapshot: str, labels: Mapping[str, str], *, image: str, timeout: float
    ) -> VolumeCopy:
        self._volume_exists(volume, f"volume {volume} is gone")
        try:  # creating an existing volume returns it: a partial copy in it is cleared
            self.client.api.create_volume(snapshot, labels=dict(labels))
        except DockerException as exc:
            raise EngineError(f"cannot make volume {snapshot}: {explained(exc)}") from None
        return self._copy(volume, snapshot, SNAPSHOT_SCRIPT, labels, image, timeout)

    def restore_volume(
        self, snapshot: str, volume: str, labels: Mapping[str, str], *, image: str, timeout: float
    ) -> VolumeCopy:
        # Checked first: mounting a missing volume would make an empty one of its name.
        self._volume_exists(snapshot, f"the snapshot volume {snapshot} is gone")
        self._volume_exists(volume, f"volume {volume} is gone")
        return self._copy(snapshot, volume, RESTORE_SCRIPT, labels, image, timeout)

    def remove_volume(self, name: str) -> None:
        try:
            self.client.api.remove_volume(name)
        except DockerNotFound:
            raise NotFound(f"volume {name} is gone") from None
        except APIError as exc:
            if exc.status_code == 409:
                raise InUse(f"volume {name} is in use: {exc.explanation}") from None
            raise EngineError(f"cannot remove volume {name}: {exc.explanation}") from None

    def _volume_exists(self, name: str, missing: str) -> None:
        try:
            self.client.api.inspect_volume(name)
        except DockerNotFound:
            raise NotFound(missing) from None
        except DockerException as exc:
            raise EngineError(f"cannot inspect volume {name}: {explained(exc)}") from None

    def _copy(
        self,
        source: str,
        target: str,
        script: str,
        labels: Mapping[str, str],
        image: str,
        timeout: float,
    ) -> VolumeCopy:
        """Run `script` in a helper with `source` read-only at /from and `target` at /to."""
        api = self.client.api
        host = api.create_host_config(
            mounts=[
                Mount("/from", source, type="volume", read_only=True, no_copy=True),
                Mount("/to", target, type="volume", no_copy=True),
            ],
            network_mode="none",
            cap_drop=["ALL"],
            cap_add=list(HELPER_CAPABILITIES),
            security_opt=["no-new-privileges:true"],
            read_only=True,
            mem_limit=HELPER_MEMORY,
            memswap_limit=HELPER_MEMORY,
            pids_limit=HELPER_PIDS,
            log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
        )
        what = f"copy of volume {source} into {target}"
        started = time.monotonic()
        container_id = None
        try:
            created = api.create_container(
                image, entrypoint=["/bin/sh"], command=["-c", script], user="0:0",
                labels=dict(labels), host_config=host, network_disabled=True,
                name=f"cat-copy-{uuid.uuid4().hex[:16]}",
            )  # fmt: skip
            container_id = created["Id"]
            api.start(container_id)
            code = api.wait(container_id, timeout=max(int(timeout), 1)).get("StatusCode")
            output = api.logs(container_id, stdout=True, stderr=True).decode(errors="replace")
        except ImageNotFound:
            raise EngineError(
                f"the {what} needs the image {image}, which is not on the engine "
                "(CATALOG_SNAPSHOT_IMAGE; it is never pulled)"
            ) from None
        except requests.exceptions.RequestException:
            raise EngineError(f"the {what} did not end within {timeout:.0f} s") from None
        except DockerException as exc:
            raise EngineError(f"the {what} failed: {explained(exc)}") from None
        finally:
            if container_id is not None:
                with contextlib.suppress(DockerException, requests.exceptions.RequestException):
                    api.remove_container(container_id, force=True)
        seconds = time.monotonic() - started
        lines = output.strip().splitlines()
        if code != 0:
            tail = " | ".join(lines[-5:]) or "no output"
            raise EngineError(f"the {what} exited with {code}: {tail}")
        try:
            size = int(lines[-1].split()[0])
        except (IndexError, ValueError):
            raise EngineError(f"the {what} reported no size: {output[-200:]!r}") from None
        return VolumeCopy(size_bytes=size, seconds=seconds)
