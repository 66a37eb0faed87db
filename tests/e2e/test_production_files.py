"""The production stack's files, checked the only ways possible without pulling images:
`docker-compose config` for the compose file, and the Dockerfile's and the compose file's
commands run here (the install in a fresh virtualenv from the build context .dockerignore
leaves, the entry point with each service's command, the healthchecks against live
processes)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml
from docker.utils.build import exclude_paths

from tests.conftest import ROOT, TEST_SECRET_KEY
from tests.e2e.conftest import BIN

CATALOG_SERVICES = ("migrate", "api", "worker", "beat", "tracker")


def compose_config(**env: str) -> dict:
    done = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


@pytest.fixture(scope="module")
def compose() -> dict:
    return compose_config(
        POSTGRES_PASSWORD="s3cret", RABBITMQ_PASSWORD="s3cret", CATALOG_SECRET_KEY=TEST_SECRET_KEY
    )


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = []
    for line in dockerfile.read_text().replace("\\\n", " ").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            joined.append((keyword.upper(), rest.strip()))
    return joined


def test_the_compose_file_is_valid_and_wires_the_stack(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "rabbitmq", "redis", *CATALOG_SERVICES}
    for name in ("postgres", "rabbitmq", "redis", "api", "worker"):
        assert services[name]["healthcheck"]["test"], name
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("api", "worker", "tracker"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    for name in ("api", "worker", "beat"):
        assert services[name]["depends_on"]["rabbitmq"] == {"condition": "service_healthy"}
    # The worker and the tracker drive the engine; the API reads logs through it. The API
    # writes package blobs that the worker and the tracker read.
    for name in ("api", "worker", "tracker"):
        mounts = services[name]["volumes"]
        assert "/var/run/docker.sock:/var/run/docker.sock:rw" in mounts
        assert "blobs:/var/lib/catalog/blobs:rw" in mounts
    assert set(compose["volumes"]) == {"postgres", "rabbitmq", "blobs", "beat"}
    for name in CATALOG_SERVICES:
        assert services[name]["image"] == "container-catalog:latest"
        environment = services[name]["environment"]
        if "CATALOG_DATABASE_URL" in environment:
            assert ":s3cret@" in environment["CATALOG_DATABASE_URL"]
        assert environment["CATALOG_SECRET_KEY"] == TEST_SECRET_KEY
    assert services["api"]["ports"] == [{"published": 8000, "target": 8000}]
    assert services["api"]["command"][0] == "serve"
    # Its several processes share rate limits and stream slots in Redis.
    assert services["api"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["api"]["environment"]["CATALOG_RATELIMIT_STORAGE_URL"].startswith("redis://")


def test_each_service_command_is_one_the_image_entrypoint_understands(compose):
    entrypoint = [
        json.loads(args) for keyword, args in instructions(ROOT / "Dockerfile")
        if keyword == "ENTRYPOINT"
    ]  # fmt: skip
    assert entrypoint == [["catalogctl"]]
    for name in CATALOG_SERVICES:
        command = compose["services"][name]["command"]
        done = subprocess.run(
            [BIN / "catalogctl", *command, "--help"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, (name, command, done.stderr)
        assert done.stdout.startswith(f"Usage: catalogctl {' '.join(command[:2])}"[:24])


def test_the_api_healthcheck_passes_against_a_live_api(compose, live_server):
    test = compose["services"]["api"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    command = [arg.replace("http://127.0.0.1:8000", live_server) for arg in test[1:]]
    assert command != test[1:]
    command[0] = sys.executable  # `python` of the image
    assert subprocess.run(command, timeout=30, check=False).returncode == 0


def test_the_worker_healthcheck_finds_a_live_worker(compose, worker, service_env):
    kind, script = compose["services"]["worker"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    script = script.replace("$$", "$")  # compose's escape for a literal `$`
    env = {**service_env, "PATH": f"{BIN}:{os.environ['PATH']}"}
    done = subprocess.run(["sh", "-c", script], env=env, timeout=60, check=False)
    assert done.returncode == 0


def test_the_dockerfile_installs_from_its_build_context_into_a_fresh_environment(tmp_path):
    steps = instructions(ROOT / "Dockerfile")
    assert steps[0] == ("FROM", "python:3.11-slim")
    installs = [args for keyword, args in steps if keyword == "RUN" and args.startswith("pip ")]
    assert installs == ["pip install --no-cache-dir ."]
    cmd = next(json.loads(args) for keyword, args in steps if keyword == "CMD")
    assert cmd[0] == "serve"

    # The build context: what .dockerignore leaves of the clone.
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    context = tmp_path / "context"
    for relative in exclude_paths(str(ROOT), patterns):
        source = ROOT / relative
        if source.is_file():
            (context / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, context / relative)
    assert not (context / ".venv").exists() and not (context / "tests").exists()

    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    pip = shlex.split(installs[0].replace(" --no-cache-dir", ""))  # pip's cache is welcome here
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CATALOG_", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    installed = subprocess.run(
        [environment / "bin" / "python", "-m", *pip, "--quiet"],
        cwd=context, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]

    # The image's command, and the migrations a non-editable install must ship.
    def installed_run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [environment / "bin" / args[0], *args[1:]],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    served = installed_run("catalogctl", *cmd, "--help")
    assert served.returncode == 0, served.stderr
    env["CATALOG_HOME"] = str(tmp_path / "home")
    missing = installed_run("catalogctl", "db", "upgrade")
    assert missing.returncode == 1  # no such directory: one line, no traceback
    assert missing.stderr.startswith("Error: the database is not available (unable to open")
    (tmp_path / "home").mkdir()  # the image has it (a volume)
    upgraded = installed_run("catalogctl", "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr[-3000:]
    assert (tmp_path / "home" / "catalog.db").is_file()
    located = installed_run("python", "-c", "import catalog; print(catalog.__file__)").stdout
    assert located.startswith(str(environment))  # the installed copy, not the clone
