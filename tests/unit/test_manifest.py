"""Manifest validation: schema violations (D29), container policy (E32), cross-field checks."""

from __future__ import annotations

import copy

import pytest

from packages import parameter_schemas
from packages.errors import ManifestError, ManifestValidationError
from packages.imageref import PullPolicy, pull_policy_of
from packages.manifest import Manifest, parse_manifest, validate_manifest, validate_parameters
from packages.yamlload import load_yaml

# ARCHITECTURE \u00a74's example, with the elisions filled in and a bundled second service.
EXAMPLE = b"""\
format: catalog/v1
name: org.example.wordpress
version: 1.2.0
type: application
title: WordPress
description: Blog and CMS
author: Example Inc
license: GPL-2.0
tags: [cms, php]
requires:
  org.example.mysql: ">=8.0.0 <9.0.0"
parameters:
  type: object
  required: [admin_password]
  properties:
    admin_password: {type: string, minLength: 12, x-secret: true}
    replicas: {type: integer, default: 1, minimum: 1, maximum: 5}
bindings:
  db: {package: org.example.mysql, required: true}
  cache: {package: org.example.redis, version: ^7.0.0}
services:
  web:
    image: wordpress:6.5
    command: [apache2-foreground]
    environment:
      DB_HOST: "{{ bindings.db.outputs.host }}"
      DB_PASSWORD: "{{ bindings.db.outputs.password }}"
      SITE_NAME: "{{ settings.site_name | default('demo') }}"
      WORKERS: 4
    ports: [{container: 80, publish: true}]
    volumes: [{name: data, path: /var/www/html}]
    files: {/etc/app/app.conf: files/app.conf.j2}
    healthcheck: {http: {port: 80}, interval: 2s, retries: 15, start_period: 5s}
    depends_on: [worker]
    resources: {memory: 256m, cpus: 0.5, pids: 256}
  worker:
    image: {bundled: images/worker.tar, tag: "worker:1.2"}
    healthcheck: {command: [worker, --ping]}
outputs:
  host: "{{ services.web.hostname }}"
  url: "http://{{ services.web.hostname }}:80"
actions:
  flush-cache: {service: web, command: [wp, cache, flush], parameters: {type: object}}
"""
MEMBERS = ("manifest.yaml", "files/app.conf.j2", "images/worker.tar")
MINIMAL = {
    "format": "catalog/v1",
    "name": "org.example.app",
    "version": "1.0.0",
    "type": "application",
    "services": {"web": {"image": "nginx:1.25"}},
}
DELETE = object()


def _example() -> dict:
    return load_yaml(EXAMPLE)


def _edited(*edits: tuple[str, object], base: dict | None = None) -> dict:
    """The example (or `base`) with `("services/web/privileged", True)`-style edits applied."""
    doc = copy.deepcopy(base) if base is not None else _example()
    for path, value in edits:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split("/")]
        node = doc
        for key in parents:
            node = node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return doc


def _problems(doc: object, members: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ManifestValidationError) as caught:
        validate_manifest(doc, members=members)
    return [(p.path, p.message) for p in caught.value.problems]


def _only_problem(doc: object) -> tuple[str, str]:
    (problem,) = _problems(doc)
    return problem


# --- accepted manifests ----------------------------------------------------------------------


def test_the_architecture_example_is_accepted_with_defaults_filled():
    manifest = parse_manifest(EXAMPLE, members=MEMBERS)

    assert isinstance(manifest, Manifest)
    assert (manifest.name, manifest.version, manifest.type) == (
        "org.example.wordpress",
        "1.2.0",
        "application",
    )
    assert manifest.title == "WordPress"
    assert manifest.requires == {"org.example.mysql": ">=8.0.0 <9.0.0"}
    assert manifest.secret_parameters == {"admin_password"}
    assert manifest.bindings["cache"] == {
        "package": "org.example.redis",
        "version": "^7.0.0",
        "required": True,
    }
    web = manifest.services["web"]
    assert web["ports"] == [{"container": 80, "publish": True, "protocol": "tcp"}]
    assert web["volumes"] == [{"name": "data", "path": "/var/www/html", "read_only": False}]
    assert web["healthcheck"]["http"] == {"port": 80, "path": "/"}
    assert web["environment"]["WORKERS"] == 4
    assert manifest.services["worker"]["image"] == {
        "bundled": "images/worker.tar",
        "tag": "worker:1.2",
    }
    assert manifest.actions["flush-cache"]["description"] == ""
    assert manifest.outputs["url"] == "http://{{ services.web.hostname }}:80"


