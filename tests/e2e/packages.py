"""Package directories for the CLI tests, written as a publisher would write them."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import TEST_IMAGE

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
RESOURCES = {"memory": "32m", "cpus": 0.25, "pids": 64}
SAY_HELLO_AND_SERVE = (
    'echo "hello from $WHO"; mkdir -p /srv/w; printf %s "$WHO" > /srv/w/index.html; '
    "exec httpd -f -p 8080 -h /srv/w"
)


def web_service(**overrides) -> dict:
    """A busybox httpd that says hello on its log, then serves `index.html` on 8080 (published)."""
    service = {
        "image": TEST_IMAGE,
        "command": ["sh", "-c", SAY_HELLO_AND_SERVE],
        "environment": {"WHO": "{{ params.who }}"},
        "ports": [{"container": 8080, "publish": True}],
        "healthcheck": {
            "http": {"port": 8080, "path": "/"},
            "interval": "200ms",
            "timeout": "500ms",
            "retries": 10,
        },
        "resources": RESOURCES,
    }
    service.update(overrides)
    return service


def write_package(root: Path, name: str, version: str, *, logo: bool = False, **extra) -> Path:
    """A package directory with its manifest (and a logo); `extra` overrides manifest keys."""
    manifest = {
        "format": "catalog/v1",
        "name": name,
        "version": version,
        "type": "application",
        "title": extra.pop("title", "Echo"),
        "description": extra.pop("description", "Says who it is, on its page and its log."),
        "tags": extra.pop("tags", ["test"]),
        "parameters": {
            "type": "object",
            "properties": {"who": {"type": "string", "default": "the test", "maxLength": 50}},
        },
        "services": {"web": web_service()},
        "actions": {
            "greet": {
                "service": "web",
                "command": ["sh", "-c", 'echo "hi $PARAM_NAME"'],
                "parameters": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}},
                },
            },
            "fail": {"service": "web", "command": ["sh", "-c", "echo oops; exit 3"]},
        },
    }
    manifest.update(extra)
    directory = root / f"{name}-{version}"
    directory.mkdir(parents=True)
    (directory / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    if logo:
        (directory / "logo.png").write_bytes(PNG)
    return directory


def broken_service() -> dict:
    """Logs why, and never listens: its healthcheck fails after about 3 s."""
    return web_service(
        command=["sh", "-c", "echo 'cannot read my config' >&2; exec sleep 3600"],
        healthcheck={
            "http": {"port": 8080, "path": "/"},
            "interval": "200ms",
            "timeout": "500ms",
            "retries": 4,
        },
    )


def slow_service() -> dict:
    """Ready only after a minute: a deployment waiting on it can be cancelled meanwhile."""
    return web_service(
        command=["sh", "-c", "exec sleep 3600"],
        healthcheck={
            "http": {"port": 8080, "path": "/"},
            "interval": "1s",
            "retries": 60,
            "start_period": "60s",
        },
    )
