"""Template rendering: inputs, strict undefined, the sandbox, limits and secret-safe errors."""

from __future__ import annotations

import pytest

from packages.errors import RenderError
from packages.render import (
    MAX_RENDERED_BYTES,
    TextRenderer,
    in_process,
    render_file,
    render_outputs,
    render_service,
    template_context,
)
from packages.render_process import RenderProcess

SECRET = "s3cret-Pa55word"


@pytest.fixture(params=["in_process", "child"])
def renderer_of(request):
    """Makes the renderer of a context: here, or in the render child the workers use."""
    children: list[RenderProcess] = []

    def make(context: dict) -> TextRenderer:
        if request.param == "in_process":
            return in_process(context)
        children.append(RenderProcess())
        return children[-1].bind(context)

    yield make
    for child in children:
        child.close()


@pytest.fixture
def render(renderer_of) -> TextRenderer:
    return renderer_of(
        template_context(
            params={"password": SECRET, "replicas": 3, "hosts": ["a", "b"], "tls": {"on": True}},
            settings={"site_name": "Demo Blog"},
            bindings={"db": {"host": "db-1.env", "password": SECRET}},
            services={"web": {"hostname": "web.wp.env"}},
            app={"name": "wp", "env": "prod"},
        )
    )


def render_one(template: str, render: TextRenderer) -> str:
    return render_outputs({"value": template}, render)["value"]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ params.replicas }}", "3"),
        ("{{ params.hosts | join(',') }}", "a,b"),
        ("{{ params.tls.on }}", "True"),
        ("{{ settings.site_name }}", "Demo Blog"),
        ("{{ settings.missing | default('demo') }}", "demo"),
        ("{{ bindings.db.outputs.host }}", "db-1.env"),
        ("{{ services.web.hostname }}:80", "web.wp.env:80"),
        ("{{ app.name }}/{{ app.env }}", "wp/prod"),
        ("{{ settings | tojson }}", '{"site_name": "Demo Blog"}'),
        ("{{ 'user:pw' | b64encode }}", "dXNlcjpwdw=="),
        ("{{ bindings.cache.outputs.host | default('none') }}", "none"),
        ("{{ bindings.cache is defined }}", "False"),
        ("no template at all {", "no template at all {"),
        ("{{ '%05d' | format(42) }}", "00042"),
        ("{{ 'x' * 10 }}", "xxxxxxxxxx"),
        ("{{ 2 ** 10 }}", "1024"),
    ],
)
def test_inputs_render(render: TextRenderer, template: str, expected: str) -> None:
    assert render_one(template, render) == expected


@pytest.mark.parametrize(
    ("template", "variable"),
    [
        ("{{ bindings.cache.outputs.host }}", "bindings.cache.outputs.host"),
        ("{{ bindings.db.outputs.port }}", "bindings.db.outputs.port"),
        ("{{ params.nope }}", "params.nope"),
        ("{{ params.hosts[5] }}", "params.hosts[5]"),
        ("{{ settings.a.b.c }}", "settings.a.b.c"),
        ("{{ services.db.hostname }}", "services.db.hostname"),
        ("{{ nothing }}", "nothing"),
        ("{% if params.flag %}x{% endif %}", "params.flag"),
        ("{% for h in params.missing %}{{ h }}{% endfor %}", "params.missing"),
        ("{{ unknown() }}", "unknown"),
    ],
)
def test_strict_undefined_names_the_full_variable(
    render: TextRenderer, template: str, variable: str
) -> None:
    service = {"environment": {"DB_HOST": template}}
    with pytest.raises(RenderError) as caught:
        render_service("web", service, render)
    error = caught.value
    assert (error.service, error.field, error.variable) == ("web", "environment.DB_HOST", variable)
    assert variable in str(error)
    assert str(error).startswith("services.web.environment.DB_HOST: ")


@pytest.mark.parametrize(
    ("service", "field"),
    [
        ({"command": ["sh", "-c", "{{ params.x }}"]}, "command[2]"),
        ({"entrypoint": ["{{ params.x }}"]}, "entrypoint[0]"),
        ({"healthcheck": {"command": ["check", "{{ params.x }}"]}}, "healthcheck.command[1]"),
        ({"user": "{{ params.x }}"}, "user"),
        ({"working_dir": "/srv/{{ params.x }}"}, "working_dir"),
    ],
)
def test_every_service_field_names_itself(render: TextRenderer, service: dict, field: str) -> None:
    with pytest.raises(RenderError) as caught:
        render_service("web", service, render)
    assert (caught.value.field, caught.value.variable) == (field, "params.x")


