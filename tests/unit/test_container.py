"""Container create arguments: security defaults, limits, logs, ports, volumes, config hash."""

from __future__ import annotations

import dataclasses

import pytest

from packages.container import (
    HEALTHCHECK_DEFAULTS,
    ContainerTarget,
    RuntimeDefaults,
    config_hash,
    container_params,
    parse_bytes,
    parse_duration,
    readiness_timeout,
)

MiB = 1024 * 1024

TARGET = ContainerTarget(
    name="c-env1-wp-web-1",
    hostname="web.wp",
    image="sha256:" + "ab" * 32,
    network="catalog-env1",
    aliases=("web.wp", "web"),
    labels={"io.catalog.env": "1", "io.catalog.service": "web"},
    volumes={"data": "catalog-env1-wp-data"},
    host_ports={(80, "tcp"): 30080},
)

SERVICE = {
    "image": "nginx:1.25",
    "command": ["sh", "-c", "httpd -f"],
    "entrypoint": None,
    "environment": {"DB_HOST": "db.env"},
    "ports": [
        {"container": 80, "protocol": "tcp", "publish": True},
        {"container": 9000, "protocol": "tcp", "publish": False},
    ],
    "volumes": [{"name": "data", "path": "/var/www/html", "read_only": False}],
    "user": "1000",
    "working_dir": "/app",
}


def with_(service: dict, **changes: object) -> dict:
    return {**service, **changes}


def test_full_params_for_a_typical_service() -> None:
    assert container_params(SERVICE, TARGET) == {
        "image": TARGET.image,
        "name": "c-env1-wp-web-1",
        "hostname": "web.wp",
        "command": ["sh", "-c", "httpd -f"],
        "entrypoint": None,
        "environment": {"DB_HOST": "db.env"},
        "labels": {"io.catalog.env": "1", "io.catalog.service": "web"},
        "working_dir": "/app",
        "user": "1000",
        "detach": True,
        "network": "catalog-env1",
        "networking_config": {"catalog-env1": {"Aliases": ["web.wp", "web"]}},
        "ports": {"80/tcp": 30080},
        "mounts": [
            {
                "Target": "/var/www/html",
                "Source": "catalog-env1-wp-data",
                "Type": "volume",
                "ReadOnly": False,
            }
        ],
        "mem_limit": 256 * MiB,
        "memswap_limit": 256 * MiB,
        "nano_cpus": 1_000_000_000,
        "pids_limit": 256,
        "security_opt": ["no-new-privileges:true"],
        "cap_drop": ["ALL"],
        "cap_add": list(RuntimeDefaults().keep_capabilities),
        "privileged": False,
        "read_only": False,
        "log_config": {"type": "json-file", "config": {"max-size": str(5 * MiB), "max-file": "2"}},
        "restart_policy": {"Name": "no"},
        "healthcheck": None,
    }


@pytest.mark.parametrize(
    ("resources", "defaults", "expected"),
    [
        (None, RuntimeDefaults(), (256 * MiB, 1_000_000_000, 256)),
        ({}, RuntimeDefaults(memory=64 * MiB, cpus=0.25, pids=32), (64 * MiB, 250_000_000, 32)),
        (
            {"memory": "512m", "cpus": 0.5, "pids": 100},
            RuntimeDefaults(),
            (512 * MiB, 5 * 10**8, 100),
        ),
        ({"memory": "1g"}, RuntimeDefaults(), (1024 * MiB, 1_000_000_000, 256)),
        ({"cpus": 2}, RuntimeDefaults(), (256 * MiB, 2_000_000_000, 256)),
        ({"pids": 64}, RuntimeDefaults(memory=128 * MiB), (128 * MiB, 1_000_000_000, 64)),
    ],
)
def test_limits_come_from_the_package_else_the_defaults(
    resources: dict | None, defaults: RuntimeDefaults, expected: tuple[int, int, int]
) -> None:
    params = container_params(with_(SERVICE, resources=resources), TARGET, defaults)
    assert (params["mem_limit"], params["nano_cpus"], params["pids_limit"]) == expected
    assert params["memswap_limit"] == params["mem_limit"]  # no swap beyond the memory limit