def test_a_minimal_manifest_gets_every_default():
    manifest = validate_manifest(MINIMAL)

    assert manifest.raw == {
        **MINIMAL,
        "title": "org.example.app",
        "description": "",
        "tags": [],
        "requires": {},
        "parameters": {"type": "object", "properties": {}},
        "bindings": {},
        "services": {
            "web": {
                "image": "nginx:1.25",
                "environment": {},
                "files": {},
                "ports": [],
                "volumes": [],
                "depends_on": [],
            }
        },
        "outputs": {},
        "actions": {},
    }


def test_a_validated_manifest_validates_again_unchanged():
    raw = parse_manifest(EXAMPLE, members=MEMBERS).raw

    assert validate_manifest(raw, members=MEMBERS).raw == raw


def test_validation_does_not_change_the_document_it_is_given():
    doc = _example()
    before = copy.deepcopy(doc)

    validate_manifest(doc)

    assert doc == before


def test_a_library_has_no_services():
    library = _edited(("type", "library"), ("services", DELETE), ("actions", DELETE))

    assert validate_manifest(library).services == {}


@pytest.mark.parametrize(
    "image",
    [
        "nginx",
        "nginx:1.25",
        "library/nginx:1.25-alpine",
        "registry.example.com:5000/org/app@sha256:" + "a" * 64,
        "ghcr.io/org/app:v1.2.3",
        {"bundled": "images/app.tar"},
    ],
)
def test_image_forms(image):
    validate_manifest(_edited(("services/web/image", image), base=MINIMAL))


@pytest.mark.parametrize("policy", ["if_not_present", "always", "never"])
def test_a_registry_image_takes_a_pull_policy(policy):
    manifest = validate_manifest(_edited(("services/web/pull_policy", policy), base=MINIMAL))

    assert pull_policy_of(manifest.services["web"]) == PullPolicy(policy)
    assert manifest.services["web"]["pull_policy"] == policy


def test_without_a_pull_policy_an_image_is_pulled_only_when_the_engine_lacks_it():
    service = validate_manifest(MINIMAL).services["web"]

    assert "pull_policy" not in service  # manifests stored before it read the same
    assert pull_policy_of(service) == PullPolicy.IF_NOT_PRESENT


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        (
            [("services/web/pull_policy", "sometimes")],
            ("services.web.pull_policy", 'must be one of: "if_not_present", "always", "never"'),
        ),
        (
            [("services/web/pull_policy", True)],
            ("services.web.pull_policy", 'must be one of: "if_not_present", "always", "never"'),
        ),
        (
            [("services/web/image", {"bundled": "images/worker.tar"}),
             ("services/web/pull_policy", "always")],
            ("services.web.pull_policy", "a bundled image is loaded, never pulled"),
        ),
    ],
)  # fmt: skip
def test_a_pull_policy_is_one_of_three_and_only_for_a_registry_image(edits, expected):
    doc = _edited(*edits, base=MINIMAL)

    assert _problems(doc, members=MEMBERS) == [expected]