def test_the_image_is_never_a_template(render: TextRenderer) -> None:
    # The worker resolves exactly the reference the manifest names, nothing a template made.
    assert render_service("web", {"image": "nginx:{{ params.x }}"}, render)["image"] == (
        "nginx:{{ params.x }}"
    )


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ params.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ self.__init__.__globals__ }}",
        "{{ params.password.__class__ | default('x') }}",
        "{{ params.pop('password') }}",
        "{{ params.hosts.append('c') }}",
        "{{ settings.update({'a': 1}) }}",
        "{{ params._Scope__x }}",
        "{% include 'manifest.yaml' %}",
        "{% import 'x.j2' as x %}",
        "{{ lipsum(5) }}",
        "{{ range(10 ** 7) | list }}",
    ],
)
def test_sandbox_refuses_escapes(render: TextRenderer, template: str) -> None:
    with pytest.raises(RenderError) as caught:
        render_one(template, render)
    assert caught.value.field == "outputs.value"


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'x' * (2 * 1024 * 1024) }}",
        "{{ 2 ** 10000000 }}",
        "{{ 'x'.ljust(100000000) }}",
        "{{ params.password | center(100000000) }}",
        "{{ ('a\n' * 500000) | indent(100) }}",
        "{{ '%99999999s' % 'x' }}",
        "{{ '%*d' | format(100000000, 1) }}",
        "{{ '{:>99999999}'.format(1) }}",
        "{% for i in range(2000) %}{{ 'y' * 1000 }}{% endfor %}",
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s | length }}",
        "{% macro f(s, n) %}{{ f(s ~ s, n - 1) if n else s | length }}{% endmacro %}"
        "{{ f('x', 64) }}",
    ],
)
def test_oversized_output_and_memory_bombs_are_refused(render: TextRenderer, template: str) -> None:
    with pytest.raises(RenderError):
        render_one(template, render)


def test_endless_recursion_is_a_render_error(render: TextRenderer) -> None:
    with pytest.raises(RenderError, match="recursion"):
        render_one("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", render)


def test_output_right_at_the_limit_renders(render: TextRenderer) -> None:
    assert len(render_one(f"{{{{ 'x' * {MAX_RENDERED_BYTES} }}}}", render)) == MAX_RENDERED_BYTES


def test_the_limit_counts_utf8_bytes(render: TextRenderer) -> None:
    with pytest.raises(RenderError, match="limit"):
        render_one(f"{{{{ 'é' * {MAX_RENDERED_BYTES // 2 + 1} }}}}", render)


@pytest.mark.parametrize(
    "template",
    [
        "{{ params.password | int + 'x' }}",
        "{{ params.password.nope }}",
        "{{ params.password.__class__ }}",
        "{{ params[params.password] | int + 1 }}",
        "{{ params.password ~ 'x' * 2000000 }}",
        "{% for c in params.password %}{{ c.__class__ }}{% endfor %}",
        "{{ (params.password | tojson) + 1 }}",
        "{{ params.hosts[params.password] }}",
        "{{ params.tls[params.password].x | default(params.password.__class__) }}",
        "{{ params.password.format.__self__.__class__ }}",
        "{{ bindings.db.outputs.password | float / 0 }}",
    ],
)
def test_error_messages_never_contain_secrets(render: TextRenderer, template: str) -> None:
    with pytest.raises(RenderError) as caught:
        render_one(template, render)
    error = caught.value
    assert SECRET not in str(error)
    assert SECRET not in error.variable
    assert error.__cause__ is None and error.__suppress_context__


def test_render_service_renders_fields_and_leaves_the_rest(render: TextRenderer) -> None:
    service = {
        "image": "registry.example.com/app:3",
        "command": ["sh", "-c", "echo {{ settings.site_name }}", 7],
        "entrypoint": None,
        "environment": {"N": 3, "ON": True, "OFF": False, "NONE": None, "F": 0.5, "S": "s"},
        "ports": [{"container": 80, "protocol": "tcp", "publish": True}],
        "healthcheck": {"command": ["test", "{{ app.name }}"], "interval": "2s"},
        "user": "{{ 1000 }}",
        "working_dir": "/srv/{{ app.name }}",
        "files": {"/etc/app.conf": "files/app.conf.j2"},
    }
    rendered = render_service("web", service, render)
    assert rendered == {
        **service,
        "image": "registry.example.com/app:3",
        "command": ["sh", "-c", "echo Demo Blog", "7"],
        "environment": {"N": "3", "ON": "true", "OFF": "false", "NONE": "", "F": "0.5", "S": "s"},
        "healthcheck": {"command": ["test", "wp"], "interval": "2s"},
        "user": "1000",
        "working_dir": "/srv/wp",
    }
    assert rendered["ports"] is not service["ports"]  # a new dict, not a view of the input
    assert service["command"][2] == "echo {{ settings.site_name }}"


@pytest.mark.parametrize("key", ["command", "entrypoint"])
def test_a_string_command_renders_whole(render: TextRenderer, key: str) -> None:
    service = {
        key: "echo {{ app.name }} && exec httpd",
        "healthcheck": {"command": "test {{ app.env }}"},
    }
    rendered = render_service("web", service, render)
    assert rendered[key] == "echo wp && exec httpd"
    assert rendered["healthcheck"]["command"] == "test prod"