@pytest.mark.parametrize(
    "hostile",
    [
        {"privileged": True},
        {"cap_add": ["SYS_ADMIN"], "security_opt": ["seccomp=unconfined"]},
        {"network_mode": "host", "pid_mode": "host", "ipc_mode": "host"},
        {"restart_policy": {"Name": "always"}, "read_only": True},
        {"log_config": {"type": "none"}, "devices": ["/dev/sda"], "sysctls": {"a": "1"}},
        {"volumes": [{"name": "data", "path": "/", "read_only": False}], "labels": {"x": "y"}},
    ],
)
def test_security_options_are_fixed_whatever_the_service_says(hostile: dict) -> None:
    params = container_params(with_(SERVICE, **hostile), TARGET)
    assert params["security_opt"] == ["no-new-privileges:true"]
    assert params["cap_drop"] == ["ALL"]
    assert params["cap_add"] == list(RuntimeDefaults().keep_capabilities)
    assert params["privileged"] is False
    assert params["network"] == TARGET.network
    assert params["restart_policy"] == {"Name": "no"}
    assert params["log_config"]["type"] == "json-file"
    assert params["labels"] == dict(TARGET.labels)
    for key in ("network_mode", "pid_mode", "ipc_mode", "devices", "sysctls", "userns_mode"):
        assert key not in params


@pytest.mark.parametrize(
    ("share", "files", "max_size"),
    [
        (None, 2, 5 * MiB),  # the operator default: 10 MiB over 2 files
        (3 * MiB, 2, 3 * MiB // 2),
        (1_000_001, 3, 333_333),  # rounded down, never above the share
        (64 * 1024, 4, 16 * 1024),
    ],
)
def test_log_files_fit_within_the_share(share: int | None, files: int, max_size: int) -> None:
    target = dataclasses.replace(TARGET, log_max_bytes=share)
    params = container_params(SERVICE, target, RuntimeDefaults(log_files=files))
    config = params["log_config"]["config"]
    assert config == {"max-size": str(max_size), "max-file": str(files)}
    assert int(config["max-size"]) * int(config["max-file"]) <= (share or 10 * MiB)


def test_a_log_share_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="log share"):
        container_params(SERVICE, dataclasses.replace(TARGET, log_max_bytes=1000))


@pytest.mark.parametrize(
    ("ports", "host_ports", "expected"),
    [
        ([], {}, {}),
        ([{"container": 80, "publish": True}], {(80, "tcp"): 30080}, {"80/tcp": 30080}),
        (
            [{"container": 53, "protocol": "udp", "publish": True}],
            {(53, "udp"): 30053},
            {"53/udp": 30053},
        ),
        ([{"container": 5432, "protocol": "tcp", "publish": False}], {}, {}),
        ([{"container": 5432}], {}, {}),
        (
            [{"container": 80, "publish": True}, {"container": 443, "publish": True}],
            {(80, "tcp"): 30080, (443, "tcp"): 30443},
            {"80/tcp": 30080, "443/tcp": 30443},
        ),
    ],
)
def test_only_published_ports_are_mapped(ports: list, host_ports: dict, expected: dict) -> None:
    target = dataclasses.replace(TARGET, host_ports=host_ports)
    assert container_params(with_(SERVICE, ports=ports), target)["ports"] == expected


@pytest.mark.parametrize(
    ("host_ports", "match"),
    [
        ({}, "no host port"),
        ({(80, "tcp"): 80}, "outside"),
        ({(80, "tcp"): 70000}, "outside"),
    ],
)
def test_bad_host_ports_are_refused(host_ports: dict, match: str) -> None:
    service = with_(SERVICE, ports=[{"container": 80, "publish": True}])
    with pytest.raises(ValueError, match=match):
        container_params(service, dataclasses.replace(TARGET, host_ports=host_ports))


