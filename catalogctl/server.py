"""Commands that run the service on this machine: serve, db, admin bootstrap, spec."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--workers", default=2, show_default=True, type=int, help="gunicorn worker processes."
)
@click.option("--threads", default=4, show_default=True, type=int, help="Threads per worker.")
@click.option(
    "--graceful-timeout",
    default=30,
    show_default=True,
    type=int,
    help="Seconds requests in flight get to finish at shutdown (event streams are then cut).",
)
@click.option(
    "--migrate/--no-migrate",
    default=True,
    show_default=True,
    help="Apply database migrations before starting.",
)
def serve(
    host: str, port: int, workers: int, threads: int, graceful_timeout: int, migrate: bool
) -> None:
    """Run the HTTP API under gunicorn."""
    from gunicorn.app.base import BaseApplication

    from catalog import httplimits
    from catalogctl import accesslog

    if migrate:
        # In a child process: the master lives as long as the server and every worker is forked
        # from it, so Alembic and what the migrations import would stay resident in all of them.
        command = [sys.executable, "-m", "catalogctl.main", "db", "upgrade"]
        if subprocess.run(command, check=False).returncode != 0:
            raise click.ClickException("applying the database migrations failed")

    _refuse_port_in_use(host, port)
    _refuse_streams_filling_threads(threads)

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("graceful_timeout", graceful_timeout)
            self.cfg.set("accesslog", "-")
            self.cfg.set("access_log_format", accesslog.FORMAT)
            self.cfg.set("logger_class", accesslog.AccessLogger)
            # A listening socket per worker (SO_REUSEPORT): the kernel spreads connections over
            # the workers. With one shared socket the first worker to wake accepted most
            # keep-alive connections and served them alone while the other one idled.
            self.cfg.set("reuse_port", True)
            # What the OpenAPI document says every route answers 414/431 beyond.
            self.cfg.set("limit_request_line", httplimits.REQUEST_LINE_BYTES)
            self.cfg.set("limit_request_field_size", httplimits.HEADER_LINE_BYTES)
            self.cfg.set("limit_request_fields", httplimits.HEADER_COUNT)
            self.cfg.set("child_exit", _worker_exited)

        def load(self):
            from catalog import create_app  # in each worker: the master never needs the app

            return create_app()

    if _json_logs():
        from catalog import logformat

        logformat.configure("INFO", "json", process="api")  # the master's own lines
    _say(f"catalog API on http://{host}:{port}/v1 (health: /v1/health)")
    with _metrics_directory():
        Server().run()


@contextlib.contextmanager
def _metrics_directory(*, own: bool = False) -> Iterator[None]:
    """Every process's metrics in files of one directory, empty at start, that any of them
    reads at a scrape (prometheus_client's multiprocess mode; catalog/metrics.py).

    PROMETHEUS_MULTIPROC_DIR when the operator sets it and `own` is false (the API server:
    emptied of an earlier run's files), else a directory of this process's own, removed when
    it stops. Set before anything forks, and before anything imports prometheus_client,
    which reads the variable at import.
    """
    given = None if own else os.environ.get(MULTIPROC_ENV)
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            stale.unlink()
        yield
        return
    path = tempfile.mkdtemp(prefix="catalog-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield
    finally:
        shutil.rmtree(path, ignore_errors=True)


# prometheus_client's variable. Read at its import, so not imported from catalog.metrics,
# which would import it in the master before the variable is set.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _worker_exited(_server, worker) -> None:
    """gunicorn's child_exit hook: a dead worker's files stay (its counts must), marked dead."""
    from catalog.metrics import mark_process_dead

    mark_process_dead(worker.pid)


def _json_logs() -> bool:
    from catalog import config

    return config.current().log_format == "json"


def _say(message: str) -> None:
    """A line of a service command: printed, or logged as JSON with LOG_FORMAT=json."""
    if _json_logs():
        import logging

        logging.getLogger("catalogctl").info(message)
    else:
        click.echo(message)


def _refuse_port_in_use(host: str, port: int) -> None:
    """Fail as a plain bind would: with SO_REUSEPORT a second server could share the port."""
    address = host.strip("[]")  # gunicorn takes IPv6 addresses in brackets
    try:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.create_server((address, port), family=family):
            pass
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _refuse_streams_filling_threads(threads: int) -> None:
    """Streams hold a thread each: at least one thread per worker must stay for the rest."""
    from catalog import config

    per_process = config.current().streams_per_process
    if per_process >= threads:
        raise click.ClickException(
            f"CATALOG_STREAMS_PER_PROCESS={per_process} must be below --threads={threads}: "
            "event and log streams would hold every thread of a worker"
        )


def _serve_host(_ctx: click.Context, _param: click.Parameter, name: str | None) -> None:
    from catalog import config

    if name is not None:  # the process's settings, which its pool processes inherit
        config.configure({"HOST_NAME": name})


host_option = click.option(
    "--host-name",
    metavar="NAME",
    expose_value=False,
    callback=_serve_host,
    help="The registered Docker host served here (CATALOG_HOST_NAME); default: the default "
    "engine, which runs the environments placed on no host.",
)


def metrics_options(command):
    """--metrics-port and --metrics-address: where the process answers Prometheus scrapes."""
    command = click.option(
        "--metrics-address",
        default="127.0.0.1",
        show_default=True,
        help="Address the metrics are served on (0.0.0.0: every interface).",
    )(command)
    return click.option(
        "--metrics-port",
        type=click.IntRange(1, 65535),
        default=None,
        help="Serve this process's metrics on http://ADDRESS:PORT/metrics (default: off).",
    )(command)


def _serve_metrics(port: int | None, address: str) -> None:
    if port is None:
        return
    from catalog.metrics import start_server

    try:
        start_server(port, address)
    except OSError as exc:
        raise click.ClickException(
            f"cannot serve metrics on {address}:{port}: {exc.strerror}"
        ) from None
    _say(f"metrics on http://{address}:{port}/metrics")


@click.command("worker")
@click.option(
    "--concurrency",
    default=2,
    show_default=True,
    type=int,
    help="Worker processes (each runs one deployment at a time).",
)
@click.option(
    "--beat/--no-beat",
    default=False,
    show_default=True,
    help="Also run the periodic resync in this process.",
)
@click.option("--loglevel", default="INFO", show_default=True)
@host_option
@metrics_options
def worker(
    concurrency: int, beat: bool, loglevel: str, metrics_port: int | None, metrics_address: str
) -> None:
    """Run a Celery worker that deploys environments (needs the broker and a Docker engine)."""
    if _json_logs():
        _log_json(loglevel, "worker")
    if metrics_port is None:
        _run_worker(concurrency, beat, loglevel)
        return
    # The pool processes count in files the worker's own process reads at a scrape.
    with _metrics_directory(own=True):
        from workers.metrics import count_tasks

        _serve_metrics(metrics_port, metrics_address)
        count_tasks()
        _run_worker(concurrency, beat, loglevel)


def _run_worker(concurrency: int, beat: bool, loglevel: str) -> None:
    from catalog import config
    from catalog.queue import host_queue, maintenance_queue
    from workers.celery_app import celery

    json_logs = _json_logs()

    host = config.current().host_name or None
    if host is not None:
        _check_host(host)
    base = celery.conf.task_default_queue
    queues = f"{host_queue(base, host)},{maintenance_queue(base)}"
    # A node name of its own: two workers on one machine would otherwise both be celery@host
    # and the second dies on the first one's exclusive remote-control queue.
    argv = ["worker", f"--loglevel={loglevel}", f"--concurrency={concurrency}", "-Q", queues,
            f"--hostname=catalog-{os.getpid()}@%h"]  # fmt: skip
    if json_logs:
        argv.insert(0, "--quiet")  # no banner: every line of the log is JSON
    if beat:
        _schedule_directory(celery)
        argv.append("--beat")
    celery.worker_main(argv)


def _log_json(loglevel: str, process: str) -> None:
    """JSON lines for this process and Celery's pool processes: configured here, and Celery
    told not to configure logging itself (a receiver of its setup_logging signal does)."""
    from celery.signals import setup_logging

    from catalog import logformat

    logformat.configure(loglevel, "json", process=process)
    setup_logging.connect(_keep_logging, weak=False)
    # What Celery's signal handlers print ("worker: Warm shutdown"), as a JSON line too.
    from celery.apps import worker as celery_worker

    celery_worker.safe_say = _say_json(logformat.json_formatter(process))


def _say_json(formatter):
    """A replacement of Celery's `safe_say`: one write of one JSON line, no logging lock
    taken (it runs in signal handlers)."""
    import logging

    def say(message: str, stream=sys.__stderr__) -> None:
        record = logging.LogRecord(
            "celery.apps.worker", logging.WARNING, __file__, 0, message.strip(), None, None
        )
        with contextlib.suppress(OSError, ValueError):
            os.write(stream.fileno(), (formatter.format(record) + "\n").encode())

    return say


def _keep_logging(**_kwargs) -> None:
    """Celery's setup_logging receiver: the process's configuration stays as it is."""


def _check_host(name: str) -> None:
    """Refuse to serve a host the catalog does not know: its queue would stay empty."""
    from catalog import config
    from catalog.db import make_engine, make_sessionmaker
    from workers.runtime import UnknownHost, host_id

    engine = make_engine(config.current().database_url, pool_size=1)
    try:
        host_id(make_sessionmaker(engine), name)
    except UnknownHost as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()


def _schedule_directory(celery) -> None:
    """Create CATALOG_HOME for beat's schedule file: without it the embedded beat dies at
    start (a logged traceback) while the worker runs on with no resync at all."""
    Path(celery.conf.beat_schedule_filename).parent.mkdir(parents=True, exist_ok=True)


@click.command("beat")
@click.option("--loglevel", default="INFO", show_default=True)
def beat(loglevel: str) -> None:
    """Run the scheduler of the periodic resync (one per installation)."""
    from workers.celery_app import celery

    _schedule_directory(celery)
    celery.start(["beat", f"--loglevel={loglevel}"])


@click.command("tracker")
@click.option("--loglevel", default="INFO", show_default=True)
@host_option
@metrics_options
def tracker(loglevel: str, metrics_port: int | None, metrics_address: str) -> None:
    """Follow the Docker engine: keep container records and statuses true, restart, repair."""

    os.environ.pop(MULTIPROC_ENV, None)  # one process: its own registry, not the API's files
    from catalog import config, logformat
    from workers.tracker.loop import main

    logformat.configure(loglevel, config.current().log_format, process="tracker")
    _serve_metrics(metrics_port, metrics_address)
    main()


@click.group("db")
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations to the configured database (CATALOG_DATABASE_URL)."""
    from catalog import config
    from catalog.migrate import upgrade

    url = config.current().database_url
    upgrade(url, revision)
    click.echo(f"database at revision {revision}")


@click.group("admin")
def admin() -> None:
    """Administration: tenants, tokens, health, metrics; and the first token (bootstrap)."""


@admin.command("bootstrap")
@click.option(
    "--description", default="bootstrap", show_default=True, help="Who or what uses the token."
)
def admin_bootstrap(description: str) -> None:
    """Create an admin token in this machine's database (CATALOG_DATABASE_URL); print it once."""
    from catalog import config
    from catalog.db import make_engine, make_sessionmaker
    from catalog.migrate import upgrade
    from catalog.services.tenants import bootstrap_admin

    url = config.current().database_url
    upgrade(url)
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            secret = bootstrap_admin(session, description)
    finally:
        engine.dispose()
    click.echo(secret)


@admin.command("new-secret-key")
def admin_new_secret_key() -> None:
    """Print a new key for CATALOG_SECRET_KEY (secret parameters are encrypted with it)."""
    from catalog.secretbox import new_key

    click.echo(new_key())


@admin.command("rotate-secrets")
def admin_rotate_secrets() -> None:
    """Encrypt every stored secret again with the first key of CATALOG_SECRET_KEY.

    Secret parameters, webhook secrets and registry passwords. To rotate: put a new key first
    (CATALOG_SECRET_KEY=new,old), restart the API and the workers, run this, then drop the old
    key. Clear secrets of an older catalog are encrypted too. Uses CATALOG_DATABASE_URL.
    """
    from catalog import config
    from catalog.db import make_engine
    from catalog.secretbox import SecretKeyError, box_from
    from catalog.secretstore import reseal_everything

    settings = config.current()
    try:
        box = box_from(settings)
        if not box.ready:
            box.seal(None)  # raises the error that says what to set
        engine = make_engine(settings.database_url)
        try:
            with engine.begin() as connection:
                counts = reseal_everything(connection, box)
        finally:
            engine.dispose()
    except SecretKeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"{counts['rotated']} secret(s) encrypted again with the first key, "
        f"{counts['sealed']} stored in clear encrypted"
    )


@click.command("spec")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
def spec(output: Path | None) -> None:
    """Print the OpenAPI document generated from the API's schemas."""
    from catalog.spec import openapi_yaml

    text = openapi_yaml()
    if output:
        output.write_text(text)
    else:
        click.echo(text, nl=False)