# --- D29: schema violations, every offending path listed -------------------------------------


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        pytest.param(
            [("colour", "blue"), ("services/web/colour", "red")],
            [("colour", "unknown key"), ("services.web.colour", "unknown key")],
            id="unknown-keys",
        ),
        pytest.param(
            [("format", "catalog/v2")],
            [("format", 'must be "catalog/v1"')],
            id="format",
        ),
        pytest.param(
            [("name", DELETE), ("version", DELETE)],
            [("name", "is required"), ("version", "is required")],
            id="missing",
        ),
        pytest.param(
            [("version", "1.2"), ("requires/org.example.mysql", "latest")],
            [
                ('requires["org.example.mysql"]', "'latest' is not a version range"),
                ("version", "'1.2' is not a semantic version like 1.2.3"),
            ],
            id="bad-semver",
        ),
        pytest.param(
            [("version", 1.2)],
            [("version", "must be a string")],
            id="unquoted-version",
        ),
        pytest.param(
            [("name", "wordpress"), ("bindings/db/package", "org..mysql")],
            [
                ("bindings.db.package", "must be a reverse-DNS name"),
                ("name", "must be a reverse-DNS name like org.example.app"),
            ],
            id="bad-names",
        ),
        pytest.param(
            [("name", "org." + "x" * 130)],
            [("name", "must be at most 128 characters long")],
            id="long-name",
        ),
        pytest.param(
            [
                ("services/web/ports/0/container", "80"),
                ("services/web/volumes", {"data": "/x"}),
                ("services/web/resources/pids", "256"),
                ("tags", "cms"),
                ("services/web/environment/DEBUG", None),
            ],
            [
                ("services.web.environment.DEBUG", "must be a string, a number or true or false"),
                ("services.web.ports[0].container", "must be an integer"),
                ("services.web.resources.pids", "must be an integer"),
                ("services.web.volumes", "must be a list"),
                ("tags", "must be a list"),
            ],
            id="wrong-types",
        ),
        pytest.param(
            [("type", "app"), ("tags", ["CMS", "php", "php"])],
            [
                ("tags", "must not contain duplicates"),
                ("tags[0]", "must be a short tag"),
                ("type", 'must be one of: "application", "library"'),
            ],
            id="enums-and-tags",
        ),
        pytest.param(
            [("services/Web_1", {"image": "nginx"}), ("services/web/environment/1X", "a")],
            [
                ("services.Web_1", "must be a DNS label"),
                ("services.web.environment.1X", "must be an environment variable name"),
            ],
            id="bad-keys",
        ),
        pytest.param(
            [("services/web/image", "Nginx:latest"), ("services/worker/image", {"tag": "x"})],
            [
                ("services.web.image", "must be an image reference like nginx:1.25"),
                ("services.worker.image.bundled", "is required"),
            ],
            id="bad-images",
        ),
        pytest.param(
            [("services/worker/image/bundled", "../images/w.tar")],
            [("services.worker.image.bundled", "must name a docker-save tarball under images/")],
            id="bundled-outside-images",
        ),
        pytest.param(
            [
                ("services/web/ports/0/container", 70000),
                ("services/web/ports/0/protocol", "sctp"),
                ("services/web/resources/memory", "1m"),
                ("services/web/resources/cpus", 128),
            ],
            [
                ("services.web.ports[0].container", "must be at most 65535"),
                ("services.web.ports[0].protocol", 'must be one of: "tcp", "udp"'),
                ("services.web.resources.cpus", "must be at most 64"),
                ("services.web.resources.memory", "must be between 4m and 64g"),
            ],
            id="bounds",
        ),
        pytest.param(
            [
                ("services/web/volumes/0/path", "var/www"),
                ("services/web/working_dir", "/app/../etc"),
                ("services/web/files", {"/etc/x/../y": "files/app.conf.j2"}),
            ],
            [
                ('services.web.files["/etc/x/../y"]', "must be an absolute container path"),
                ("services.web.volumes[0].path", "must be an absolute container path"),
                ("services.web.working_dir", "must be an absolute container path"),
            ],
            id="container-paths",
        ),
        pytest.param(
            [
                ("services/web/healthcheck/interval", "2 seconds"),
                ("services/web/healthcheck/timeout", "0s"),
                ("services/web/healthcheck/retries", 0),
                ("services/web/stop_grace_period", "10"),
            ],
            [
                ("services.web.healthcheck.interval", "must be a duration like 500ms"),
                ("services.web.healthcheck.retries", "must be at least 1"),
                ("services.web.healthcheck.timeout", "must be longer than 0s"),
                ("services.web.stop_grace_period", "must be a duration like 500ms"),
            ],
            id="durations",
        ),
        pytest.param(
            [("services/web/healthcheck", {"http": {"port": 80}, "tcp": {"port": 80}})],
            [
                (
                    "services.web.healthcheck",
                    "has http and tcp: only one of command, http or tcp is allowed",
                )
            ],
            id="two-healthchecks",
        ),
        pytest.param(
            [("services/web/healthcheck", {"interval": "2s"})],
            [("services.web.healthcheck", "needs one of command, http or tcp")],
            id="no-healthcheck-kind",
        ),
        pytest.param(
            [("services/web/ports", [{"container": 80}, {"container": 80, "protocol": "tcp"}])],
            [("services.web.ports[1]", "the same port as ports[0]")],
            id="duplicate-port",
        ),
        pytest.param(
            [
                (
                    "services/web/volumes",
                    [{"name": "data", "path": "/srv"}, {"name": "logs", "path": "/srv"}],
                )
            ],
            [("services.web.volumes[1].path", "/srv is already mounted by volumes[0]")],
            id="duplicate-mount",
        ),
        pytest.param(
            [("actions/flush-cache/service", "db"), ("actions/flush-cache/command", [])],
            [
                ("actions.flush-cache.command", "must not be empty"),
                ("actions.flush-cache.service", "unknown service 'db'"),
            ],
            id="actions",
        ),
        pytest.param(
            [("outputs/url", 80), ("outputs/bad-name", "x")],
            [
                ("outputs.bad-name", "must be an identifier"),
                ("outputs.url", "must be a string"),
            ],
            id="outputs",
        ),
        pytest.param(
            [("bindings/db/required", "yes"), ("bindings/db/version", "8")],
            [("bindings.db.required", "must be true or false")],  # "8" is a valid range
            id="bindings",
        ),
    ],
)
def test_schema_violations_list_every_offending_path(edits, expected):
    problems = _problems(_edited(*edits))

    assert [path for path, _ in problems] == [path for path, _ in expected]
    for (_, message), (_, wanted) in zip(problems, expected, strict=True):
        assert wanted in message