@pytest.mark.parametrize(
    ("volumes", "expected"),
    [
        ([], []),
        (
            [{"name": "data", "path": "/data", "read_only": True}],
            [("catalog-env1-wp-data", "/data", True)],
        ),
        ([{"name": "data", "path": "/data"}], [("catalog-env1-wp-data", "/data", False)]),
        (
            [{"name": "data", "path": "/a"}, {"name": "cache", "path": "/b", "read_only": True}],
            [("catalog-env1-wp-data", "/a", False), ("catalog-env1-wp-cache", "/b", True)],
        ),
    ],
)
def test_named_volumes_ro_and_rw(volumes: list, expected: list) -> None:
    names = {"data": "catalog-env1-wp-data", "cache": "catalog-env1-wp-cache"}
    target = dataclasses.replace(TARGET, volumes=names)
    params = container_params(with_(SERVICE, volumes=volumes), target)
    assert "volumes" not in params  # no `name:path:mode` bind strings
    assert [(m["Source"], m["Target"], m["ReadOnly"]) for m in params["mounts"]] == expected
    assert all(m["Type"] == "volume" for m in params["mounts"])


# Hole 14: a ':' in a path would have become another field of a `name:path:mode` bind string.
@pytest.mark.parametrize("path", ["/data:/etc", "/data:ro", "relative", "/a\x00b", "/a\nb"])
def test_a_volume_path_that_is_not_a_plain_container_path_is_refused(path: str) -> None:
    target = dataclasses.replace(TARGET, volumes={"data": "catalog-env1-wp-data"})
    with pytest.raises(ValueError, match="not a container path"):
        container_params(with_(SERVICE, volumes=[{"name": "data", "path": path}]), target)


def test_an_environment_value_with_a_nul_is_refused() -> None:
    with pytest.raises(ValueError, match="'GREETING' contains a NUL"):
        container_params(with_(SERVICE, environment={"GREETING": "a\x00b"}), TARGET)


def test_an_environment_value_may_span_lines() -> None:
    pem = "-----BEGIN KEY-----\nabc\n-----END KEY-----\n"
    params = container_params(with_(SERVICE, environment={"KEY": pem}), TARGET)
    assert params["environment"]["KEY"] == pem


def test_a_volume_without_a_docker_volume_is_refused() -> None:
    with pytest.raises(ValueError, match="logs"):
        container_params(with_(SERVICE, volumes=[{"name": "logs", "path": "/l"}]), TARGET)


@pytest.mark.parametrize(
    ("healthcheck", "expected"),
    [
        (
            {"command": ["pg_isready", "-q"], "interval": "2s", "timeout": "1s", "retries": 15,
             "start_period": "500ms"},
            {"test": ["CMD", "pg_isready", "-q"], "interval": 2 * 10**9, "timeout": 10**9,
             "retries": 15, "start_period": 5 * 10**8},
        ),
        (
            {"command": ["true"]},
            {"test": ["CMD", "true"], "interval": 5 * 10**9, "timeout": 3 * 10**9, "retries": 3,
             "start_period": 0},
        ),
        (
            {"command": "curl -f localhost || exit 1", "interval": "1m30s"},
            {"test": ["CMD-SHELL", "curl -f localhost || exit 1"], "interval": 90 * 10**9,
             "timeout": 3 * 10**9, "retries": 3, "start_period": 0},
        ),
        ({"http": {"port": 80, "path": "/"}, "interval": "2s"}, None),
        ({"tcp": {"port": 5432}}, None),
        (None, None),
    ],
)  # fmt: skip
def test_only_command_healthchecks_go_to_the_engine(
    healthcheck: dict | None, expected: dict | None
) -> None:
    assert container_params(with_(SERVICE, healthcheck=healthcheck), TARGET)["healthcheck"] == (
        expected
    )


