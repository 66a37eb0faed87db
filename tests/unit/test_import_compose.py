"""The Compose importer: each mapping rule and each refusal on small files, then the corpus."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from catalogctl.main import main
from packages.errors import ManifestError, PackageError
from packages.importers import ImportRefused, write_package
from packages.importers.compose import compose_file, import_compose
from packages.importers.compose_values import duration, size

WEB = "services:\n  web:\n    image: nginx\n"
WEB_TAGGED = "services:\n  web:\n    image: nginx:${TAG}\n"
OWN = "is not allowed: containers keep namespaces of their own"
SYSTEM = "binds of host system paths are not allowed"
MERGE = "is not imported: merge the files first (docker compose config)"
CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "compose-awesome"


def compose(tmp_path: Path, text: str, **beside: str | bytes) -> Path:
    """A directory holding compose.yaml (`text`) and the files `beside` it."""
    root = tmp_path / "app"
    root.mkdir(parents=True, exist_ok=True)
    (root / "compose.yaml").write_text(textwrap.dedent(text))
    for name, content in beside.items():
        path = root / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def imported(tmp_path: Path, text: str, **options):
    beside = options.pop("beside", {})
    result = import_compose(compose(tmp_path, text, **beside), **options)
    write_package(result, tmp_path / "out")  # every import here is a valid package
    return result


def service(tmp_path: Path, body: str, **options) -> dict:
    text = "services:\n  web:\n    image: nginx:1.25\n" + textwrap.indent(
        textwrap.dedent(body), "    "
    )
    return imported(tmp_path, text, **options).manifest["services"]["web"]


def refusals(tmp_path: Path, text: str, **options) -> list[str]:
    with pytest.raises(ImportRefused) as caught:
        import_compose(compose(tmp_path, text), **options)
    return [str(p) for p in caught.value.problems]


def report(result) -> list[str]:
    return [str(line) for line in result.report]


# -- ports --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        ('["3000"]', [{"container": 3000, "publish": True}]),
        ('["8080:80"]', [{"container": 80, "publish": True}]),
        ("[8080:80]", [{"container": 80, "publish": True}]),  # YAML reads 8080:80 as a string
        ('["127.0.0.1:8053:53/udp"]', [{"container": 53, "protocol": "udp", "publish": True}]),
        ('["[::1]:8080:80"]', [{"container": 80, "publish": True}]),
        ('["5054:5054/tcp", "5054:5054/udp"]',
         [{"container": 5054, "publish": True},
          {"container": 5054, "protocol": "udp", "publish": True}]),
        ('["9000-9002:9000-9002"]',
         [{"container": n, "publish": True} for n in (9000, 9001, 9002)]),
        ("[{target: 80, published: 8080, protocol: tcp, name: web}]",
         [{"container": 80, "publish": True, "name": "web"}]),
        ('["${WEB_PORT:-8080}:80"]', [{"container": 80, "publish": True}]),
    ],
)  # fmt: skip
def test_ports_in_every_syntax_are_published_and_the_host_port_is_the_catalogs(
    tmp_path, ports, expected
):
    assert service(tmp_path, f"ports: {ports}\n")["ports"] == expected


def test_expose_is_unpublished_and_a_port_both_exposed_and_published_is_published(tmp_path):
    result = service(tmp_path, "expose: ['5432', 6379]\nports: ['6379:6379']\n")
    assert result["ports"] == [{"container": 6379, "publish": True}, {"container": 5432}]


def test_a_host_port_given_is_reported_dropped(tmp_path):
    result = imported(tmp_path, "services:\n  web:\n    image: nginx\n    ports: ['80:80']\n")
    assert (
        "services.web.ports[0]: host port 80 dropped: the catalog allocates host ports"
        in report(result)
    )


@pytest.mark.parametrize(
    ("ports", "message"),
    [
        ('["70000"]', "'70000' is not a port number (1-65535)"),
        ('["80/sctp"]', "protocol 'sctp' is not tcp or udp"),
        ('["1-100:1-100"]', "the range 1-100 is not a range of at most 32 ports"),
    ],
)
def test_a_port_the_catalog_cannot_take_is_refused_naming_it(tmp_path, ports, message):
    text = f"services:\n  web:\n    image: nginx\n    ports: {ports}\n"
    assert refusals(tmp_path, text) == [f"services.web.ports[0]: {message}"]


# -- environment and parameters -----------------------------------------------------------------


def test_environment_as_a_list_and_as_a_map(tmp_path):
    listed = service(tmp_path, "environment: [A=1, B=two=2, C=]\n")
    assert listed["environment"] == {"A": "1", "B": "two=2", "C": ""}
    mapped = service(tmp_path / "m", "environment: {A: 1, B: true, C: text}\n")
    assert mapped["environment"] == {"A": "1", "B": "true", "C": "text"}


@pytest.mark.parametrize(
    ("value", "template", "schema", "required"),
    [
        ("${NAME}", "{{ params.NAME }}", {"type": "string"}, True),
        ("$NAME", "{{ params.NAME }}", {"type": "string"}, True),
        ("${NAME:-hello}", "{{ params.NAME }}", {"type": "string", "default": "hello"}, False),
        ("${NAME-hello}", "{{ params.NAME }}", {"type": "string", "default": "hello"}, False),
        ("${NAME:-8080}", "{{ params.NAME }}", {"type": "integer", "default": 8080}, False),
        ("${NAME:-true}", "{{ params.NAME }}", {"type": "boolean", "default": True}, False),
        ("${NAME:?set the name}", "{{ params.NAME }}",
         {"type": "string", "description": "set the name"}, True),
        ("${NAME:+on}", "{{ ('on' if params.NAME else '') }}", {"type": "string", "default": ""},
         False),
        ("http://${NAME:-h}:$$1/", "http://{{ params.NAME }}:$1/",
         {"type": "string", "default": "h"}, False),
        ("a {{ b }} c", "a {{ '{{' }} b }} c", None, False),
    ],
)  # fmt: skip
def test_variables_become_parameters_typed_from_their_defaults(
    tmp_path, value, template, schema, required
):
    result = imported(
        tmp_path, f"services:\n  web:\n    image: nginx\n    environment:\n      X: '{value}'\n"
    )
    manifest = result.manifest
    assert manifest["services"]["web"]["environment"]["X"] == template
    if schema is None:
        assert "parameters" not in manifest
        return
    assert manifest["parameters"]["properties"]["NAME"] == schema
    assert ("NAME" in manifest["parameters"].get("required", [])) is required


def test_a_default_holding_another_variable_falls_back_to_it(tmp_path):
    result = imported(
        tmp_path, "services:\n  web:\n    image: nginx\n    environment: {X: '${A:-${B:-b}}'}\n"
    )
    assert result.manifest["services"]["web"]["environment"]["X"] == "{{ (params.A or params.B) }}"
    assert result.manifest["parameters"]["properties"]["B"] == {"type": "string", "default": "b"}


@pytest.mark.parametrize("name", ["DB_PASSWORD", "API_TOKEN", "SECRET_KEY", "apiKey", "HTTP_PASS"])
def test_parameters_whose_names_say_secret_are_x_secret(tmp_path, name):
    result = imported(
        tmp_path, f"services:\n  web:\n    image: nginx\n    environment: ['X=${{{name}}}']\n"
    )
    assert result.manifest["parameters"]["properties"][name]["x-secret"] is True


def test_a_bare_name_comes_from_the_shell_in_compose_and_becomes_a_parameter(tmp_path):
    result = imported(tmp_path, "services:\n  web:\n    image: nginx\n    environment: [TZ]\n")
    assert result.manifest["services"]["web"]["environment"]["TZ"] == "{{ params.TZ }}"
    assert result.manifest["parameters"]["properties"]["TZ"] == {"type": "string"}
    assert result.manifest["parameters"]["required"] == ["TZ"]
    assert (
        "services.web.environment.TZ: TZ comes from the shell in Compose: it became parameter TZ"
        in report(result)
    )


def test_dot_env_and_env_file_give_defaults_and_become_parameters(tmp_path):
    text = WEB_TAGGED + "    env_file: [web.env]\n    environment: [B=override]\n"
    beside = {
        ".env": "TAG=1.25\nPORT=8080\n",
        "web.env": "# comment\nA=1\nexport B='two'\nC=\"x\\ny\"\n",
    }
    result = imported(tmp_path, text, beside=beside)
    web = result.manifest["services"]["web"]
    assert web["image"] == "nginx:1.25"
    assert web["environment"] == {"A": "{{ params.A }}", "B": "override", "C": "{{ params.C }}"}
    properties = result.manifest["parameters"]["properties"]
    assert properties["A"] == {"type": "integer", "default": 1}
    assert properties["C"] == {"type": "string", "default": "x\ny"}
    assert "services.web.env_file[0]: web.env inlined into environment" in report(result)


def test_secrets_kept_beside_the_file_or_written_in_it_are_never_copied(tmp_path):
    text = WEB + (
        "    env_file: [secret.env]\n"
        "    environment:\n"
        "      DB_PASSWORD: ${DB_PASSWORD}\n"
        "      ROOT_PASSWORD: written-here\n"
        "      ROOT_PASSWORD_FILE: /run/secrets/root\n"
        "      USER: admin\n"
        "    volumes: ['.:/app', './conf:/conf']\n"
    )
    beside = {".env": "DB_PASSWORD=hunter2\n", "secret.env": "API_TOKEN=AKIA123\n",
              "conf__app.conf": "x\n", "conf__.hidden": "y\n"}  # fmt: skip
    result = imported(tmp_path, text, beside=beside)
    manifest_text = str(result.manifest) + str(result.files)
    for secret in ("hunter2", "AKIA123", "written-here"):
        assert secret not in manifest_text
    properties = result.manifest["parameters"]["properties"]
    for name in ("DB_PASSWORD", "API_TOKEN", "ROOT_PASSWORD"):
        assert properties[name] == {"type": "string", "x-secret": True}
        assert name in result.manifest["parameters"]["required"]
    web = result.manifest["services"]["web"]
    assert web["environment"]["ROOT_PASSWORD_FILE"] == "/run/secrets/root"
    assert web["environment"]["USER"] == "admin"
    assert result.files == {}  # neither the project nor a directory holding a dotfile
    assert [v["path"] for v in web["volumes"]] == ["/app", "/conf"]


def test_a_compose_file_through_a_link_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "compose.yaml").write_text("services:\n  web: {image: nginx}\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "compose.yaml").symlink_to(tmp_path / "elsewhere" / "compose.yaml")
    with pytest.raises(ImportRefused, match="a link"):
        import_compose(tmp_path / "app")


def test_variables_named_like_mapping_methods_and_braces_before_them_render(tmp_path):
    result = imported(tmp_path, WEB + "    environment: {X: '{${items:-a}}', Y: '${get:-b}{'}\n")
    assert result.manifest["services"]["web"]["environment"] == {
        "X": "{{ '{' }}{{ params['items'] }}}",
        "Y": "{{ params['get'] }}{{ '{' }}",
    }


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (WEB + "    configs: [c]\nconfigs:\n  c: {content: '${'}\n",
         "configs.c.content: invalid interpolation at '${'"),
        (WEB + "    environment: {X: '" + "${A:-" * 20 + "}" * 20 + "'}\n",
         "services.web.environment.X: defaults nest more than 8 deep"),
    ],
)  # fmt: skip
def test_values_that_cannot_be_converted_are_refused_naming_them(tmp_path, text, line):
    assert line in refusals(tmp_path, text)


def test_casaos_entries_of_the_wrong_shape_are_ignored(tmp_path):
    text = WEB + "    x-casaos: {envs: 5, ports: [{container: [1], description: x}, 7]}\n"
    assert imported(tmp_path, text).manifest["services"]["web"]["image"] == "nginx"


def test_an_env_file_outside_the_files_directory_is_never_read(tmp_path):
    (tmp_path / "secret.env").write_text("STOLEN=yes\n")
    result = imported(
        tmp_path, "services:\n  web:\n    image: nginx\n    env_file: ../secret.env\n"
    )
    assert "environment" not in result.manifest["services"]["web"]
    assert any("../secret.env is not beside the Compose file" in line for line in report(result))


def test_an_image_needs_a_known_value(tmp_path):
    assert refusals(tmp_path, "services:\n  web:\n    image: nginx:${TAG}\n") == [
        "services.web.image: ${TAG} has no default: the image must be known"
    ]


def test_services_named_as_hosts_become_hostnames_and_other_values_stay(tmp_path):
    text = """\
    services:
      db:
        image: postgres
      web:
        image: nginx
        command: [serve, --db, "postgres://user:pw@db:5432/app", db]
        environment:
          DB_HOST: db
          DB_USER: db
          CACHE: "db:6379"
    """
    result = imported(tmp_path, text)
    web = result.manifest["services"]["web"]
    host = "{{ services.db.hostname }}"
    assert web["command"] == ["serve", "--db", f"postgres://user:pw@{host}:5432/app", "db"]
    assert web["environment"] == {"DB_HOST": host, "DB_USER": "db", "CACHE": f"{host}:6379"}
    assert "services.web.environment.DB_HOST: the host db became services.db.hostname" in report(
        result
    )


# -- volumes, files, secrets --------------------------------------------------------------------


def test_named_anonymous_and_data_bind_volumes(tmp_path):
    body = """\
    volumes:
      - data:/var/lib/data
      - /cache
      - ./uploads:/uploads:ro
      - /DATA/AppData/web/config:/config
      - type: volume
        source: data
        target: /backup
    """
    result = imported(
        tmp_path,
        "services:\n  web:\n    image: nginx\n"
        + textwrap.indent(textwrap.dedent(body), "    ")
        + "volumes:\n  data:\n",
    )
    assert result.manifest["services"]["web"]["volumes"] == [
        {"name": "data", "path": "/var/lib/data"},
        {"name": "web-cache", "path": "/cache"},
        {"name": "uploads", "path": "/uploads", "read_only": True},
        {"name": "web-config", "path": "/config"},
        {"name": "data", "path": "/backup"},
    ]
    lines = report(result)
    assert (
        "services.web.volumes[1]: the anonymous volume at /cache became the named volume web-cache"
        in lines
    )
    assert any(
        line.startswith(
            "services.web.volumes[3]: the bind mount of /DATA/AppData/web/config"
            " became the named volume web-config"
        )
        for line in lines
    )


def test_a_bind_mounted_file_or_directory_beside_the_file_is_copied_in(tmp_path):
    beside = {"nginx.conf": "server {}\n", "conf__a.conf": "a\n", "conf__sub__b.conf": "b\n"}
    body = "volumes: ['./nginx.conf:/etc/nginx/nginx.conf:ro', './conf:/etc/app']\n"
    result = imported(
        tmp_path,
        "services:\n  web:\n    image: nginx\n" + textwrap.indent(body, "    "),
        beside=beside,
    )
    web = result.manifest["services"]["web"]
    assert "volumes" not in web
    assert web["files"] == {
        "/etc/nginx/nginx.conf": "files/web/nginx.conf",
        "/etc/app/a.conf": "files/web/conf/a.conf",
        "/etc/app/sub/b.conf": "files/web/conf/sub/b.conf",
    }
    assert result.files["files/web/nginx.conf"] == b"server {}\n"


def test_a_bind_through_a_link_or_out_of_the_directory_is_never_read(tmp_path):
    (tmp_path / "outside.conf").write_text("secret\n")
    root = compose(
        tmp_path,
        WEB + "    volumes: ['./link.conf:/a', '../outside.conf:/b']\n",
    )
    (root / "link.conf").symlink_to(tmp_path / "outside.conf")
    result = import_compose(root)
    assert result.files == {}
    assert [v["path"] for v in result.manifest["services"]["web"]["volumes"]] == ["/a", "/b"]


def test_secrets_and_configs_become_files_fed_by_parameters(tmp_path):
    text = """\
    services:
      web:
        image: nginx
        secrets: [db-password, {source: api, target: api.key}]
        configs: [{source: site, target: /etc/site.conf}, motd]
    secrets:
      db-password: {file: ./password.txt}
      api: {environment: API_KEY}
    configs:
      site: {content: "name=${SITE:-demo}"}
      motd: {file: ./motd}
    """
    result = imported(tmp_path, text, beside={"password.txt": "never read\n", "motd": "hello\n"})
    web = result.manifest["services"]["web"]
    assert web["files"] == {
        "/run/secrets/db-password": "files/secrets/db-password.j2",
        "/run/secrets/api.key": "files/secrets/api.j2",
        "/etc/site.conf": "files/configs/site.j2",
        "/motd": "files/configs/motd",
    }
    params = result.manifest["parameters"]
    assert params["properties"]["db_password"]["x-secret"] is True
    assert params["properties"]["API_KEY"]["x-secret"] is True
    assert {"db_password", "API_KEY"} <= set(params["required"])
    assert result.files["files/secrets/db-password.j2"] == b"{{ params.db_password }}"
    assert result.files["files/configs/site.j2"] == b"name={{ params.SITE }}"
    assert result.files["files/configs/motd"] == b"hello\n"
    assert all(b"never read" not in content for content in result.files.values())


# -- healthchecks, depends_on, resources, managed keys ------------------------------------------


@pytest.mark.parametrize(
    ("healthcheck", "expected"),
    [
        ("{test: [CMD, curl, -f, 'http://localhost/'], interval: 1m30s, timeout: 1.5s, retries: 3}",
         {"command": ["curl", "-f", "http://localhost/"], "interval": "90s", "timeout": "1500ms",
          "retries": 3}),
        ("{test: [CMD-SHELL, 'pg_isready -U $$USER'], start_period: 30s}",
         {"command": "pg_isready -U $USER", "start_period": "30s"}),
        ("{test: 'redis-cli ping'}", {"command": "redis-cli ping"}),
        ("{test: [NONE]}", None),
        ("{disable: true}", None),
    ],
)  # fmt: skip
def test_healthchecks_map_onto_the_catalogs(tmp_path, healthcheck, expected):
    assert service(tmp_path, f"healthcheck: {healthcheck}\n").get("healthcheck") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("10s", "10s"), ("1m30s", "90s"), ("500ms", "500ms"), (2, "2s"), ("1h", "3600s")],
)
def test_durations(value, expected):
    assert duration(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [("512m", "512m"), ("1gb", "1g"), ("2GiB", "2g"), (1048576, "1048576")]
)
def test_sizes(value, expected):
    assert size(value) == expected


def test_depends_on_as_a_list_and_with_conditions(tmp_path):
    text = """\
    services:
      db: {image: postgres, healthcheck: {test: [CMD, pg_isready]}}
      init: {image: busybox}
      web:
        image: nginx
        depends_on:
          db: {condition: service_healthy}
          init: {condition: service_completed_successfully}
    """
    result = imported(tmp_path, text)
    assert result.manifest["services"]["web"]["depends_on"] == ["db", "init"]
    assert any("init is awaited ready, not completed" in line for line in report(result))


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("always", "always"), ("never", "never"), ("missing", "if_not_present"), ("build", None)],
)
def test_pull_policies_map_onto_the_catalogs(tmp_path, policy, expected):
    assert service(tmp_path, f"pull_policy: {policy}\n").get("pull_policy") == expected


def test_resources_from_deploy_limits_and_the_old_keys(tmp_path):
    web = service(
        tmp_path, "deploy: {resources: {limits: {cpus: '0.5', memory: 256M}}}\npids_limit: 100\n"
    )
    assert web["resources"] == {"memory": "256m", "cpus": 0.5, "pids": 100}


def test_keys_the_catalog_manages_are_dropped_with_a_line(tmp_path):
    result = imported(
        tmp_path,
        WEB + "    restart: always\n    container_name: web\n    networks: [front]\n"
        "networks:\n  front:\n",
    )
    lines = report(result)
    assert "services.web.restart: dropped: restarts are managed by the catalog" in lines
    assert (
        "services.web.container_name: dropped: container names are assigned by the catalog" in lines
    )
    assert "networks: dropped: every service joins its environment's network" in lines


def test_profiles_leave_services_out_unless_chosen(tmp_path):
    text = "services:\n  web: {image: nginx}\n  debug: {image: busybox, profiles: [debug]}\n"
    assert list(imported(tmp_path, text).manifest["services"]) == ["web"]
    assert list(imported(tmp_path / "p", text, profiles=["debug"]).manifest["services"]) == [
        "web",
        "debug",
    ]


def test_casaos_metadata_becomes_title_description_and_descriptions(tmp_path):
    text = """\
    name: jellyfin
    services:
      jellyfin:
        image: linuxserver/jellyfin:10.8.13
        environment: {TZ: "${TZ:-UTC}"}
        ports: [{target: 8096, published: "8097"}]
        x-casaos:
          envs: [{container: TZ, description: {en_us: TimeZone}}]
          ports: [{container: "8096", description: {en_us: WebUI HTTP Port}}]
    x-casaos:
      title: {en_us: Jellyfin}
      tagline: {en_us: The Free Software Media System}
      description: {en_us: Stream your media.}
      category: Media
      author: Jellyfin
      icon: https://example.invalid/jellyfin.png
      main: jellyfin
    """
    result = imported(tmp_path, text)
    manifest = result.manifest
    assert manifest["name"] == "org.example.jellyfin"
    assert manifest["title"] == "Jellyfin"
    assert manifest["description"] == "The Free Software Media System\n\nStream your media."
    assert manifest["tags"] == ["compose", "media"]
    assert manifest["author"] == "Jellyfin"
    assert manifest["parameters"]["properties"]["TZ"]["description"] == "TimeZone"
    assert manifest["services"]["jellyfin"]["ports"] == [
        {"container": 8096, "publish": True, "name": "webui-http-port"}
    ]
    assert manifest["outputs"]["url"] == "http://{{ services.jellyfin.hostname }}:8096/"
    assert any(line.startswith("x-casaos.icon: not fetched") for line in report(result))


# -- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("privileged: true", "services.web.privileged: privileged mode is not allowed"),
        ("network_mode: host", f"services.web.network_mode: host networking (host) {OWN}"),
        ("pid: host", f"services.web.pid: pid (host) {OWN}"),
        ("ipc: host", f"services.web.ipc: ipc (host) {OWN}"),
        ("devices: [/dev/dri:/dev/dri]", "services.web.devices: devices are not allowed"),
        ("cap_add: [NET_ADMIN]", "services.web.cap_add: adding capabilities is not allowed"),
        ("sysctls: {net.ipv4.ip_forward: 1}", "services.web.sysctls: sysctls are not allowed"),
        ("security_opt: [seccomp:unconfined]",
         "services.web.security_opt[0]: seccomp:unconfined is not allowed"),
        ("volumes: [/var/run/docker.sock:/var/run/docker.sock]",
         "services.web.volumes[0]: binding the host socket /var/run/docker.sock is not allowed"),
        ("volumes: [/dev:/host-dev]", f"services.web.volumes[0]: {SYSTEM} (/dev)"),
        ("volumes: ['/:/host']", f"services.web.volumes[0]: {SYSTEM} (/)"),
        ("volumes: ['//etc/../etc/:/x']", f"services.web.volumes[0]: {SYSTEM} (//etc/../etc/)"),
        ("volumes: [{type: bind, source: /proc, target: /p}]",
         f"services.web.volumes[0]: {SYSTEM} (/proc)"),
    ],
)  # fmt: skip
def test_what_the_policy_forbids_is_refused_naming_its_path_or_dropped_when_asked(
    tmp_path, body, line
):
    text = f"services:\n  web:\n    image: nginx\n    {body}\n"
    assert line in refusals(tmp_path, text)
    path, message = line.split(": ", 1)
    result = imported(tmp_path / "dropped", text, drop_unsafe=True)
    assert f"{path}: dropped: {message}" in report(result)


def test_every_forbidden_field_is_named_at_once_and_nothing_is_written(tmp_path):
    text = "services:\n  jellyfin:\n    image: jellyfin/jellyfin\n"
    text += "    devices: [/dev/dri]\n    privileged: true\n"
    root = compose(tmp_path, text)
    with pytest.raises(ImportRefused) as caught:
        import_compose(root)
    assert [str(p) for p in caught.value.problems] == [
        "services.jellyfin.devices: devices are not allowed",
        "services.jellyfin.privileged: privileged mode is not allowed",
    ]
    assert not (tmp_path / "out").exists()


def test_build_without_image_is_refused_naming_the_service_and_with_one_dropped(tmp_path):
    assert refusals(tmp_path, "services:\n  api:\n    build: .\n") == [
        "services.api.build: a package needs an image: build one and name it with image"
    ]
    result = imported(tmp_path / "b", "services:\n  api:\n    build: .\n    image: acme/api:1\n")
    assert result.manifest["services"]["api"]["image"] == "acme/api:1"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (WEB + "    colour: blue\n", "services.web.colour: unknown key"),
        (WEB + "    ports: 80\n", "services.web.ports: must be a list"),
        ("services: {}\ninclude: [other.yaml]\n", f"include: include {MERGE}"),
        (WEB + "    extends: {service: base}\n", f"services.web.extends: extends {MERGE}"),
        (WEB + "    environment: {X: '${'}\n",
         "services.web.environment.X: invalid interpolation at '${'"),
        ("services:\n  only: {image: nginx, profiles: [x]}\n",
         "services: no service to import (a service in a profile needs --compose-profile)"),
    ],
)  # fmt: skip
def test_files_the_specification_or_the_importer_refuse(tmp_path, text, line):
    assert line in refusals(tmp_path, text)


def test_bad_yaml_is_refused_naming_the_file(tmp_path):
    with pytest.raises(ManifestError) as caught:
        import_compose(compose(tmp_path, "services: [\n"))
    assert str(caught.value.problems[0]).startswith("compose.yaml:")


def test_a_package_that_would_not_validate_is_not_written(tmp_path):
    result = import_compose(
        compose(tmp_path, "services:\n  web: {image: nginx}\n"), name="NotReverseDns"
    )
    with pytest.raises(PackageError) as caught:
        write_package(result, tmp_path / "out")
    assert any(str(p).startswith("name:") for p in caught.value.problems)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["app"]


# -- the corpus and the CLI ---------------------------------------------------------------------

CORPUS_FILES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())


def test_the_corpus_is_here():
    assert len(CORPUS_FILES) == 39


@pytest.mark.parametrize("sample", CORPUS_FILES)
def test_each_corpus_file_imports_or_is_refused_with_named_paths(tmp_path, sample):
    try:
        result = import_compose(CORPUS / sample)
    except ImportRefused as exc:
        assert exc.problems
        assert all(p.path.startswith("services.") and p.message for p in exc.problems)
        return
    loaded = write_package(result, tmp_path / "pkg")
    source = yaml.safe_load(compose_file(CORPUS / sample).read_text())
    assert set(loaded.manifest.services) == {s.lower() for s in source["services"]}


def test_cli_import_writes_a_package_that_validates(tmp_path, capsys):
    target = tmp_path / "wp"
    source = str(CORPUS / "wordpress-mysql")
    options = ["-o", str(target), "--name", "org.acme.wordpress", "--version", "6.4.0"]
    code = main(["package", "import", source, "--from", "compose", *options])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert (
        "services.wordpress.environment.WORDPRESS_DB_HOST: the host db became services.db.hostname"
        in out
    )
    assert f"{target}: valid (org.acme.wordpress 6.4.0)" in out
    assert main(["package", "validate", str(target)]) == 0


def test_cli_import_refusal_prints_one_line_per_problem_and_writes_nothing(tmp_path, capsys):
    target = tmp_path / "portainer"
    code = main(["package", "import", str(CORPUS / "portainer"), "-o", str(target)])
    _, err = capsys.readouterr()
    assert code == 1
    socket = "binding the host socket /var/run/docker.sock is not allowed"
    assert err == f"services.portainer.volumes[0]: {socket}\n"
    assert not target.exists()