def test_five_separate_mistakes_give_exactly_five_problems():
    doc = _edited(
        ("licence", "MIT"),  # misspelt key
        ("version", "1.2.0.1"),
        ("services/web/ports/0/container", 0),
        ("services/worker/privileged", True),
        ("services/web/depends_on", ["worker", "db"]),
    )

    assert _problems(doc) == [
        ("licence", "unknown key"),
        ("services.web.depends_on[1]", "unknown service 'db'"),
        ("services.web.ports[0].container", "must be at least 1"),
        ("services.worker.privileged", "privileged mode is not allowed"),
        ("version", "'1.2.0.1' is not a semantic version like 1.2.3"),
    ]


def test_problems_are_sorted_by_path_in_natural_order():
    ports = [{"container": 80 + i} for i in range(12)]
    ports[2]["container"], ports[10]["container"] = -1, 0

    paths = [path for path, _ in _problems(_edited(("services/web/ports", ports), ("a", 1)))]

    assert paths == ["a", "services.web.ports[2].container", "services.web.ports[10].container"]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (["not", "a", "mapping"], ("", "the manifest must be a mapping of keys to values")),
        (None, ("", "the manifest must be a mapping of keys to values")),
        ({**MINIMAL, 80: "x"}, ("80", "keys must be strings: quote this one")),
        ({**MINIMAL, "services": {"web": {"image": "x", True: 1}}}, ("services.web.True", "keys")),
        (
            {**MINIMAL, "services": {"web": {"image": "x", "environment": {"N": float("inf")}}}},
            ("services.web.environment.N", "must be a finite number"),
        ),
    ],
)
def test_documents_that_are_not_json_shaped(doc, expected):
    path, message = _only_problem(doc)

    assert (path, message[: len(expected[1])]) == expected


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        (
            [("type", "library")],
            ("services", "a library has no services"),
        ),
        (
            [("services", {}), ("actions", DELETE)],
            ("services", "an application needs at least one service"),
        ),
        (
            [("services", DELETE), ("actions", DELETE)],
            ("services", "an application needs at least one service"),
        ),
    ],
)
def test_services_follow_the_package_type(edits, expected):
    assert _only_problem(_edited(*edits)) == expected


