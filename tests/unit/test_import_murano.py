"""The Murano importer: each mapping rule and each refusal on small packages, then the corpus."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from packages.build import load_directory
from packages.importers import Imported, ImportRefused, write_package
from packages.importers.murano import import_murano
from packages.importers.murano_container import PLACEHOLDER_IMAGE
from packages.manifest import validate_parameters
from packages.package import PNG_MAGIC
from packages.render import in_process, render_outputs, render_service, template_context
from tests.archives import RawZipEntry, zip_of

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "murano-docker-apps"
APPS = sorted(p.parent.parent.name for p in CORPUS.glob("Applications/*/package/manifest.yaml"))
CLASS_FILE = "Classes/DockerDemo.yaml"
PNG = PNG_MAGIC + b"\x00" * 32

MANIFEST = """\
Format: 1.3
Type: Application
FullName: com.example.docker.DockerDemo
Name: Docker Demo
Description: |
  A demo application.
Author: 'Example, Inc'
Tags: [Docker, demo]
Classes:
  com.example.docker.DockerDemo: DockerDemo.yaml
Require:
  com.mirantis.docker.DockerStandaloneHost:
"""
# Written as text, not dumped: the bare `=` key is what real class files hold.
NAMESPACES = """\
Namespaces:
  =: com.example.docker
  std: io.murano
  interfaces: com.mirantis.docker
  other: org.example.apps
