"""A real registry on loopback for tests: Debian's docker-registry (scripts/ensure-registry.sh
installs it), on a free 127.0.0.1 port, with its config and storage in a temporary directory,
and optionally htpasswd (bcrypt) basic auth. The engine treats 127.0.0.0/8 registries as
insecure by default, so it speaks plain HTTP to it."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from docker.errors import ImageNotFound, NotFound

from tests.conftest import ROOT

ENSURE = ROOT / "scripts" / "ensure-registry.sh"


def ensure_installed() -> None:
    """docker-registry and htpasswd, installed by the project's script when missing."""
    done = subprocess.run(["bash", str(ENSURE)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{ENSURE.name} failed:\n{done.stderr[-2000:]}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LoopbackRegistry:
    """`docker-registry serve` on 127.0.0.1; `users` ({name: password}) turn on basic auth."""

    def __init__(self, home: Path, users: dict[str, str] | None = None) -> None:
        self.home = home
        self.users = dict(users or {})
        self.port = _free_port()
        self.server = f"127.0.0.1:{self.port}"
        self.log_path = home / "registry.log"
        config: dict = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(home / "storage")}},
            "http": {"addr": self.server, "secret": "catalog-test"},
        }
        if self.users:
            (home / "htpasswd").write_text("".join(_htpasswd(u, p) for u, p in self.users.items()))
            config["auth"] = {"htpasswd": {"realm": "catalog-test", "path": str(home / "htpasswd")}}
        (home / "config.yml").write_text(yaml.safe_dump(config))
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            ["docker-registry", "serve", str(home / "config.yml")],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self._wait_ready()

    def _wait_ready(self, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the registry exited:\n{self.log_path.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://{self.server}/v2/", timeout=1).close()
                return
            except urllib.error.HTTPError as exc:  # 401: up, and asking for credentials
                if exc.code == 401 and self.users:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the registry did not answer:\n{self.log_path.read_text()[-2000:]}")

    def push(self, docker_client, image_id: str, repository: str, tag: str) -> str:
        """Push the engine's `image_id` as `<server>/<repository>:<tag>` (with the first user's
        credentials); the reference, whose tag stays on the engine."""
        reference = f"{self.server}/{repository}:{tag}"
        docker_client.api.tag(image_id, f"{self.server}/{repository}", tag)
        auth = None
        if self.users:
            username, password = next(iter(self.users.items()))
            auth = {"username": username, "password": password}
        for message in docker_client.api.push(
            f"{self.server}/{repository}", tag=tag, stream=True, decode=True, auth_config=auth
        ):
            if "error" in message or "errorDetail" in message:
                raise RuntimeError(f"push of {reference} failed: {message}")
        return reference

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()

    def remove_tags(self, docker_client) -> None:
        """Every tag of this registry's images on the engine goes (an image's content stays
        while another tag, such as the test image's, holds it)."""
        for image in docker_client.images.list():
            for tag in image.tags:
                if tag.startswith(f"{self.server}/"):
                    with contextlib.suppress(ImageNotFound, NotFound):
                        docker_client.images.remove(tag, noprune=False)


def _htpasswd(username: str, password: str) -> str:
    """A bcrypt htpasswd line (the registry takes no other), made by Apache's htpasswd with the
    password on its standard input."""
    done = subprocess.run(
        ["htpasswd", "-niB", "-C", "4", username],
        input=password,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip() + "\n"