# --- E32: container policy ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "path", "message"),
    [
        ("privileged", True, "services.web.privileged", "privileged mode is not allowed"),
        ("network_mode", "host", "services.web.network_mode", "host namespaces are not allowed"),
        ("network", "host", "services.web.network", "host namespaces are not allowed"),
        ("pid", "host", "services.web.pid", "host namespaces are not allowed (pid)"),
        ("ipc", "host", "services.web.ipc", "host namespaces are not allowed (ipc)"),
        ("userns_mode", "host", "services.web.userns_mode", "host namespaces are not allowed"),
        ("cap_add", ["SYS_ADMIN"], "services.web.cap_add", "adding capabilities is not allowed"),
        ("devices", ["/dev/sda:/dev/sda"], "services.web.devices", "host devices are not allowed"),
        ("sysctls", {"net.ipv4.ip_forward": 1}, "services.web.sysctls", "sysctls are not allowed"),
        (
            "security_opt",
            ["seccomp:unconfined"],
            "services.web.security_opt",
            "security options are managed by the catalog",
        ),
        ("restart", "always", "services.web.restart", "restarts are managed by the catalog"),
        ("labels", {"io.catalog.env": "other"}, "services.web.labels", "labels are owned by"),
        (
            "volumes",
            [{"source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}],
            "services.web.volumes[0].source",
            "bind mounts of host paths are not allowed",
        ),
        ("volumes", ["/:/host"], "services.web.volumes[0]", "bind mounts of host paths"),
        (
            "volumes",
            ["/var/run/docker.sock:/var/run/docker.sock:ro"],
            "services.web.volumes[0]",
            "bind mounts of host paths are not allowed",
        ),
        ("volumes", ["./data:/data"], "services.web.volumes[0]", "bind mounts of host paths"),
        (
            "volumes",
            [{"type": "bind", "source": "data", "target": "/x"}],
            "services.web.volumes[0].source",
            "bind mounts of host paths",
        ),
        (
            "volumes",
            [{"name": "data", "path": "/x", "host_path": "/"}],
            "services.web.volumes[0].host_path",
            "bind mounts of host paths",
        ),
        (
            "volumes",
            ["data:/var/lib/data"],
            "services.web.volumes[0]",
            "volumes are written as {name: <volume>, path: <absolute container path>}",
        ),
        (
            "ports",
            [{"container": 80, "host": 80}],
            "services.web.ports[0].host",
            "host ports are allocated by the catalog",
        ),
        (
            "ports",
            [{"target": 80, "published": 8080}],
            "services.web.ports[0].published",
            "ports below 1024 are never allowed",
        ),
        ("ports", ["22:22"], "services.web.ports[0]", "host ports are allocated by the catalog"),
        ("ports", [80], "services.web.ports[0]", "ports are written as {container: <port>"),
    ],
)
def test_container_policy_refusals_name_the_field(key, value, path, message):
    doc = _edited((f"services/web/{key}", value))

    (problem,) = _problems(doc)

    assert problem[0] == path
    assert message in problem[1]


def test_several_policy_refusals_are_all_listed():
    doc = _edited(
        ("services/web/privileged", True),
        ("services/web/cap_add", ["NET_ADMIN"]),
        ("services/worker/network_mode", "host"),
        ("services/worker/volumes", ["/:/host"]),
    )

    assert [path for path, _ in _problems(doc)] == [
        "services.web.cap_add",
        "services.web.privileged",
        "services.worker.network_mode",
        "services.worker.volumes[0]",
    ]


# --- references: services, members ---------------------------------------------------------


@pytest.mark.parametrize(
    ("depends_on", "expected"),
    [
        (
            {"web": ["worker"], "worker": ["web"]},
            [("services.web.depends_on", "dependency cycle: web -> worker -> web")],
        ),
        (
            {"web": ["web"]},
            [("services.web.depends_on", "dependency cycle: web -> web")],
        ),
        (
            {"web": ["worker"], "worker": ["db"], "db": ["web"], "cache": ["cache"]},
            [
                ("services.cache.depends_on", "dependency cycle: cache -> cache"),
                ("services.db.depends_on", "dependency cycle: db -> web -> worker -> db"),
            ],
        ),
        (
            {"web": ["worker", "ghost"]},
            [("services.web.depends_on[1]", "unknown service 'ghost'")],
        ),
    ],
)
def test_depends_on_must_name_services_without_cycles(depends_on, expected):
    doc = _example()
    for name, others in depends_on.items():
        doc["services"].setdefault(name, {"image": "redis:7"})["depends_on"] = others

    assert _problems(doc) == expected


def test_a_diamond_of_dependencies_is_not_a_cycle():
    doc = _example()
    doc["services"]["db"] = {"image": "mysql:8"}
    doc["services"]["worker"]["depends_on"] = ["db"]
    doc["services"]["web"]["depends_on"] = ["worker", "db"]

    validate_manifest(doc)


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        (MEMBERS, []),
        (None, []),  # members unknown: not checked
        (
            ("manifest.yaml",),
            [
                (
                    'services.web.files["/etc/app/app.conf"]',
                    "files/app.conf.j2 is not in the package",
                ),
                ("services.worker.image.bundled", "images/worker.tar is not in the package"),
            ],
        ),
        (
            ("manifest.yaml", "files/app.conf.j2", "images/other.tar"),
            [("services.worker.image.bundled", "images/worker.tar is not in the package")],
        ),
    ],
)
def test_referenced_members_must_exist(members, expected):
    doc = _example()

    if expected:
        assert _problems(doc, members) == expected
    else:
        validate_manifest(doc, members=members)