"""
BASE_PROPERTIES = {
    "name": {"Contract": "$.string().notNull()"},
    "publish": {"Contract": "$.bool().notNull()", "Default": True},
}
INIT = [{"$._scope": "switch($.publish => public, true => internal)"}]
SCOPE = "$._scope"


def returned(**values: Any) -> dict[str, Any]:
    """A getContainer Return: the defaults, with `values` added or replaced (None drops)."""
    container: dict[str, Any] = {
        "name": "$.name",
        "image": "nginx:1.25",
        "ports": [{"port": 80, "scope": SCOPE}],
    }
    container.update(values)
    return {k: v for k, v in container.items() if v is not None}


def class_text(
    properties: dict | None = None,
    container: dict | None = None,
    steps: list | None = None,
    init: list | None = None,
    name: str = "DockerDemo",
) -> str:
    body = [*(steps or []), {"Return": returned() if container is None else container}]
    methods = {
        ".init": {"Body": INIT if init is None else init},
        "getContainer": {"Body": body},
    }
    doc = {
        "Name": name,
        "Extends": "interfaces:DockerApplication",
        "Properties": {**BASE_PROPERTIES, **(properties or {})},
        "Methods": methods,
    }
    return NAMESPACES + yaml.safe_dump(doc, sort_keys=False)


def ui_text(fields: list[dict], feeds: dict[str, str] | None = None) -> str:
    application = {"?": {"type": "com.example.docker.DockerDemo"}, "name": "$.config.name"}
    application.update(feeds or {f["name"]: f"$.config.{f['name']}" for f in fields})
    forms = [{"config": {"fields": [{"name": "name", "type": "string"}, *fields]}}]
    return yaml.safe_dump({"Version": 2, "Application": application, "Forms": forms})


def package(
    tmp_path: Path, manifest: str = MANIFEST, files: dict[str, str | bytes | None] | None = None
) -> Path:
    """A Murano package directory: the manifest, the demo class, and `files` (None: left out)."""
    root = tmp_path / "murano"
    members: dict[str, str | bytes | None] = {"manifest.yaml": manifest, CLASS_FILE: class_text()}
    members.update(files or {})
    for name, content in members.items():
        if content is None:
            continue
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def imported(tmp_path: Path, **options: Any) -> Imported:
    """The import of a package made by `package`; it must be a package the catalog accepts."""
    name, version = options.pop("name", None), options.pop("version", None)
    result = import_murano(package(tmp_path, **options), name=name, version=version)
    write_package(result, tmp_path / "out")
    load_directory(tmp_path / "out")
    return result


def of_class(tmp_path: Path, **class_options: Any) -> Imported:
    ui = class_options.pop("ui", None)
    return imported(tmp_path, files={CLASS_FILE: class_text(**class_options), "UI/ui.yaml": ui})


def service(result: Imported) -> dict[str, Any]:
    return result.manifest["services"]["demo"]


def report(result: Imported) -> list[str]:
    return [str(p) for p in result.report]


def refusals(source: Path) -> list[tuple[str, str]]:
    with pytest.raises(ImportRefused) as caught:
        import_murano(source)
    return [(p.path, p.message) for p in caught.value.problems]


def rendered(manifest: dict, values: dict, bindings: dict | None = None) -> tuple[dict, dict]:
    """(services, outputs) of an app as a deployment renders them, hostnames `<service>.env`."""
    params = validate_parameters(manifest.get("parameters", {"type": "object"}), values)
    render = in_process(
        template_context(
            params=params,
            settings={},
            bindings=bindings or {},
            services={name: {"hostname": f"{name}.env"} for name in manifest["services"]},
            app={"name": "demo", "env": "test"},
        )
    )
    services = {name: render_service(name, s, render) for name, s in manifest["services"].items()}
    return services, render_outputs(manifest.get("outputs", {}), render)


# --- the manifest --------------------------------------------------------------------------


def test_the_manifest_keys_map_to_the_catalogs(tmp_path: Path) -> None:
    result = imported(
        tmp_path, files={"logo.png": PNG, "LICENSE": "Apache License\nVersion 2.0, January 2004"}
    )
    manifest = result.manifest
    assert {k: manifest[k] for k in ("format", "name", "version", "type", "title")} == {
        "format": "catalog/v1",
        "name": "com.example.docker.DockerDemo",
        "version": "1.0.0",
        "type": "application",
        "title": "Docker Demo",
    }
    assert manifest["description"] == "A demo application."
    assert manifest["author"] == "Example, Inc"
    assert manifest["license"] == "Apache-2.0"
    assert manifest["logo"] == "logo.png"
    assert result.files["logo.png"] == PNG
    assert "manifest.yaml: Version: none given: 1.0.0" in report(result)
    assert any(
        "Require: com.mirantis.docker.DockerStandaloneHost dropped" in r for r in report(result)
    )


def test_a_logo_that_is_no_png_is_left_out(tmp_path: Path) -> None:
    result = imported(tmp_path, files={"logo.png": b"GIF89a...."})
    assert "logo" not in result.manifest
    assert "logo.png: not a PNG image: no logo" in report(result)


def test_an_unknown_license_is_copied_but_not_named(tmp_path: Path) -> None:
    result = imported(tmp_path, files={"LICENSE": "All rights reserved."})
    assert "license" not in result.manifest
    assert result.files["LICENSE"] == b"All rights reserved."


def test_tags_become_catalog_tags_and_the_rest_is_reported(tmp_path: Path) -> None:
    tags = ["Docker", "docker", "Big Data", "!!!", "x" * 40, *(f"t{i}" for i in range(25))]
    result = imported(tmp_path, manifest=MANIFEST.replace("[Docker, demo]", str(tags)))
    assert result.manifest["tags"][:3] == ["docker", "big-data", "t0"]
    assert len(result.manifest["tags"]) == 20
    lines = report(result)
    assert "manifest.yaml: Tags: 'Big Data' is written big-data" in lines
    assert "manifest.yaml: Tags: '!!!' cannot be a catalog tag: dropped" in lines
    assert f"manifest.yaml: Tags: {'x' * 40!r} cannot be a catalog tag: dropped" in lines
    assert "manifest.yaml: Tags: 't18' is past the catalog's 20: dropped" in lines


@pytest.mark.parametrize(
    ("written", "version", "line"),
    [
        ("2.1.0", "2.1.0", None),
        ("1.2", "1.2.0", "manifest.yaml: Version: 1.2 is written 1.2.0"),
        ("banana", "1.0.0", "manifest.yaml: Version: 'banana' is not a semver version: 1.0.0"),
    ],
)
def test_the_version_is_kept_when_it_is_semver(
    tmp_path: Path, written: str, version: str, line: str | None
) -> None:
    result = imported(tmp_path, manifest=MANIFEST + f"Version: '{written}'\n")
    assert result.manifest["version"] == version
    assert line is None or line in report(result)


def test_name_and_version_can_be_given(tmp_path: Path) -> None:
    result = imported(tmp_path, name="org.example.demo", version="3.0.0-rc.1")
    assert (result.manifest["name"], result.manifest["version"]) == (
        "org.example.demo",
        "3.0.0-rc.1",
    )


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"name": "demo"}, ("name", "'demo' must be a reverse-DNS name like org.example.app")),
        ({"version": "1.0"}, ("version", "'1.0' is not a semver version like 1.0.0")),
    ],
)
def test_a_bad_name_or_version_given_is_refused(
    tmp_path: Path, options: dict, problem: tuple[str, str]
) -> None:
    with pytest.raises(ImportRefused) as caught:
        import_murano(package(tmp_path), **options)
    ((path, message),) = [(p.path, p.message) for p in caught.value.problems]
    assert path == problem[0] and message.startswith(problem[1])


# --- parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "schema", "required", "template"),
    [
        ({"Contract": "$.string()"}, {"type": "string"}, False, "{{ params.value | default('') }}"),
        ({"Contract": "$.string().notNull()"}, {"type": "string"}, True, "{{ params.value }}"),
        ({"Contract": "$.int().notNull()"}, {"type": "integer"}, True, "{{ params.value }}"),
        (
            {"Contract": "$.int().notNull()", "Default": 5},
            {"type": "integer", "default": 5},
            False,
            "{{ params.value }}",
        ),
        (
            {"Contract": "$.bool()", "Default": False},
            {"type": "boolean", "default": False},
            False,
            "{{ params.value | lower }}",
        ),
        (
            {"Contract": "$.string().notNull()", "Default": "x"},
            {"type": "string", "default": "x"},
            False,
            "{{ params.value }}",
        ),
        (
            {"Contract": ["$.string()"]},
            {"type": "string"},
            False,
            "{{ params.value | default('') }}",
        ),
    ],
)
def test_a_property_the_container_reads_becomes_a_parameter(
    tmp_path: Path, spec: dict, schema: dict, required: bool, template: str
) -> None:
    result = of_class(
        tmp_path, properties={"value": spec}, container=returned(env={"VALUE": "$.value"})
    )
    parameters = result.manifest["parameters"]
    assert parameters["properties"]["value"] == schema
    assert ("value" in parameters.get("required", [])) is required
    assert service(result)["environment"] == {"VALUE": template}


def test_a_contract_of_no_known_type_is_a_string_and_reported(tmp_path: Path) -> None:
    result = of_class(
        tmp_path,
        properties={
            "value": {"Contract": ["$.string()"]},
            "n": {"Contract": "$.int().check($ > 0)"},
        },
        container=returned(env={"VALUE": "$.value", "N": "$.n"}),
    )
    assert (
        f"{CLASS_FILE}: Properties.value.Contract: ['$.string()'] is not a string, int or bool:"
        " a string" in report(result)
    )
    assert (
        f"{CLASS_FILE}: Properties.n.Contract: .check($ > 0) is not kept: only the type is checked"
        in report(result)
    )


def test_ui_fields_title_describe_and_default_the_parameters(tmp_path: Path) -> None:
    fields = [
        {
            "name": "user",
            "type": "string",
            "label": "User",
            "description": " Who logs in ",
            "initial": "admin",
        },
        {"name": "secret", "type": "password", "label": "Password"},
        {"name": "port", "type": "integer", "initial": "8080"},
        {"name": "note", "type": "string", "required": False},
    ]
    properties = {
        "user": {"Contract": "$.string().notNull()", "Default": "root"},
        "password": {"Contract": "$.string().notNull()"},
        "port": {"Contract": "$.int().notNull()"},
        "note": {"Contract": "$.string().notNull()"},
        "apiToken": {"Contract": "$.string()"},
    }
    feeds = {
        "user": "$.config.user",
        "password": "$.config.secret",
        "port": "$.config.port",
        "note": "$.config.note",
    }
    env = {
        "USER": "$.user",
        "PASSWORD": "$.password",
        "PORT": "$.port",
        "NOTE": "$.note",
        "TOKEN": "$.apiToken",
    }
    result = of_class(
        tmp_path, properties=properties, container=returned(env=env), ui=ui_text(fields, feeds)
    )
    parameters = result.manifest["parameters"]
    assert parameters["properties"] == {
        # ui.yaml's initial is what the form submits untouched: it wins over Default
        "user": {
            "type": "string",
            "title": "User",
            "description": "Who logs in",
            "default": "admin",
        },
        "password": {"type": "string", "title": "Password", "x-secret": True},
        "port": {"type": "integer", "default": 8080},
        "note": {"type": "string"},
        "apiToken": {"type": "string", "x-secret": True},
    }
    assert parameters["required"] == ["password"]
    assert service(result)["environment"]["NOTE"] == "{{ params.note | default('') }}"


def test_a_default_of_the_wrong_type_is_dropped_and_reported(tmp_path: Path) -> None:
    result = of_class(
        tmp_path,
        properties={"port": {"Contract": "$.int()", "Default": "eighty"}},
        container=returned(env={"PORT": "$.port"}),
    )
    assert result.manifest["parameters"]["properties"]["port"] == {"type": "integer"}
    assert (
        f"{CLASS_FILE}: Properties.port.Contract: the default 'eighty' is no integer: no default"
        in report(result)
    )


def test_properties_the_container_does_not_read_are_no_parameters(tmp_path: Path) -> None:
    result = of_class(tmp_path, properties={"unused": {"Contract": "$.string()"}})
    assert "parameters" not in result.manifest
    lines = report(result)
    assert f"{CLASS_FILE}: Properties.unused: not read by getContainer: no parameter" in lines
    assert (
        f"{CLASS_FILE}: Methods.getContainer.Body[0].Return.name: the container's name is"
        " dropped: the catalog names containers"
    ) in lines
    assert not any("Properties.name" in line for line in lines)


# --- values --------------------------------------------------------------------------------


def test_literal_values_render_as_written(tmp_path: Path) -> None:
    env = {"GREETING": "Hello {{ name }} {% raw %}", "COUNT": 3, "ON": True, "USER": "root"}
    result = of_class(tmp_path, container=returned(env=env))
    environment = service(result)["environment"]
    assert environment["COUNT"] == "3" and environment["ON"] == "true"
    services, _ = rendered(load_directory(tmp_path / "out").manifest.raw, {})
    assert services["demo"]["environment"] == {
        "GREETING": "Hello {{ name }} {% raw %}",
        "COUNT": "3",
        "ON": "true",
        "USER": "root",
    }


def test_format_joins_text_and_values(tmp_path: Path) -> None:
    env = {
        "URL": "format('http://{0}:{1}/{{x}}', $link.host, $link.port)",
        "WHO": "'user {0}'.format($.user)",
    }
    result = of_class(
        tmp_path,
        properties={
            "user": {"Contract": "$.string()", "Default": "ann"},
            "db": {"Contract": "$.class(DockerDb)"},
        },
        steps=[{"$link": "$.getConnectionTo($.db, 5432)"}],
        container=returned(env=env),
    )
    environment = service(result)["environment"]
    assert environment["WHO"] == "user {{ params.user }}"
    assert environment["URL"] == (
        "http://{{ bindings.db.outputs.host | default('') }}:"
        "{{ bindings.db.outputs.port_5432 | default(bindings.db.outputs.port) | default('') }}"
        "/{{ '{' }}x}"
    )


def test_commands_become_the_command(tmp_path: Path) -> None:
    result = of_class(
        tmp_path,
        properties={"level": {"Contract": "$.string()", "Default": "info"}},
        container=returned(commands=["--log 'a b'", "format('--level={0}', $.level)", "$.level"]),
    )
    assert service(result)["command"] == [
        "--log",
        "a b",
        "--level={{ params.level }}",
        "{{ params.level }}",
    ]


# --- bindings ------------------------------------------------------------------------------


def test_an_app_property_becomes_a_binding_slot(tmp_path: Path) -> None:
    properties = {
        "db": {"Contract": "$.class(DockerDb).notNull()"},
        "cache": {"Contract": "$.class(other:Cache)"},
        "host": {"Contract": "$.class(interfaces:DockerContainerHost).notNull()"},
    }
    ui = ui_text([{"name": "db", "type": "com.example.docker.DockerDb", "label": "Database"}])
    steps = [{"$dbLink": "$.getConnectionTo($.db, 5432)"}]
    env = {"DB_HOST": "$dbLink.host", "DB_PORT": "$dbLink.port"}
    result = of_class(
        tmp_path, properties=properties, steps=steps, container=returned(env=env), ui=ui
    )
    assert result.manifest["bindings"] == {
        "db": {
            "package": "com.example.docker.DockerDb",
            "required": True,
            "description": "Database",
        },
        "cache": {
            "package": "org.example.apps.Cache",
            "required": False,
            "description": "An app of org.example.apps.Cache.",
        },
    }
    assert service(result)["environment"] == {
        "DB_HOST": "{{ bindings.db.outputs.host }}",
        "DB_PORT": "{{ bindings.db.outputs.port_5432 | default(bindings.db.outputs.port) }}",
    }
    assert (
        f"{CLASS_FILE}: Properties.host.Contract: com.mirantis.docker.DockerContainerHost is a"
        " Murano host or platform class: dropped; the catalog places containers itself"
    ) in report(result)


def test_a_binder_reads_the_port_it_asked_for(tmp_path: Path) -> None:
    db = imported(
        tmp_path / "db",
        manifest=MANIFEST.replace("DockerDemo", "DockerDb"),
        files={
            "Classes/DockerDb.yaml": class_text(
                name="DockerDb",
                container=returned(
                    ports=[{"port": 8083, "scope": SCOPE}, {"port": 8086, "scope": "internal"}]
                ),
            ),
            CLASS_FILE: None,
        },
    )
    assert db.manifest["outputs"] == {
        "host": "{{ services.db.hostname }}",
        "port": "8083",
        "port_8083": "8083",
        "port_8086": "8086",
    }
    app = of_class(
        tmp_path / "app",
        properties={"db": {"Contract": "$.class(DockerDb).notNull()"}},
        steps=[{"$link": "$.getConnectionTo($.db, 8086)"}],
        container=returned(env={"DB": "format('{0}:{1}', $link.host, $link.port)"}),
    )
    _, outputs = rendered(db.manifest, {})
    services, _ = rendered(app.manifest, {}, {"db": outputs})
    assert services["demo"]["environment"]["DB"] == "db.env:8086"
    # bound to a package that declares only `port`, the binder falls back to it
    services, _ = rendered(app.manifest, {}, {"db": {"host": "x.env", "port": "9"}})
    assert services["demo"]["environment"]["DB"] == "x.env:9"


def test_a_misspelled_connection_variable_reads_the_only_connection(tmp_path: Path) -> None:
    result = of_class(
        tmp_path,
        properties={"db": {"Contract": "$.class(DockerDb).notNull()"}},
        steps=[{"$dbendopoint": "$.getConnectionTo($.db, 27017)"}],
        container=returned(env={"DB_HOST": "$dbendpoint.host"}),
    )
    assert service(result)["environment"] == {"DB_HOST": "{{ bindings.db.outputs.host }}"}
    assert (
        f"{CLASS_FILE}: Methods.getContainer.Body[1].Return.env.DB_HOST: $dbendpoint is never"
        " assigned: read as $dbendopoint, the method's only connection"
        " (getConnectionTo($.db, 27017))"
    ) in report(result)


def test_a_class_of_the_package_the_app_creates_is_a_second_service(tmp_path: Path) -> None:
    manifest = MANIFEST.replace(
        "  com.example.docker.DockerDemo: DockerDemo.yaml\n",
        "  com.example.docker.DockerDemo: DockerDemo.yaml\n"
        "  com.example.docker.DockerWorker: Worker.yaml\n",
    )
    worker = class_text(
        name="DockerWorker",
        properties={"db": {"Contract": "$.class(DockerDb).notNull()"}},
        steps=[{"$db": "$.getConnectionTo($.db, 5432)"}],
        container=returned(
            image="example/worker:1",
            env={"DB": "$db.host"},
            ports=[{"port": 7000, "scope": "public"}],
        ),
    )
    demo = class_text(
        properties={"worker": {"Contract": "$.class(DockerWorker)", "Usage": "Out"}},
        steps=[{"$w": "$.getConnectionTo($.worker, 7000)"}],
        container=returned(env={"WORKER": "format('{0}:{1}', $w.host, $w.port)"}),
    )
    result = imported(
        tmp_path, manifest=manifest, files={CLASS_FILE: demo, "Classes/Worker.yaml": worker}
    )
    services = result.manifest["services"]
    assert list(services) == ["demo", "worker"]
    assert services["demo"]["environment"] == {"WORKER": "{{ services.worker.hostname }}:7000"}
    assert services["demo"]["depends_on"] == ["worker"]
    assert services["worker"]["ports"] == [{"container": 7000}]  # never published
    assert services["worker"]["environment"] == {"DB": "{{ bindings.db.outputs.host }}"}
    assert result.manifest["bindings"]["db"]["package"] == "com.example.docker.DockerDb"


# --- ports, image, healthcheck -------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "init", "ui", "published"),
    [
        ("public", None, None, True),
        ("internal", None, None, False),
        ("host", None, None, False),
        ("cloud", None, None, False),
        (SCOPE, None, None, True),
        ("switch($.publish => public, true => internal)", [], None, True),
        (SCOPE, None, [{"name": "publish", "type": "boolean", "initial": False}], False),
    ],
)
def test_only_a_public_scope_publishes(
    tmp_path: Path, scope: str, init: list | None, ui: list | None, published: bool
) -> None:
    result = of_class(
        tmp_path,
        init=init,
        container=returned(ports=[{"port": 80, "scope": scope}, {"port": 53, "protocol": "UDP"}]),
        ui=None if ui is None else ui_text(ui),
    )
    assert service(result)["ports"] == [
        {"container": 80, "publish": True} if published else {"container": 80},
        {"container": 53, "protocol": "udp"},
    ]
    if scope.startswith(("$", "switch")):
        assert (
            f"{CLASS_FILE}: Properties.publish: chose per deployment whether ports are published;"
            f" the catalog's choice is fixed in the package: its default ({str(published).lower()})"
            " is used"
        ) in report(result)


def test_a_service_with_a_tcp_port_gets_a_tcp_healthcheck(tmp_path: Path) -> None:
    result = of_class(tmp_path, container=returned(ports=[{"port": 8080}, {"port": 9090}]))
    assert service(result)["healthcheck"] == {
        "tcp": {"port": 8080},
        "interval": "2s",
        "timeout": "2s",
        "retries": 60,
    }
    assert any(line.startswith("services.demo.healthcheck: ") for line in report(result))


def test_a_service_without_ports_has_no_healthcheck_and_only_a_host(tmp_path: Path) -> None:
    result = of_class(tmp_path, container=returned(ports=None))
    assert "healthcheck" not in service(result)
    assert result.manifest["outputs"] == {"host": "{{ services.demo.hostname }}"}


@pytest.mark.parametrize(
    ("default", "image", "fragment"),
    [
        ("redis:7", "redis:7", "its default 'redis:7' is used"),
        (None, PLACEHOLDER_IMAGE, f"{PLACEHOLDER_IMAGE} stands in, set the real image"),
    ],
)
def test_an_image_chosen_by_a_property_is_fixed(
    tmp_path: Path, default: str | None, image: str, fragment: str
) -> None:
    spec = {"Contract": "$.string().notNull()"} | ({} if default is None else {"Default": default})
    result = of_class(tmp_path, properties={"image": spec}, container=returned(image="$.image"))
    assert service(result)["image"] == image
    assert "parameters" not in result.manifest
    assert any(
        line.startswith(f"{CLASS_FILE}: Methods.getContainer.Body[0].Return.image: ")
        and fragment in line
        for line in report(result)
    )


def test_computed_env_and_ports_are_reported_not_converted(tmp_path: Path) -> None:
    result = of_class(tmp_path, container=returned(env="$._env2Map($.env)", ports="$._ports"))
    assert "environment" not in service(result) and "ports" not in service(result)
    lines = report(result)
    assert any(
        line.startswith(f"{CLASS_FILE}: Methods.getContainer.Body[0].Return.env: ")
        for line in lines
    )
    assert any(
        line.startswith(f"{CLASS_FILE}: Methods.getContainer.Body[0].Return.ports: ")
        for line in lines
    )


# --- sources -------------------------------------------------------------------------------


def zipped(root: Path, target: Path, top: str = "") -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, top + path.relative_to(root).as_posix())
    return target


@pytest.mark.parametrize("top", ["", "DemoApp/"])
def test_a_zip_imports_as_its_directory_does(tmp_path: Path, top: str) -> None:
    root = package(tmp_path, files={"logo.png": PNG, "UI/ui.yaml": ui_text([])})
    from_directory = import_murano(root)
    from_zip = import_murano(zipped(root, tmp_path / "demo.zip", top))
    assert from_zip.manifest == from_directory.manifest
    assert from_zip.files == from_directory.files
    assert from_zip.report == from_directory.report


@pytest.mark.parametrize(
    ("member", "fragment"),
    [("../x", "path traversal"), ("/etc/x", "absolute"), ("manifest.yaml", "duplicate")],
)
def test_a_hostile_zip_is_refused_by_the_archive_checks(
    tmp_path: Path, member: str, fragment: str
) -> None:
    hostile = tmp_path / "hostile.zip"
    hostile.write_bytes(zip_of(RawZipEntry(member, b"x")))  # after a manifest.yaml
    ((path, message),) = refusals(hostile)
    assert path == member
    assert fragment in message, message


def test_a_file_that_is_no_archive_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    assert refusals(tmp_path / "x.zip") == [("x.zip", "not a zip or tar.gz archive")]


# --- refusals ------------------------------------------------------------------------------

FORMAT_ONLY = "Format 1.x can be imported"


@pytest.mark.parametrize(
    ("manifest", "files", "problem"),
    [
        (
            None,
            {},
            ("manifest.yaml", "missing: not a Murano package (no manifest.yaml at its root)"),
        ),
        (
            MANIFEST.replace("1.3", "Heat.HOT/1.0"),
            {},
            ("manifest.yaml", f"Format: Heat.HOT/1.0: only MuranoPL packages of {FORMAT_ONLY}"),
        ),
        (
            MANIFEST.replace("1.3", "2.0"),
            {},
            ("manifest.yaml", f"Format: 2.0: only MuranoPL packages of {FORMAT_ONLY}"),
        ),
        (
            MANIFEST.replace("Application", "Library"),
            {},
            (
                "manifest.yaml",
                "Type: Library: a library package: it runs no container; the applications built"
                " on it import without it",
            ),
        ),
        (
            MANIFEST.replace("Type: Application\n", ""),
            {},
            ("manifest.yaml", "Type: must be Application, not None"),
        ),
        (
            MANIFEST.replace("FullName: com.example.docker.DockerDemo\n", ""),
            {},
            ("manifest.yaml", "FullName: missing: the package's full name is needed"),
        ),
        (
            MANIFEST,
            {CLASS_FILE: None},
            (
                "manifest.yaml",
                'Classes["com.example.docker.DockerDemo"]: Classes/DockerDemo.yaml is not in the'
                " package",
            ),
        ),
        (
            MANIFEST.replace("DockerDemo.yaml", "../../etc/passwd"),
            {},
            (
                "manifest.yaml",
                'Classes["com.example.docker.DockerDemo"]: must be a file name in Classes/',
            ),
        ),
        (MANIFEST.replace("demo]", "demo"), {}, ("manifest.yaml", "invalid YAML")),
        (MANIFEST, {CLASS_FILE: "Name: [unclosed\n"}, (CLASS_FILE, "invalid YAML at line 2")),
        (
            MANIFEST,
            {CLASS_FILE: "Name: !!python/object:os.system x\n"},
            (CLASS_FILE, "YAML tag !!python/object:os.system is not allowed"),
        ),
        (
            MANIFEST,
            {CLASS_FILE: "Name: DockerDemo\n"},
            (CLASS_FILE, "Methods.getContainer: missing: the class runs no container"),
        ),
    ],
)
def test_a_package_that_is_not_an_importable_app_is_refused(
    tmp_path: Path, manifest: str | None, files: dict, problem: tuple[str, str]
) -> None:
    root = package(tmp_path, manifest=manifest or "", files=files)
    if manifest is None:
        (root / "manifest.yaml").unlink()
    ((path, message),) = refusals(root)
    assert path == problem[0]
    assert message.startswith(problem[1]), message


RETURN = "Methods.getContainer.Body[0].Return"


@pytest.mark.parametrize(
    ("container", "steps", "keys", "fragment"),
    [
        (
            returned(image="format('{0}:1', $.name)"),
            None,
            f"{RETURN}.image",
            "is an expression: a catalog image is named in the package",
        ),
        (
            returned(image=None),
            None,
            f"{RETURN}.image",
            "missing: the container needs an image name",
        ),
        (
            returned(ports=[{"port": 0}]),
            None,
            f"{RETURN}.ports[0].port",
            "must be a port number from 1 to 65535, not 0",
        ),
        (
            returned(ports=[{"port": 70000}]),
            None,
            f"{RETURN}.ports[0].port",
            "must be a port number from 1 to 65535, not 70000",
        ),
        (
            returned(ports=[{"port": "http"}]),
            None,
            f"{RETURN}.ports[0].port",
            "must be a port number from 1 to 65535, not 'http'",
        ),
        (
            returned(ports=[{"port": True}]),
            None,
            f"{RETURN}.ports[0].port",
            "must be a port number from 1 to 65535, not True",
        ),
        (
            returned(ports=[{"port": 80, "scope": "world"}]),
            None,
            f"{RETURN}.ports[0].scope",
            "must be public, cloud, internal or host",
        ),
        (
            returned(env={"A": "$.a + $.b"}),
            None,
            f"{RETURN}.env.A",
            "'$.a + $.b': '+ $.b' is not understood",
        ),
        (
            returned(env={"A": "$.nothing"}),
            None,
            f"{RETURN}.env.A",
            "$.nothing is not a property of DockerDemo",
        ),
        (
            returned(env={"A": "$.items.first()"}),
            None,
            f"{RETURN}.env.A",
            "'$.items.first()' is not understood",
        ),
        (
            returned(env={"A": "$undefined.host"}),
            None,
            f"{RETURN}.env.A",
            "'$undefined.host': $undefined is not assigned before the Return",
        ),
        (
            returned(env={"bad-name!": "x"}),
            None,
            f'{RETURN}.env["bad-name!"]',
            "not an environment variable name",
        ),
        (
            returned(privileged=True),
            None,
            f"{RETURN}.privileged",
            "the catalog never runs a privileged container",
        ),
        ("not a mapping", None, RETURN, "must return a mapping with image, env and ports"),
    ],
)
def test_a_container_that_cannot_be_converted_is_refused(
    tmp_path: Path, container: Any, steps: list | None, keys: str, fragment: str
) -> None:
    root = package(tmp_path, files={CLASS_FILE: class_text(container=container, steps=steps)})
    ((path, message),) = refusals(root)
    assert path == CLASS_FILE
    assert message.startswith(f"{keys}: "), message
    assert fragment in message, message


def test_a_getcontainer_without_a_plain_return_is_refused(tmp_path: Path) -> None:
    text = NAMESPACES + yaml.safe_dump(
        {
            "Name": "DockerDemo",
            "Methods": {"getContainer": {"Body": [{"If": True, "Then": [{"Return": {}}]}]}},
        }
    )
    ((path, message),) = refusals(package(tmp_path, files={CLASS_FILE: text}))
    assert (path, message.split(":")[0]) == (CLASS_FILE, "Methods.getContainer.Body")
    assert "no Return at its top level" in message


def test_two_connections_leave_a_misspelled_variable_unresolved(tmp_path: Path) -> None:
    text = class_text(
        properties={"a": {"Contract": "$.class(A)"}, "b": {"Contract": "$.class(B)"}},
        steps=[{"$one": "$.getConnectionTo($.a, 1)"}, {"$two": "$.getConnectionTo($.b, 2)"}],
        container=returned(env={"HOST": "$on.host"}),
    )
    ((path, message),) = refusals(package(tmp_path, files={CLASS_FILE: text}))
    assert path == CLASS_FILE
    assert message == (
        "Methods.getContainer.Body[2].Return.env.HOST: '$on.host': $on is not assigned before"
        " the Return"
    )


def test_a_missing_source_is_refused(tmp_path: Path) -> None:
    assert refusals(tmp_path / "nowhere") == [
        (str(tmp_path / "nowhere"), "no such directory or file")
    ]


# --- the corpus ----------------------------------------------------------------------------


def test_the_corpus_holds_twenty_applications() -> None:
    assert len(APPS) == 20, f"{CORPUS} is missing or changed"


@pytest.mark.parametrize("app", APPS)
def test_every_corpus_application_imports_into_a_valid_package(tmp_path: Path, app: str) -> None:
    result = import_murano(CORPUS / "Applications" / app / "package")
    write_package(result, tmp_path / app)
    loaded = load_directory(tmp_path / app)
    assert loaded.manifest.services and loaded.logo is not None
    assert loaded.manifest.raw["license"] == "Apache-2.0"


@pytest.mark.parametrize(
    ("library", "problem"),
    [
        ("DockerInterfacesLibrary", ("manifest.yaml", "Type: Library: a library package")),
        (
            "DockerStandaloneHost",
            ("Classes/DockerStandaloneHost.yaml", "Methods.getContainer: missing"),
        ),
    ],
)
def test_the_corpus_libraries_are_refused(library: str, problem: tuple[str, str]) -> None:
    ((path, message),) = refusals(CORPUS / library / "package")
    assert path == problem[0] and message.startswith(problem[1])


BOUND = [
    ("Grafana", "influxDB", "InfluxDB", "INFLUXDB_HOST", "INFLUXDB_PORT", "8086"),
    ("Orion", "mongodb", "MongoDB", "MONGODB_HOST", None, None),
    (
        "GuestBook",
        "redisMaster",
        "Redis",
        "REDIS_MASTER_SERVICE_HOST",
        "REDIS_MASTER_SERVICE_PORT",
        "6379",
    ),
]
SAMPLE_VALUES = {"grafanaPassword": "s3cret", "dbName": "metrics"}


@pytest.mark.parametrize(("app", "slot", "dependency", "host_var", "port_var", "port"), BOUND)
def test_a_corpus_app_with_a_dependency_deploys_bound_to_it(
    app: str, slot: str, dependency: str, host_var: str, port_var: str | None, port: str | None
) -> None:
    binder = import_murano(CORPUS / "Applications" / app / "package")
    bound = import_murano(CORPUS / "Applications" / dependency / "package")
    assert binder.manifest["bindings"][slot]["package"] == bound.manifest["name"]
    assert bound.manifest["name"] == f"com.example.docker.Docker{dependency}"
    main = next(iter(binder.manifest["services"].values()))
    assert main["environment"][host_var] == f"{{{{ bindings.{slot}.outputs.host }}}}"
    # as a deployment renders them: the dependency first, its outputs then fill the slot
    _, outputs = rendered(bound.manifest, {})
    values = {
        k: v
        for k, v in SAMPLE_VALUES.items()
        if k in binder.manifest.get("parameters", {}).get("properties", {})
    }
    services, _ = rendered(binder.manifest, values, {slot: outputs})
    environment = next(iter(services.values()))["environment"]
    assert (
        environment[host_var] == outputs["host"] == f"{next(iter(bound.manifest['services']))}.env"
    )
    if port_var is not None:
        assert environment[port_var] == port


def test_orion_reads_its_misspelled_connection_as_the_mongodb_binding() -> None:
    result = import_murano(CORPUS / "Applications" / "Orion" / "package")
    orion = result.manifest["services"]["orion"]
    assert orion["command"] == ["-dbhost", "{{ bindings.mongodb.outputs.host }}"]
    assert any(
        "$mongoendpoint is never assigned: read as $mongoendopoint" in str(p) for p in result.report
    )


def test_guestbook_runs_its_redis_slave_beside_it() -> None:
    result = import_murano(CORPUS / "Applications" / "GuestBook" / "package")
    services = result.manifest["services"]
    assert list(services) == ["guestbook", "redisslave"]
    assert (
        services["guestbook"]["environment"]["REDISSLAVE_SERVICE_HOST"]
        == "{{ services.redisslave.hostname }}"
    )
    assert (
        services["redisslave"]["environment"]["REDIS_MASTER_SERVICE_HOST"]
        == "{{ bindings.redisMaster.outputs.host }}"
    )