@pytest.mark.parametrize(
    ("healthcheck", "seconds"),
    [
        (None, 0.25),
        ({"http": {"port": 80}, "interval": "2s", "timeout": "1s", "retries": 15,
          "start_period": "5s"}, 5 + 15 * 3),
        ({"tcp": {"port": 5432}}, 3 * (5 + 3)),
        ({"command": ["true"], "interval": "500ms", "timeout": "500ms", "retries": 2}, 2.0),
    ],
)  # fmt: skip
def test_readiness_timeout_follows_the_healthcheck(
    healthcheck: dict | None, seconds: float
) -> None:
    service = with_(SERVICE, healthcheck=healthcheck)
    assert readiness_timeout(service, min_running=0.25) == pytest.approx(seconds)


def test_healthcheck_defaults_are_documented_values() -> None:
    assert set(HEALTHCHECK_DEFAULTS) == {"interval", "timeout", "retries", "start_period"}


@pytest.mark.parametrize(
    ("labels", "ok"),
    [
        ({"io.catalog.env": "1", "io.catalog.fencing": "7"}, True),
        ({}, True),
        ({"com.example.owner": "me"}, False),
        ({"io.catalog.env": "1", "io.catalogx": "1"}, False),
        ({"io.catalog.env": 1}, False),
    ],
)
def test_labels_must_be_catalog_labels(labels: dict, ok: bool) -> None:
    target = dataclasses.replace(TARGET, labels=labels)
    if ok:
        assert container_params(SERVICE, target)["labels"] == labels
    else:
        with pytest.raises(ValueError, match="label"):
            container_params(SERVICE, target)


@pytest.mark.parametrize("network", ["host", "bridge", "none", "default", "container:abc", ""])
def test_only_an_environment_network_is_accepted(network: str) -> None:
    with pytest.raises(ValueError, match="network"):
        container_params(SERVICE, dataclasses.replace(TARGET, network=network))


def test_the_hostname_is_always_a_network_alias() -> None:
    params = container_params(SERVICE, dataclasses.replace(TARGET, aliases=("web",)))
    assert params["networking_config"] == {"catalog-env1": {"Aliases": ["web.wp", "web"]}}


def test_a_string_command_is_left_for_the_sdk_to_split() -> None:
    params = container_params(with_(SERVICE, command="httpd -f -p 8080"), TARGET)
    assert params["command"] == "httpd -f -p 8080"


def test_a_numeric_user_is_passed_as_a_string() -> None:
    assert container_params(with_(SERVICE, user=1000), TARGET)["user"] == "1000"


def test_an_unrendered_environment_is_refused() -> None:
    with pytest.raises(ValueError, match="render"):
        container_params(with_(SERVICE, environment={"N": 3}), TARGET)


def test_nonpositive_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        container_params(with_(SERVICE, resources={"memory": "0"}), TARGET)
    with pytest.raises(ValueError):
        RuntimeDefaults(pids=0)


def test_params_are_accepted_by_the_docker_sdk() -> None:
    from docker import APIClient

    from workers.engine.docker import create_args

    params = container_params(with_(SERVICE, healthcheck={"command": ["true"]}), TARGET)
    create = create_args(APIClient(version="1.41"), params)
    host_config = create["host_config"]
    assert host_config["SecurityOpt"] == ["no-new-privileges:true"]
    assert host_config["NetworkMode"] == "catalog-env1"
    assert host_config["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "30080"}]}
    assert create["networking_config"] == {
        "EndpointsConfig": {"catalog-env1": {"Aliases": ["web.wp", "web"]}}
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("100", 100),
        ("1b", 1),
        ("512k", 512 * 1024),
        ("512K", 512 * 1024),
        ("256m", 256 * MiB),
        ("256MiB", 256 * MiB),
        ("256mb", 256 * MiB),
        ("1g", 1024 * MiB),
        ("1.5g", 1536 * MiB),
        ("2t", 2 * 1024 * 1024 * MiB),
        (4096, 4096),
    ],
)
def test_parse_bytes(text: str | int, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(
    "text", ["", "m", "-1m", "1x", "1 gigabyte", "1e6", True, -5, "1.2.3m", "1ib", "1kk"]
)
def test_parse_bytes_refuses(text: object) -> None:
    with pytest.raises(ValueError):
        parse_bytes(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", 0.5),
        ("2s", 2.0),
        ("1.5s", 1.5),
        ("1m", 60.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1h2m3s", 3723.0),
        ("250us", 0.00025),
        ("0s", 0.0),
        (3, 3.0),
        (0.5, 0.5),
    ],
)
def test_parse_duration(text: str | float, expected: float) -> None:
    assert parse_duration(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "2", "s", "2 s", "-1s", "1d", "2s3", True, -1])