@pytest.mark.parametrize(
    "source",
    ["app.conf", "files/../manifest.yaml", "files//x", "files/./x", "files\\x", "/files/x"],
)
def test_files_must_come_from_the_files_folder(source):
    doc = _edited(("services/web/files", {"/etc/app.conf": source}))

    assert _problems(doc, MEMBERS) == [
        (
            'services.web.files["/etc/app.conf"]',
            "must be a file of the package under files/, without . or .. parts",
        )
    ]


def test_logo_must_exist_when_named():
    doc = _edited(("logo", "logo.png"))

    assert _problems(doc, MEMBERS) == [("logo", "logo.png is not in the package")]
    validate_manifest(doc, members=(*MEMBERS, "logo.png"))


# --- parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        pytest.param(
            {"type": "array"},
            [("parameters.type", 'must be "object"')],
            id="not-an-object",
        ),
        pytest.param(
            {"type": "object", "properties": {"x": {"type": "strin"}}},
            [("parameters.properties.x.type", "'strin' is not valid")],
            id="metaschema",
        ),
        pytest.param(
            {"type": "object", "required": "x", "properties": {"p": {"pattern": "("}}},
            [
                ("parameters.properties.p.pattern", "must be a valid regex"),
                ("parameters.required", "must be a list"),
            ],
            id="metaschema-several",
        ),
        pytest.param(
            {"type": "object", "properties": {"n": {"type": "integer", "default": "one"}}},
            [("parameters.properties.n.default", "does not fit the property: must be an integer")],
            id="default-type",
        ),
        pytest.param(
            {
                "type": "object",
                "properties": {
                    "smtp": {
                        "type": "object",
                        "properties": {"port": {"type": "integer", "maximum": 9, "default": 25}},
                    }
                },
            },
            [("parameters.properties.smtp.properties.port.default", "must be at most 9")],
            id="nested-default",
        ),
        pytest.param(
            {"type": "object", "properties": {"pw": {"type": "string", "x-secret": "yes"}}},
            [("parameters.properties.pw.x-secret", "must be true or false")],
            id="x-secret",
        ),
        pytest.param(
            {"type": "object", "properties": {"a": {"$ref": "https://example.com/schema.json"}}},
            [('parameters.properties.a["$ref"]', "only references inside the schema")],
            id="remote-ref",
        ),
        pytest.param(
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
            [('parameters.properties.a["$ref"]', "does not point to anything")],
            id="dangling-ref",
        ),
        pytest.param(
            {
                "type": "object",
                "$defs": {"port": {"type": "integer", "minimum": 1024}},
                "properties": {"p": {"$ref": "#/$defs/port", "default": 80}},
            },
            [("parameters.properties.p.default", "must be at least 1024")],
            id="default-through-ref",
        ),
    ],
)
def test_parameter_schemas_are_checked(parameters, expected):
    problems = _problems(_edited(("parameters", parameters)))

    assert [path for path, _ in problems] == [path for path, _ in expected]
    for (_, message), (_, wanted) in zip(problems, expected, strict=True):
        assert wanted in message


