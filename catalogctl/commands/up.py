"""`catalogctl up`: the embedded profile in one command.

API (`catalogctl serve`), worker with the periodic resync (`catalogctl worker --beat`) and
tracker (`catalogctl tracker`) as child processes on SQLite and a broker that needs no server
(unless CATALOG_DATABASE_URL / CATALOG_BROKER_URL say otherwise); an admin token for the local
user in a 0600 file and a catalogctl profile for it; the examples published. Ctrl-C (or
SIGTERM) stops every child and waits for it; the data stays under CATALOG_HOME for the next
start.
"""

from __future__ import annotations

import contextlib
import ctypes
import getpass
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
import requests

from catalogctl import config
from catalogctl.client import ApiError, Client
from catalogctl.commands.package import publish_sources, published_line

if TYPE_CHECKING:
    from catalog.config import Settings

STOP_SECONDS = 15.0  # a child still running this long after SIGTERM is killed
START_SECONDS = 90.0
PR_SET_PDEATHSIG = 1


class Stop(Exception):
    """SIGTERM: stop like Ctrl-C."""


def _die_with_parent() -> None:
    """In the child (Linux): receive SIGTERM when `up` dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """One service process, in its own session (Ctrl-C reaches `up` only), logging to a file."""

    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name, self.args, self.log = name, args, log
        self.process: subprocess.Popen | None = None

    def start(self, env: dict[str, str]) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "catalogctl.main", *self.args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )

    @property
    def pid(self) -> int:
        return self.process.pid if self.process else 0

    def exited(self) -> int | None:
        return self.process.poll() if self.process else 0

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def stop_all(children: list[Child]) -> None:
    """SIGTERM to each (last started first), wait; a child that outstays the deadline is
    killed with its whole process group (a worker's pool processes too)."""
    running = [c for c in reversed(children) if c.exited() is None]
    for child in running:
        os.kill(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for child in running:
        assert child.process is not None  # exited() is None: it was started
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            click.echo(f"{child.name} did not stop in {STOP_SECONDS:g} s; killing it", err=True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)  # not reaped yet: the group is its own
            child.process.wait()


def _listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "catalogctl.main", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise click.ClickException(
            f"`catalogctl {' '.join(args)}` failed: {done.stderr.strip() or done.stdout.strip()}"
        )
    return done.stdout


def _wait_healthy(url: str, children: list[Child]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        for child in children:
            if child.exited() is not None:
                raise click.ClickException(
                    f"{child.name} exited at start (code {child.exited()}); the end of "
                    f"{child.log}:\n{child.tail()}"
                )
        try:
            if requests.get(f"{url}/v1/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise click.ClickException(f"the API did not answer on {url} within {START_SECONDS:g} s")


def _secret_key(settings: Settings) -> None:
    """Create the key file of secret parameters (mode 0600) unless a key is set or it exists."""
    from catalog.secretbox import new_key

    key_file = Path(settings.secret_key_file)
    if settings.secret_key or key_file.exists():
        return
    key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(new_key() + "\n")
    click.echo(f"Created the key of secret parameters: {key_file} (mode 0600); back it up")


def _admin_token(home: Path, url: str, env: dict[str, str]) -> tuple[Path, str]:
    """The local admin token: the one in HOME/admin.token while it works, else a new one."""
    token_file = home / "admin.token"
    if token_file.is_file():
        token = token_file.read_text().strip()
        try:
            Client(url, token).json("GET", "/tokens")
            return token_file, token
        except ApiError as exc:
            if exc.status != 401:
                raise
    description = f"catalogctl up ({getpass.getuser()})"
    token = _run(["admin", "bootstrap", "--description", description], env).strip()
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    os.chmod(token_file, 0o600)
    return token_file, token


def _publish_examples(directory: Path | None, client: Client) -> None:
    if directory is None or not directory.is_dir():
        return
    sources = sorted(p for p in directory.iterdir() if (p / "manifest.yaml").is_file())
    for source in sources:
        try:
            for result in publish_sources(
                client, [source], visibility="public", skip_existing=True
            ):
                click.echo(f"  {published_line(result)}")
        except Exception as exc:  # a broken example must not take the service down
            message = exc.format_message() if isinstance(exc, click.ClickException) else exc
            click.echo(f"  {source}: not published: {message}", err=True)


def _raise_stop(*_args: object) -> None:
    raise Stop


@click.command("up")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the API.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port of the API.")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the data lives (default: CATALOG_HOME, or ./var).",
)
@click.option(
    "--examples",
    type=click.Path(file_okay=False, path_type=Path),
    default="examples",
    show_default=True,
    help="Package directories published at start (skipped when absent).",
)
@click.option("--no-examples", is_flag=True, help="Publish nothing.")
@click.option(
    "--profile", "profile_name", default="local", show_default=True,
    help="The catalogctl profile saved for this service (and made current).",
)  # fmt: skip
@click.option("--concurrency", default=2, show_default=True, type=int, help="Deploys at once.")
def up(
    host: str,
    port: int,
    home: Path | None,
    examples: Path,
    no_examples: bool,
    profile_name: str,
    concurrency: int,
) -> None:
    """Run the whole catalog on this machine: API, worker, resync and tracker.

    With no configuration it keeps everything under ./var: SQLite, the broker, the package
    blobs, the logs (var/logs), the admin token (var/admin.token, mode 0600) and the key that
    encrypts secret parameters (var/secret.key, mode 0600, unless CATALOG_SECRET_KEY is set).
    Only the Docker engine is needed to deploy. Ctrl-C stops it; the data stays for the next start.
    """
    from catalog import config as service_config  # what the children will read

    env = dict(os.environ)
    if home is not None:
        env["CATALOG_HOME"] = str(home)
    # Volume snapshots copy with a helper image the engine must hold: here the offline image
    # `make run` builds (the examples run on it too); docker-compose.yml builds the catalog's.
    env.setdefault("CATALOG_SNAPSHOT_IMAGE", "catalog-test/busybox:latest")
    settings = service_config.load(env)
    home = Path(settings.catalog_home)
    env["CATALOG_HOME"] = str(home)
    env.pop("CATALOG_TOKEN", None)
    if _listening(host, port):  # refused before anything is written
        raise click.ClickException(
            f"something already listens on {host}:{port}; stop it, or start with --port"
        )
    url = f"http://{host}:{port}"
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    _secret_key(settings)
    logs = home / "logs"
    logs.mkdir(exist_ok=True)

    _run(["db", "upgrade"], env)
    children = [
        # In-flight requests get 3 s at Ctrl-C; an event stream is cut (its clients resume).
        Child("api", ["serve", "--host", host, "--port", str(port), "--no-migrate",
                      "--graceful-timeout", "3"], logs / "api.log"),
        Child("worker", ["worker", "--beat", f"--concurrency={concurrency}"], logs / "worker.log"),
        Child("tracker", ["tracker"], logs / "tracker.log"),
    ]  # fmt: skip
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        for child in children:
            child.start(env)
        _wait_healthy(url, children)
        token_file, token = _admin_token(home, url, env)
        cfg = config.load()
        cfg.profiles[profile_name] = config.Profile(url=url, token=token)
        cfg.current = profile_name
        cfg.save()
        if not no_examples:
            click.echo("Examples:")
            _publish_examples(examples, Client(url, token))
        _summary(url, settings, children, token_file, profile_name, cfg.path)
        _watch(children)
    except (KeyboardInterrupt, Stop):
        click.echo("\nstopping: " + ", ".join(c.name for c in reversed(children)), err=True)
        stop_all(children)
        click.echo("stopped; the data stays in " + str(home), err=True)
    except BaseException:
        stop_all(children)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def _watch(children: list[Child]) -> None:
    """Until a signal; a child that dies takes the others down, with the end of its log."""
    while True:
        for child in children:
            code = child.exited()
            if code is not None:
                raise click.ClickException(
                    f"{child.name} exited (code {code}); stopping. The end of {child.log}:\n"
                    f"{child.tail()}"
                )
        time.sleep(0.5)


def _summary(url, settings, children, token_file, profile_name, config_file) -> None:
    click.echo("")
    click.echo(f"The catalog runs at {url}/v1 (OpenAPI: {url}/v1/openapi.json)")
    for child in children:
        click.echo(f"  {child.name:<8} pid {child.pid:<8} log {child.log}")
    click.echo(f"Data: {settings.catalog_home} (database {_safe(settings.database_url)}, "
               f"broker {_safe(settings.broker_url)})")  # fmt: skip
    click.echo(f"Admin token: {token_file} (mode 0600); catalogctl uses it through profile "
               f"{profile_name!r}, saved in {config_file}")  # fmt: skip
    click.echo(
        "\nNext, in another shell (the README's walkthrough goes on from here):\n"
        "  . .venv/bin/activate\n"
        "  catalogctl package list\n"
        "  catalogctl env create demo\n"
        "  catalogctl app add demo web --package org.example.hello-web\n"
        "  catalogctl deploy demo\n"
        "  curl -s $(catalogctl app endpoint demo web)\n"
        "\nCtrl-C stops everything; the data stays for the next start."
    )


def _safe(url: str) -> str:
    """A URL without its password."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, location = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{location}"