def test_a_string_command_error_names_the_field(render: TextRenderer) -> None:
    with pytest.raises(RenderError) as caught:
        render_service("web", {"command": "echo {{ params.x }}"}, render)
    assert (caught.value.field, caught.value.variable) == ("command", "params.x")


def test_numeric_user_becomes_a_string(render: TextRenderer) -> None:
    assert render_service("web", {"user": 1000}, render)["user"] == "1000"


def test_bundled_image_is_passed_through(render: TextRenderer) -> None:
    image = {"bundled": "images/app.tar", "tag": "{{ not rendered }}"}
    assert render_service("web", {"image": image}, render)["image"] == image


def test_environment_value_must_be_scalar(render: TextRenderer) -> None:
    with pytest.raises(RenderError) as caught:
        render_service("web", {"environment": {"X": {"a": 1}}}, render)
    assert caught.value.field == "environment.X"


def test_render_file_renders_j2_members(render: TextRenderer) -> None:
    source = b"site = {{ settings.site_name }}\ndb = {{ bindings.db.outputs.host }}\n"
    rendered = render_file("web", "/etc/app/app.conf", "files/app.conf.j2", source, render)
    assert rendered == b"site = Demo Blog\ndb = db-1.env\n"


def test_render_file_returns_other_members_as_is(render: TextRenderer) -> None:
    source = b"\xff\x00 {{ not a template }}"
    assert render_file("web", "/etc/app/logo.bin", "files/logo.bin", source, render) == source


def test_render_file_errors_name_the_file(render: TextRenderer) -> None:
    with pytest.raises(RenderError) as caught:
        render_file("web", "/etc/app.conf", "files/app.conf.j2", b"x={{ params.y }}", render)
    assert str(caught.value).startswith("services.web.files./etc/app.conf: ")
    assert caught.value.variable == "params.y"


def test_render_file_refuses_non_utf8(render: TextRenderer) -> None:
    with pytest.raises(RenderError, match="UTF-8"):
        render_file("web", "/etc/app.conf", "files/app.conf.j2", b"\xff{{ 1 }}", render)


def test_render_file_refuses_oversized_output(render: TextRenderer) -> None:
    source = b"{% for i in range(1100) %}" + b"x" * 1000 + b"{% endfor %}"
    with pytest.raises(RenderError, match="limit"):
        render_file("web", "/etc/big.conf", "files/big.conf.j2", source, render)


def test_render_outputs(render: TextRenderer) -> None:
    outputs = {"host": "{{ services.web.hostname }}", "url": "http://{{ services.web.hostname }}"}
    assert render_outputs(outputs, render) == {
        "host": "web.wp.env",
        "url": "http://web.wp.env",
    }


def test_render_outputs_error_names_the_output(render: TextRenderer) -> None:
    with pytest.raises(RenderError) as caught:
        render_outputs({"url": "http://{{ services.api.hostname }}"}, render)
    assert str(caught.value).startswith("outputs.url: ")
    assert caught.value.variable == "services.api.hostname"


def test_syntax_error_is_a_render_error(render: TextRenderer) -> None:
    with pytest.raises(RenderError, match="syntax error at line 2"):
        render_one("ok\n{{ broken", render)


def test_outputs_feed_the_next_apps_bindings(renderer_of) -> None:
    db_context = template_context(
        params={}, settings={}, bindings={}, services={"db": {"hostname": "db.x"}}, app={}
    )
    db_outputs = render_outputs({"host": "{{ services.db.hostname }}"}, renderer_of(db_context))
    web_context = template_context(
        params={}, settings={}, bindings={"db": db_outputs}, services={}, app={}
    )
    assert render_one("{{ bindings.db.outputs.host }}", renderer_of(web_context)) == "db.x"


def test_context_is_a_copy_and_templates_cannot_mutate_it(renderer_of) -> None:
    params = {"hosts": ["a"]}
    context = template_context(params=params, settings={}, bindings={}, services={}, app={})
    params["hosts"].append("b")
    assert render_one("{{ params.hosts | join(',') }}", renderer_of(context)) == "a"


def test_computed_names_are_hidden_in_errors(render: TextRenderer) -> None:
    with pytest.raises(RenderError) as caught:
        render_one("{{ params[params.password].x }}", render)
    assert caught.value.variable == "params.?.x"


def test_plain_dict_context_still_names_variables(renderer_of) -> None:
    with pytest.raises(RenderError) as caught:
        render_one("{{ params.x.y }}", renderer_of({"params": {"x": {}}}))
    assert caught.value.variable == "params.x.y"


def test_bindings_must_map_slots_to_outputs() -> None:
    with pytest.raises(TypeError):
        template_context(params={}, settings={}, bindings={"db": "x"}, services={}, app={})