def test_action_parameters_are_checked_like_package_parameters():
    doc = _edited(("actions/flush-cache/parameters", {"type": "string"}))

    assert _problems(doc) == [("actions.flush-cache.parameters.type", _NOT_OBJECT)]


def test_a_parameter_schema_seen_before_is_not_checked_again_and_says_the_same():
    # One broken schema, as the package's parameters and as an action's, twice each.
    broken = {"type": "object", "properties": {"port": {"type": "integer", "default": "x"}}}
    doc = _edited(("parameters", broken), ("actions/flush-cache/parameters", broken))
    parameter_schemas._cached_schema_problems.cache_clear()

    first, second = _problems(doc), _problems(copy.deepcopy(doc))

    assert first == second
    assert [path for path, _ in first] == [
        "actions.flush-cache.parameters.properties.port.default",
        "parameters.properties.port.default",
    ]
    assert parameter_schemas._cached_schema_problems.cache_info().misses == 1


def test_a_large_parameter_schema_is_checked_without_the_cache():
    described = {"type": "string", "description": "d" * parameter_schemas.CACHED_SCHEMA_CHARS}
    large = {"type": "object", "properties": {"a": described, "b": {"type": "bogus"}}}
    parameter_schemas._cached_schema_problems.cache_clear()

    problems = _problems(_edited(("parameters", large), ("actions", DELETE)))

    assert [path for path, _ in problems] == ["parameters.properties.b.type"]
    assert parameter_schemas._cached_schema_problems.cache_info().currsize == 0


_NOT_OBJECT = 'must be "object": parameters are a mapping of names to values'
SCHEMA = {
    "type": "object",
    "required": ["admin_password"],
    "additionalProperties": False,
    "properties": {
        "admin_password": {"type": "string", "minLength": 12, "x-secret": True},
        "replicas": {"type": "integer", "default": 1, "minimum": 1, "maximum": 5},
        "smtp": {
            "type": "object",
            "properties": {
                "host": {"type": "string", "default": "localhost"},
                "port": {"type": "integer", "default": 25},
            },
        },
        "proxy": {
            "type": "object",
            "required": ["url"],
            "properties": {"url": {"type": "string"}, "timeout": {"type": "integer", "default": 5}},
        },
        "mode": {"enum": ["fast", "safe"]},
    },
}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"admin_password": "correct horse battery"},
            {
                "admin_password": "correct horse battery",
                "replicas": 1,
                "smtp": {"host": "localhost", "port": 25},
            },
        ),
        (
            {"admin_password": "x" * 12, "replicas": 3, "smtp": {"port": 587}},
            {"admin_password": "x" * 12, "replicas": 3, "smtp": {"host": "localhost", "port": 587}},
        ),
        (
            {"admin_password": "x" * 12, "proxy": {"url": "http://proxy"}},
            {
                "admin_password": "x" * 12,
                "replicas": 1,
                "smtp": {"host": "localhost", "port": 25},
                "proxy": {"url": "http://proxy", "timeout": 5},
            },
        ),
    ],
)
def test_validate_parameters_applies_defaults_recursively(values, expected):
    before = copy.deepcopy(values)

    assert validate_parameters(SCHEMA, values) == expected
    assert values == before