def test_parse_duration_refuses(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)  # type: ignore[arg-type]


HASH_ARGS = {"image_id": "sha256:aa", "files": {"/etc/a.conf": b"a=1\n"}}


def test_config_hash_is_stable_and_key_order_free() -> None:
    reordered = dict(reversed(list(SERVICE.items())))
    reordered["environment"] = dict(reversed(list(SERVICE["environment"].items())))
    first = config_hash(SERVICE, **HASH_ARGS)
    assert first == config_hash(reordered, **HASH_ARGS)
    assert first == config_hash(SERVICE, image_id="sha256:aa", files={"/etc/a.conf": b"a=1\n"})
    assert len(first) == 64 and int(first, 16) >= 0


@pytest.mark.parametrize(
    ("service", "kwargs"),
    [
        (with_(SERVICE, environment={"DB_HOST": "other"}), HASH_ARGS),
        (with_(SERVICE, command=["sh"]), HASH_ARGS),
        (with_(SERVICE, ports=[]), HASH_ARGS),
        (with_(SERVICE, user="0"), HASH_ARGS),
        (with_(SERVICE, resources={"memory": "512m"}), HASH_ARGS),
        (with_(SERVICE, healthcheck={"command": ["true"]}), HASH_ARGS),
        (SERVICE, {**HASH_ARGS, "image_id": "sha256:bb"}),
        (SERVICE, {**HASH_ARGS, "files": {"/etc/a.conf": b"a=2\n"}}),
        (SERVICE, {**HASH_ARGS, "files": {"/etc/b.conf": b"a=1\n"}}),
        (SERVICE, {**HASH_ARGS, "host_ports": {(80, "tcp"): 30081}}),
        (SERVICE, {**HASH_ARGS, "defaults": RuntimeDefaults(memory=512 * MiB)}),
        (SERVICE, {**HASH_ARGS, "defaults": RuntimeDefaults(keep_capabilities=("CHOWN",))}),
    ],
)
def test_config_hash_changes_with_what_needs_a_new_container(service: dict, kwargs: dict) -> None:
    assert config_hash(service, **kwargs) != config_hash(SERVICE, **HASH_ARGS)


@pytest.mark.parametrize(
    ("service", "kwargs"),
    [
        (with_(SERVICE, depends_on=["db"]), HASH_ARGS),  # start order only
        (with_(SERVICE, image="nginx:latest"), HASH_ARGS),  # the image id decides
        (with_(SERVICE, files={"/etc/a.conf": "files/renamed.j2"}), HASH_ARGS),
        (with_(SERVICE, resources={"memory": "256m", "cpus": 1, "pids": 256}), HASH_ARGS),
        (SERVICE, {**HASH_ARGS, "defaults": RuntimeDefaults(log_max_bytes=20 * MiB)}),
    ],
)
def test_config_hash_ignores_what_needs_no_new_container(service: dict, kwargs: dict) -> None:
    assert config_hash(service, **kwargs) == config_hash(SERVICE, **HASH_ARGS)