def test_validate_parameters_lists_every_violation_without_echoing_values():
    values = {
        "admin_password": "hunter2",
        "replicas": 9,
        "smtp": {"port": "twenty-five"},
        "mode": "turbo",
        "colour": "red",
    }

    with pytest.raises(ManifestValidationError) as caught:
        validate_parameters(SCHEMA, values)

    problems = [(p.path, p.message) for p in caught.value.problems]
    assert problems == [
        ("parameters.admin_password", "must be at least 12 characters long"),
        ("parameters.colour", "unknown key"),
        ("parameters.mode", 'must be one of: "fast", "safe"'),
        ("parameters.replicas", "must be at most 5"),
        ("parameters.smtp.port", "must be an integer"),
    ]
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, [("parameters.admin_password", "is required")]),
        (
            {"admin_password": "x" * 12, "mode": None},
            [("parameters.mode", 'must be one of: "fast", "safe"')],
        ),
        ([], [("parameters", "must be a mapping of parameter names to values")]),
        (
            {"admin_password": "x" * 12, "proxy": {}},
            [("parameters.proxy.url", "is required")],
        ),
    ],
)
def test_validate_parameters_missing_values(values, expected):
    with pytest.raises(ManifestValidationError) as caught:
        validate_parameters(SCHEMA, values)

    assert [(p.path, p.message) for p in caught.value.problems] == expected


# --- from bytes ---------------------------------------------------------------------------


def test_parse_manifest_reports_unsafe_yaml_as_a_manifest_error():
    with pytest.raises(ManifestError) as caught:
        parse_manifest(b"name: !!python/object/apply:os.system [id]\n")

    assert not isinstance(caught.value, ManifestValidationError)
    assert caught.value.problems[0].path == "manifest.yaml"


def test_parse_manifest_reports_schema_problems_as_validation_errors():
    with pytest.raises(ManifestValidationError) as caught:
        parse_manifest(b"format: catalog/v1\n")

    assert [p.path for p in caught.value.problems] == ["name", "type", "version"]


@pytest.mark.parametrize("version", ["\uff11.\uff10.\uff10", "\u0661.\u0660.\u0660"])
def test_a_version_with_unicode_digits_is_refused_at_upload(version):
    path, message = _only_problem(_edited(("version", version)))
    assert path == "version"
    assert "ASCII" in message or "semantic version" in message


# Hole 14: characters no package text may hold, and a ':' in a volume path.
@pytest.mark.parametrize(
    ("edit", "path", "message"),
    [
        (("services/web/environment/GREETING", "a\x00b"), "services.web.environment.GREETING",
         "contains a NUL character (U+0000)"),
        (("services/web/environment/GREETING", "\x1b[2J"), "services.web.environment.GREETING",
         "contains the control character U+001B"),
        (("description", "safe\u202eexe.txt"), "description",
         "contains the bidirectional control character U+202E"),
        (("title", "a\u2067b"), "title", "contains the bidirectional control character U+2067"),
        (("services/web/volumes", [{"name": "data", "path": "/data:/etc"}]),
         "services.web.volumes[0].path", "a volume path may not contain ':'"),
    ],
)  # fmt: skip
def test_unsafe_characters_are_refused_naming_the_field(edit, path, message):
    problems = _problems(_edited(edit))
    assert any(p == path and m.startswith(message) for p, m in problems), problems


def test_a_key_with_a_control_or_bidi_character_is_refused():
    doc = _example()
    doc["services"]["web"]["environment"] = {"A\u202eB": "x", "C\nD": "y"}
    problems = dict(_problems(doc))
    assert problems['services.web.environment["C\\nD"]'] == (
        "the key contains the control character U+000A"
    )
    assert "U+202E" in problems['services.web.environment["A\\u202eB"]']


def test_multi_line_text_stays_allowed():
    doc = _edited(("description", "line one\n\tline two\r\n"))
    assert validate_manifest(doc).raw["description"] == "line one\n\tline two\r\n"
